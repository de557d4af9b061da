"""The hash-chained audit log.

Each privileged action appends one row whose ``hash`` covers its content and
the previous row's hash, so editing or deleting any row breaks the chain from
there on. Rows are appended inside the caller's transaction: the action and
its audit record commit together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from maas.db import utcnow
from maas.models import AuditEntry

GENESIS = "0" * 64


def _digest(entry: AuditEntry) -> str:
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=dt.UTC)
    body = {
        "seq": entry.seq, "at": at.astimezone(dt.UTC).isoformat(), "actor_id": entry.actor_id,
        "actor_role": entry.actor_role, "operator_id": entry.operator_id, "action": entry.action,
        "target": entry.target, "details": entry.details, "prev_hash": entry.prev_hash,
    }
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def record(session: Session, *, action: str, actor_id: str | None, actor_role: str | None,
           target: str | None = None, operator_id: str | None = None,
           details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry. ``details`` must not hold personal data (mask it first)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        # Serialise appenders so two transactions never chain to the same predecessor.
        session.execute(sa.text("SELECT pg_advisory_xact_lock(7242001)"))
    last = session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
    entry = AuditEntry(
        seq=(last.seq + 1) if last else 1,
        at=utcnow(),
        actor_id=actor_id, actor_role=actor_role, operator_id=operator_id, action=action,
        target=target, details=json.loads(json.dumps(details or {}, default=str)),
        prev_hash=last.hash if last else GENESIS, hash="",
    )
    entry.hash = _digest(entry)
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    reason: str | None = None


def verify_chain(session: Session, *, batch: int = 5000) -> ChainVerification:
    """Recompute every hash in order; name the first row that does not match."""
    prev = GENESIS
    count = 0
    expected_seq = 1
    last_seq = 0
    while True:
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return ChainVerification(ok=True, entries=count)
        for row in rows:
            if row.seq != expected_seq:
                return ChainVerification(False, count, expected_seq, f"row {expected_seq} is missing")
            if row.prev_hash != prev:
                return ChainVerification(False, count, row.seq, "prev_hash does not match the previous row")
            if _digest(row) != row.hash:
                return ChainVerification(False, count, row.seq, "content does not match its hash")
            prev = row.hash
            count += 1
            expected_seq += 1
            last_seq = row.seq
