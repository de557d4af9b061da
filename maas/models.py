"""Tables of the shell: operators, accounts, tokens, gate devices, feeds, audit log.

The domain packages keep their own tables (`ticketing.models`,
`clearing.models`) on the same metadata; Alembic sees them all.
"""

from __future__ import annotations

import datetime as dt
import secrets
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from maas.db import utcnow


def new_id(prefix: str) -> str:
    """An opaque, unguessable id such as ``usr_3kq...``."""
    return f"{prefix}_{secrets.token_hex(12)}"


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), **kw)


class Role(StrEnum):
    passenger = "passenger"
    operator = "operator"
    regulator = "regulator"
    admin = "admin"
    gate = "gate"


class Operator(SQLModel, table=True):
    __tablename__ = "operators"

    operator_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str | None = Field(default=None, max_length=32)
    #: The issuer algorithm of this operator's ticket QR codes: "ed25519" or "sm2" (docs/qr-format.md).
    qr_alg: str = Field(default="ed25519", max_length=16)
    created_at: dt.datetime = _ts()


class User(SQLModel, table=True):
    __tablename__ = "users"

    user_id: str = Field(default_factory=lambda: new_id("usr"), primary_key=True, max_length=40)
    phone: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=100)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=16, index=True)
    operator_id: str | None = Field(default=None, foreign_key="operators.operator_id", max_length=64)
    disabled: bool = False
    created_at: dt.datetime = _ts()


class RefreshToken(SQLModel, table=True):
    """One row per refresh token issued: its id (jti) only, never the token itself."""

    __tablename__ = "refresh_tokens"

    jti: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.user_id", index=True, max_length=40)
    family: str = Field(max_length=64, index=True)
    issued_at: dt.datetime = _ts()
    expires_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))
    revoked_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    replaced_by: str | None = Field(default=None, max_length=64)


class GateDevice(SQLModel, table=True):
    __tablename__ = "gate_devices"

    gate_id: str = Field(default_factory=lambda: new_id("gate"), primary_key=True, max_length=40)
    operator_id: str = Field(foreign_key="operators.operator_id", index=True, max_length=64)
    stop_id: str | None = Field(default=None, max_length=200)
    #: A gate without a stop validates nowhere unless its operator's staff (or an admin) let it roam.
    roaming: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    #: sha256 of the bearer token (the token is random and long, so a fast hash suffices).
    token_hash: str = Field(max_length=64, unique=True)
    active: bool = True
    created_at: dt.datetime = _ts()


class FeedRecord(SQLModel, table=True):
    """An imported GTFS feed and the operator it belongs to."""

    __tablename__ = "feeds"

    feed_id: str = Field(primary_key=True, max_length=64)
    operator_id: str = Field(foreign_key="operators.operator_id", index=True, max_length=64)
    path: str = Field(max_length=1000)
    sha256: str = Field(max_length=64)
    imported_at: dt.datetime = _ts()
    summary: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    #: GTFS agency_id -> operator owning that agency's routes (issue 13 item 10); others: ``operator_id``
    agency_operators: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    #: infer in-seat links from trips.txt block_id (opt-in, ``routing.feeds.FeedSource.in_seat_from_blocks``)
    in_seat_from_blocks: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class AuditEntry(SQLModel, table=True):
    """Append-only, hash-chained record of a privileged action."""

    __tablename__ = "audit_log"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)
    actor_id: str | None = Field(default=None, max_length=64, index=True)
    actor_role: str | None = Field(default=None, max_length=16)
    operator_id: str | None = Field(default=None, max_length=64, index=True)
    action: str = Field(max_length=64, index=True)
    target: str | None = Field(default=None, max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64, unique=True)
