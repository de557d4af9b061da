"""Disputes: an operator contests one of its statement lines; an admin accepts or rejects it.

Accepting with a non-zero amount posts an adjustment entry (Dr
platform:adjustments, Cr the operator's payable; a negative amount claws
back) dated on the resolution day; the next settlement run whose period
covers that day (or any later run) pays it as an adjustment on the leg.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlmodel import Session, select

from clearing import ledger
from clearing.clock import local_date, utcnow
from clearing.errors import DisputeClosed, DisputeNotFound, InvalidRecord, LineNotFound
from clearing.ledger import Line, NewEntry
from clearing.models import Dispute, SettlementLine
from clearing.settlement import get_run


def open_dispute(session: Session, *, run_id: str, operator_id: str, leg_id: str, reason: str,
                 claimed_amount: int | None = None, kind: str = "regular", actor_id: str | None = None) -> Dispute:
    """Open a dispute of the operator's line ``(run_id, leg_id, kind)``; one open dispute per line."""
    get_run(session, run_id)
    line = session.get(SettlementLine, (run_id, operator_id, leg_id, kind))
    if line is None:
        # Another operator's line is reported exactly like a missing one: nothing leaks.
        raise LineNotFound("no such line in this operator's statement",
                           details={"run_id": run_id, "leg_id": leg_id})
    pending = session.exec(select(Dispute).where(Dispute.run_id == run_id, Dispute.leg_id == leg_id,
                                                 Dispute.line_kind == kind, Dispute.status == "open")).first()
    if pending is not None:
        raise DisputeClosed("this line already has an open dispute", code="dispute_exists",
                            details={"dispute_id": pending.dispute_id})
    dispute = Dispute(dispute_id=f"dsp_{secrets.token_hex(12)}", run_id=run_id, operator_id=operator_id,
                      leg_id=leg_id, line_kind=kind, reason=reason, claimed_amount=claimed_amount,
                      opened_by=actor_id)
    session.add(dispute)
    session.flush()
    return dispute


def get_dispute(session: Session, dispute_id: str) -> Dispute:
    dispute = session.get(Dispute, dispute_id)
    if dispute is None:
        raise DisputeNotFound("no dispute with this id", details={"dispute_id": dispute_id})
    return dispute


def list_disputes(session: Session, *, operator_id: str | None = None, status: str | None = None) -> list[Dispute]:
    stmt = select(Dispute).order_by(Dispute.opened_at)
    if operator_id is not None:
        stmt = stmt.where(Dispute.operator_id == operator_id)
    if status is not None:
        stmt = stmt.where(Dispute.status == status)
    return list(session.exec(stmt).all())


def resolve_dispute(session: Session, dispute_id: str, *, accept: bool, amount: int = 0, note: str | None = None,
                    actor_id: str | None = None, now: dt.datetime | None = None) -> Dispute:
    """Close the dispute; when accepted with ``amount`` != 0 (minor units, + to the operator) post the adjustment."""
    now = now or utcnow()
    dispute = get_dispute(session, dispute_id)
    if dispute.status != "open":
        raise DisputeClosed("this dispute is already resolved", details={"status": dispute.status})
    if not isinstance(amount, int) or isinstance(amount, bool) or (not accept and amount != 0):
        raise InvalidRecord("a rejection carries no amount; an acceptance an integer amount of minor units")
    line = session.get(SettlementLine, (dispute.run_id, dispute.operator_id, dispute.leg_id, dispute.line_kind))
    assert line is not None  # lines are append-only and the dispute was opened against it
    if accept and amount:
        run = get_run(session, dispute.run_id)
        op, t = dispute.operator_id, line.ticket_id
        dispute.adjustment_entry_id = ledger.post(session, NewEntry(
            f"dispute:{dispute.dispute_id}", "adjustment", run.currency, local_date(now),
            [Line(ledger.ADJUSTMENTS, amount, "adjustment_cost", op, t, dispute.leg_id),
             Line(ledger.payable(op), -amount, "adjustment", op, t, dispute.leg_id)],
            memo=f"dispute {dispute.dispute_id}"))
    dispute.status = "accepted" if accept else "rejected"
    dispute.resolution_amount = amount if accept else 0
    dispute.resolution_note = note
    dispute.resolved_by = actor_id
    dispute.resolved_at = now
    session.add(dispute)
    session.flush()
    return dispute
