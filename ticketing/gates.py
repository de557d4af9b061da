"""Gate validation: online scans (QR or ID number) and offline taps uploaded later.

A leg is admitted once: the ``unused -> used`` change is one conditional
``UPDATE ... WHERE status = 'unused'`` whose row count decides, so concurrent
scans of one code on any number of workers admit exactly one (PostgreSQL
re-checks the condition after the row lock; SQLite serialises writers).
Every decision, accepted or not, is recorded as a `GateValidation` with a reason
code; admitted legs are reported to the ledger in the same transaction.

The online path is a handful of Core statements (no ORM unit of work): the
ticket and its legs in one ``SELECT``, the admission ``UPDATE ... RETURNING``,
the ticket's status only when it changes, the ledger's use row, the
validation record.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session, select

from ticketing.crypto import Keyring
from ticketing.ledger import Ledger, Use
from ticketing.models import LegStatus, Ticket, TicketLeg, Traveler, GateValidation, new_id
from ticketing.qr import QRRejected, VerifiedQR, verify_qr
from ticketing.tickets import ticket_status

#: Reasons a gate may answer with (besides the QR codes of `ticketing.qr.verify_qr`).
REASONS = ("malformed", "unknown_key", "bad_signature", "bad_device_key", "bad_device_signature", "expired_qr",
           "outside_validity", "unknown_ticket", "device_bound", "device_mismatch", "revoked", "wrong_operator", "wrong_stop", "already_used", "refunded",
           "expired", "not_yet_valid")


@dataclass(frozen=True)
class GateContext:
    gate_id: str
    operator_id: str
    stop_id: str


@dataclass
class Decision:
    result: str  # accepted | rejected | flagged | duplicate_upload
    reason: str | None
    ticket_id: str | None = None
    leg_id: str | None = None
    flag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"result": self.result, "reason": self.reason, "ticket_id": self.ticket_id, "leg_id": self.leg_id}
        if self.flag:
            out["flag"] = self.flag
        return out


@dataclass
class LegSnap:
    """What a gate decision reads of a leg (a Core row, not an ORM object)."""

    leg_id: str
    operator_id: str
    from_stop_id: str
    from_station_id: str | None
    status: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    used_gate_id: str | None


@dataclass
class TicketSnap:
    ticket_id: str
    status: str
    device_key: str | None
    legs: list[LegSnap]


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite keeps no offset (every stored time is UTC); PostgreSQL answers aware times
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


_T = Ticket.__table__.c  # type: ignore[attr-defined]
_L = TicketLeg.__table__.c  # type: ignore[attr-defined]


_SNAP_COLS = (_T.ticket_id, _T.status, _T.device_key, _L.leg_id, _L.operator_id, _L.from_stop_id,
              _L.from_station_id, _L.status.label("leg_status"), _L.valid_from, _L.valid_until, _L.used_gate_id)
_SNAP_FROM = Ticket.__table__.outerjoin(TicketLeg.__table__, _L.ticket_id == _T.ticket_id)  # type: ignore[attr-defined]
# Statements of the hot path built once (bound parameters): no per-request statement construction.
_LOAD_ONE = (sa.select(*_SNAP_COLS).select_from(_SNAP_FROM).where(_T.ticket_id == sa.bindparam("ticket_id"))
             .order_by(_L.position))
_ADMIT = (sa.update(TicketLeg.__table__)  # type: ignore[attr-defined]
          .where(_L.leg_id == sa.bindparam("leg"), _L.status == LegStatus.unused.value)
          .values(status=LegStatus.used.value, used_at=sa.bindparam("at"), used_gate_id=sa.bindparam("gate"))
          .returning(_L.leg_id))
_SET_TICKET_STATUS = (sa.update(Ticket.__table__).where(_T.ticket_id == sa.bindparam("ticket"))  # type: ignore[attr-defined]
                      .values(status=sa.bindparam("status")))
_RECORD = sa.insert(GateValidation.__table__)  # type: ignore[attr-defined]


def _conn(session: Session) -> sa.Connection:
    """The session's connection for Core statements (its transaction), after flushing pending ORM work."""
    if session.new or session.dirty or session.deleted:
        session.flush()
    return session.connection()


def load_tickets(session: Session, ticket_ids: list[str]) -> dict[str, TicketSnap]:
    """The tickets and their legs (in position order) in one statement."""
    if not ticket_ids:
        return {}
    if len(ticket_ids) == 1:
        rows = _conn(session).execute(_LOAD_ONE, {"ticket_id": ticket_ids[0]})
    else:
        rows = _conn(session).execute(sa.select(*_SNAP_COLS).select_from(_SNAP_FROM)
                                      .where(_T.ticket_id.in_(ticket_ids)).order_by(_T.ticket_id, _L.position))
    out: dict[str, TicketSnap] = {}
    for r in rows:
        snap = out.get(r.ticket_id)
        if snap is None:
            snap = out[r.ticket_id] = TicketSnap(r.ticket_id, r.status, r.device_key, [])
        if r.leg_id is not None:
            snap.legs.append(LegSnap(r.leg_id, r.operator_id, r.from_stop_id, r.from_station_id, r.leg_status,
                                     _utc(r.valid_from), _utc(r.valid_until), r.used_gate_id))
    return out


def _pick_leg(legs: list[LegSnap], gate: GateContext, at: dt.datetime) -> tuple[LegSnap | None, str | None]:
    """The leg this gate may admit at ``at``, or ``(None, reason)``."""
    mine = [x for x in legs if x.operator_id == gate.operator_id]
    if not mine:
        return None, "wrong_operator"
    here = [x for x in mine if gate.stop_id in (x.from_stop_id, x.from_station_id)]
    if not here:
        return None, "wrong_stop"
    for x in here:
        if x.status == LegStatus.unused and x.valid_from <= at <= x.valid_until:
            return x, None
    states = {x.status for x in here}
    if LegStatus.unused in states:
        unused = [x for x in here if x.status == LegStatus.unused]
        return (None, "not_yet_valid") if all(at < x.valid_from for x in unused) else (None, "outside_validity")
    for status, reason in ((LegStatus.used, "already_used"), (LegStatus.refunded, "refunded"),
                           (LegStatus.expired, "expired")):
        if status in states:
            return next(x for x in here if x.status == status), reason
    return None, "outside_validity"


def _admit(session: Session, leg: LegSnap, gate: GateContext, at: dt.datetime) -> bool:
    """The arbiter of once-only admission: one conditional UPDATE; a row back means this scan won."""
    return _conn(session).execute(_ADMIT, {"leg": leg.leg_id, "at": at, "gate": gate.gate_id}).first() is not None


@dataclass(frozen=True)
class Recorded:
    validation_id: str


def _record(session: Session, gate: GateContext, d: Decision, *, method: str, at: dt.datetime, now: dt.datetime,
            source: str = "online", tap_id: str | None = None) -> Recorded:
    """Inserts the decision's `GateValidation` at once (one Core INSERT)."""
    validation_id = new_id("val")
    _conn(session).execute(_RECORD, {
        "validation_id": validation_id, "gate_id": gate.gate_id, "operator_id": gate.operator_id,
        "stop_id": gate.stop_id, "ticket_id": d.ticket_id, "leg_id": d.leg_id, "result": d.result,
        "reason": d.reason, "method": method, "source": source, "tap_id": tap_id, "flag": d.flag, "scanned_at": at,
        "recorded_at": now})
    return Recorded(validation_id)


def _used_gate(session: Session, leg_id: str) -> str | None:
    return session.execute(sa.select(_L.used_gate_id).where(_L.leg_id == leg_id)).scalar_one_or_none()


def _decide(session: Session, tickets: list[Ticket] | list[TicketSnap], gate: GateContext, *, at: dt.datetime,
            ledger: Ledger, offline: bool) -> Decision:
    snaps: list[TicketSnap]
    if tickets and not isinstance(tickets[0], TicketSnap):
        loaded = load_tickets(session, [t.ticket_id for t in tickets])
        snaps = [loaded[t.ticket_id] for t in tickets if t.ticket_id in loaded]
    else:
        snaps = list(tickets)  # type: ignore[arg-type]
    last: Decision | None = None
    for ticket in snaps:
        if ticket.status == "refunded":
            last = Decision("rejected", "revoked", ticket.ticket_id)
            continue
        leg, reason = _pick_leg(ticket.legs, gate, at)
        if leg is None or reason is not None:
            last = Decision("rejected", reason, ticket.ticket_id, leg.leg_id if leg else None)
            if offline and reason == "already_used" and leg is not None:
                last = Decision("flagged", reason, ticket.ticket_id, leg.leg_id,
                                "replay" if leg.used_gate_id == gate.gate_id else "conflict")
            continue
        if not _admit(session, leg, gate, at):
            if offline:
                return Decision("flagged", "already_used", ticket.ticket_id, leg.leg_id,
                                "replay" if _used_gate(session, leg.leg_id) == gate.gate_id else "conflict")
            return Decision("rejected", "already_used", ticket.ticket_id, leg.leg_id)
        leg.status, leg.used_gate_id = LegStatus.used.value, gate.gate_id
        status = ticket_status(ticket.legs)  # type: ignore[arg-type]
        if status != ticket.status:
            _conn(session).execute(_SET_TICKET_STATUS, {"ticket": ticket.ticket_id, "status": status})
            ticket.status = status
        ledger.use(session, Use(leg_id=leg.leg_id, ticket_id=ticket.ticket_id, operator_id=leg.operator_id,
                                used_at=at, gate_id=gate.gate_id))
        return Decision("accepted", None, ticket.ticket_id, leg.leg_id)
    return last or Decision("rejected", "unknown_ticket")


def _binding_reason(ticket: Ticket | TicketSnap, v: VerifiedQR, *, offline: bool) -> str | None:
    """Device binding is exclusive: a bound ticket admits only codes of its device.

    ``device_bound``: a rotating (kind-1) code of a bound ticket, refused online (the server mints none
    after binding, so it can only be one fetched before, still fresh). An offline gate cannot know and
    has already let the holder through, so its uploaded tap is still counted (the leg is used once).
    ``device_mismatch``: a kind-2 credential naming another key than the one bound to the ticket.
    """
    if v.kind == "qr":
        return "device_bound" if ticket.device_key is not None and not offline else None
    bound = ticket.device_key
    if bound is None or v.device_key is None:
        return "device_mismatch"
    return None if base64.urlsafe_b64encode(v.device_key).rstrip(b"=").decode() == bound else "device_mismatch"


def validate_qr(session: Session, gate: GateContext, *, payload: str, keys: dict[str, Ed25519PublicKey],
                ledger: Ledger, now: dt.datetime, ttl_s: int) -> Decision:
    """Online scan of a QR payload (either kind)."""
    try:
        v = verify_qr(payload, keys, now=now, ttl_s=ttl_s)
    except QRRejected as exc:
        d = Decision("rejected", exc.code)
        _record(session, gate, d, method="qr", at=now, now=now)
        return d
    ticket = load_tickets(session, [v.ticket_id]).get(v.ticket_id)
    reason = _binding_reason(ticket, v, offline=False) if ticket is not None else None
    if ticket is None:
        d = Decision("rejected", "unknown_ticket", v.ticket_id)
    elif reason is not None:
        d = Decision("rejected", reason, v.ticket_id)
    else:
        d = _decide(session, [ticket], gate, at=now, ledger=ledger, offline=False)
    _record(session, gate, d, method=v.kind, at=now, now=now)
    return d


def in_operator_scope(session: Session, ticket_id: str, operator_id: str) -> bool:
    """Whether the ticket has a leg of ``operator_id`` (what a gate of that operator may learn anything about)."""
    return session.exec(select(TicketLeg.leg_id).where(TicketLeg.ticket_id == ticket_id,
                                                       TicketLeg.operator_id == operator_id).limit(1)).first() \
        is not None


def validate_id_number(session: Session, gate: GateContext, *, id_number: str, id_type: str, keyring: Keyring,
                       ledger: Ledger, now: dt.datetime) -> Decision:
    """Online check of a traveller's ID document (一证通行): found by blind index, never by clear number.

    Only tickets with a leg of the gate's operator are considered: for another operator's gate, an ID
    number holding a ticket answers exactly like one holding none (``unknown_ticket``, no ticket id).
    """
    index = keyring.blind_index(id_number, f"id_number:{id_type}")
    travelers = session.exec(select(Traveler.traveler_id).where(Traveler.id_number_index == index)).all()
    mine = (select(TicketLeg.ticket_id).where(TicketLeg.operator_id == gate.operator_id)
            .where(TicketLeg.ticket_id == Ticket.ticket_id).exists())
    ids = list(session.exec(select(Ticket.ticket_id).where(Ticket.traveler_id.in_(travelers))  # type: ignore[attr-defined]
                            .where(mine).order_by(Ticket.valid_from))) if travelers else []
    loaded = load_tickets(session, ids)
    d = _decide(session, [loaded[i] for i in ids if i in loaded], gate, at=now, ledger=ledger, offline=False)
    _record(session, gate, d, method="id_number", at=now, now=now)
    return d


@dataclass(frozen=True)
class Tap:
    tap_id: str
    payload: str
    scanned_at: dt.datetime


def upload_taps(session: Session, gate: GateContext, taps: list[Tap], *, keys: dict[str, Ed25519PublicKey],
                ledger: Ledger, now: dt.datetime, ttl_s: int) -> list[Decision]:
    """Offline validations uploaded in a batch: each is checked as of its scan time.

    A tap already uploaded (same gate and ``tap_id``) is ``duplicate_upload``;
    a leg already used is ``flagged`` as ``replay`` (same gate) or
    ``conflict`` (another gate) and never counted twice.
    """
    out = []
    taps = [Tap(t.tap_id, t.payload, t.scanned_at.astimezone(dt.UTC)) for t in taps]
    for tap in taps:
        seen = session.exec(select(GateValidation).where(GateValidation.gate_id == gate.gate_id,
                                                     GateValidation.tap_id == tap.tap_id)).first()
        if seen is not None:
            out.append(Decision("duplicate_upload", seen.reason, seen.ticket_id, seen.leg_id, seen.flag))
            continue
        try:
            v = verify_qr(tap.payload, keys, now=tap.scanned_at, ttl_s=ttl_s)
        except QRRejected as exc:
            d = Decision("rejected", exc.code)
            method = "qr"
        else:
            method = v.kind
            ticket = load_tickets(session, [v.ticket_id]).get(v.ticket_id)
            reason = _binding_reason(ticket, v, offline=True) if ticket is not None else None
            if ticket is None:
                d = Decision("rejected", "unknown_ticket", v.ticket_id)
            elif reason is not None:
                d = Decision("rejected", reason, v.ticket_id)
            else:
                d = _decide(session, [ticket], gate, at=tap.scanned_at, ledger=ledger, offline=True)
        _record(session, gate, d, method=method, at=tap.scanned_at, now=now, source="offline", tap_id=tap.tap_id)
        out.append(d)
    return out


def revocations(session: Session, *, now: dt.datetime) -> dict[str, list[str]]:
    """Ticket and leg ids that must not pass any more although their credential is still valid."""
    tickets = session.exec(select(Ticket.ticket_id).where(Ticket.status == "refunded",
                                                          Ticket.valid_until >= now)).all()
    legs = session.exec(select(TicketLeg.leg_id).where(TicketLeg.status == LegStatus.refunded.value,
                                                       TicketLeg.valid_until >= now)).all()
    return {"revoked_tickets": sorted(tickets), "revoked_legs": sorted(legs)}
