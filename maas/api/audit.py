"""GET /v1/audit/log and /v1/audit/log/verify (regulator, admin)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import select

from maas import audit
from maas.api.deps import AdminOrRegulator, SessionDep
from maas.errors import Forbidden, error_responses
from maas.models import AuditEntry

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class AuditEntryOut(BaseModel):
    seq: int
    at: dt.datetime
    actor_id: str | None
    actor_role: str | None
    operator_id: str | None
    action: str
    target: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_after_seq: int | None


class CheckpointOut(BaseModel):
    seq: int
    hash: str
    at: str


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    reason: str | None = None
    keyed: bool = Field(default=True, description="hashes are HMACs under a key the database does not hold")
    unkeyed_before_seq: int | None = Field(
        default=None, description="rows before this seq were written before the chain was keyed (pinned by it)")
    head_seq: int = Field(default=0, description="the last sequence number that verified")
    checkpoint: CheckpointOut | None = Field(
        default=None, description="the latest signed checkpoint of the head (outside the database)")
    checkpoints_rejected: int = Field(default=0, description="checkpoint lines whose signature does not verify")
    checkpoint_public_key: str | None = Field(default=None, description="hex Ed25519 key that signs checkpoints")


@router.get("/log", response_model=AuditPage, responses=error_responses(Forbidden))
def audit_log(
    session: SessionDep, _: AdminOrRegulator,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    operator_id: Annotated[str | None, Query(max_length=64)] = None,
    since: dt.datetime | None = None, until: dt.datetime | None = None,
    after_seq: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    q = select(AuditEntry).where(AuditEntry.seq > after_seq)
    if action:
        q = q.where(AuditEntry.action == action)
    if actor_id:
        q = q.where(AuditEntry.actor_id == actor_id)
    if operator_id:
        q = q.where(AuditEntry.operator_id == operator_id)
    if since:
        q = q.where(AuditEntry.at >= since)
    if until:
        q = q.where(AuditEntry.at < until)
    rows = session.exec(q.order_by(AuditEntry.seq).limit(limit + 1)).all()
    page = rows[:limit]
    return AuditPage(entries=[AuditEntryOut.model_validate(r, from_attributes=True) for r in page],
                     next_after_seq=page[-1].seq if len(rows) > limit else None)


@router.get("/log/verify", response_model=VerifyOut, responses=error_responses(Forbidden))
def verify(session: SessionDep, _: AdminOrRegulator) -> VerifyOut:
    """Recomputes the keyed chain and holds it against the signed checkpoints: truncation, deleted or
    rewritten rows give ``ok: false`` with the first broken sequence number."""
    result = audit.verify_chain(session)
    return VerifyOut(ok=result.ok, entries=result.entries, first_broken_seq=result.first_broken_seq,
                     reason=result.reason, keyed=result.keyed, unkeyed_before_seq=result.unkeyed_before_seq,
                     head_seq=result.head_seq,
                     checkpoint=CheckpointOut(**result.checkpoint) if result.checkpoint else None,
                     checkpoints_rejected=result.checkpoints_rejected,
                     checkpoint_public_key=result.checkpoint_public_key)
