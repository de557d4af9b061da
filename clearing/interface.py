"""The narrow interface ticketing calls: sale, refund, use and expiry records.

Ticketing (or the shell composing it) calls these with its own session, inside
the transaction of the business event: the ledger posting commits or rolls
back with the sale, the refund, the gate validation or the expiry. Each call
only flushes. Clearing never imports ticketing; these plain records are the
whole contract.

Idempotency: ``record_sale`` per ``ticket_id`` (a repeat with the same figures
is a no-op, different figures raise `SaleConflict`), ``record_refund`` per
``refund_id``, ``record_use`` and ``queue_use`` per ``leg_id``, ``record_expiry``
per ``leg_id``.

Uses at the gate (``queue_use``): the use row (``clearing_validations``,
``pending``) is the durable fact and is written in the admission's
transaction, in one statement; its revenue recognition is posted later, in
batches, by `recognise_pending_uses` (the job ``clearing.recognise_uses``),
and always before anything reads a leg's state for money: a settlement run,
a refund, an expiry. Recognition is a function of the use row and the sale
(share, service date, commission terms of that date), so it posts exactly
what ``record_use`` would have posted at the gate; the journal's unique
``event_key`` (``close:<leg_id>``) and the unique closing line per leg make it
once-only whatever crashes or races.
A leg is closed once: by its first use or expiry (revenue recognised on its
service date) or by a refund (recognised with the refund, on the refund
date). A use of a refunded leg is kept for reconciliation but moves no money;
refunding a used or expired leg raises `LegClosed`.

Money is integer minor units of ``currency``; timestamps are timezone-aware.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from clearing import ledger
from clearing.agreements import commission_amount, commission_terms_on, find_agreement
from clearing.apportionment import DEFAULT_AGREEMENT, Leg, apportion, largest_remainder
from clearing.clock import local_date
from clearing.errors import ApportionmentError, InvalidRecord, LegClosed, RefundTooLarge, SaleConflict, UnknownLeg
from clearing.ledger import Line, NewEntry
from clearing.models import ClearingLeg, JournalEntry, JournalLine, Validation

__all__ = [
    "AS_PRICED", "PricedLeg", "RefundRecord", "SaleLeg", "SaleRecord", "UseRecord", "leg_values", "queue_use",
    "recognise_pending_uses", "record_expiry", "record_refund", "record_sale", "record_use",
]

_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class SaleLeg:
    """One leg of a sold ticket. ``distance_m`` in metres, ``standalone_fare`` in minor units (what the leg
    would cost bought alone); either may be None when unknown, if the agreement does not need it.
    ``value``: what the leg is worth, as fixed when it was offered (`leg_values`) and shown on the ticket;
    when every leg has one, they are the shares."""

    leg_id: str
    operator_id: str
    service_date: dt.date
    distance_m: int | None
    standalone_fare: int | None
    value: int | None = None


@dataclass(frozen=True)
class SaleRecord:
    """A paid ticket: ``paid_amount`` (minor units, after discounts and concessions) for all its legs."""

    ticket_id: str
    order_id: str
    currency: str
    paid_amount: int
    sold_at: dt.datetime
    legs: tuple[SaleLeg, ...]
    #: the agreement `leg_values` used for the legs' values (recorded on the clearing legs)
    agreement_id: str | None = None


@dataclass(frozen=True)
class RefundRecord:
    """Money returned to the passenger for some legs of one ticket (``amount`` minor units, after fees)."""

    refund_id: str
    ticket_id: str
    leg_ids: tuple[str, ...]
    amount: int
    currency: str
    refunded_at: dt.datetime
    #: what each leg of ``leg_ids`` gives back (sums to ``amount``, none above the leg's share); None: split
    #: in proportion to the shares
    leg_amounts: tuple[int, ...] | None = None


@dataclass(frozen=True)
class UseRecord:
    """A leg validated at a gate (or by staff: ``gate_id`` None)."""

    leg_id: str
    ticket_id: str
    operator_id: str
    used_at: dt.datetime
    gate_id: str | None


def _money(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidRecord(f"{name} is a non-negative integer amount of minor units", details={name: str(value)})
    return value


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise InvalidRecord(f"{name} is a timezone-aware datetime", details={name: str(value)})
    return value


def _currency(value: str) -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise InvalidRecord("currency is an ISO 4217 code such as CNY", details={"currency": str(value)})
    return value


def record_sale(session: Session, sale: SaleRecord) -> None:
    """Apportion the paid amount by the agreement in force on the sale date and post the sale entry."""
    currency = _currency(sale.currency)
    paid = _money(sale.paid_amount, "paid_amount")
    sold_at = _aware(sale.sold_at, "sold_at")
    if not sale.legs:
        raise InvalidRecord("a sale has at least one leg", details={"ticket_id": sale.ticket_id})
    leg_ids = [leg.leg_id for leg in sale.legs]
    if len(set(leg_ids)) != len(leg_ids) or not all(leg_ids) or not all(leg.operator_id for leg in sale.legs):
        raise InvalidRecord("legs need distinct ids and an operator", details={"ticket_id": sale.ticket_id})
    for leg in sale.legs:
        if leg.standalone_fare is not None:
            _money(leg.standalone_fare, "standalone_fare")
        if leg.distance_m is not None and (not isinstance(leg.distance_m, int) or leg.distance_m < 0):
            raise InvalidRecord("distance_m is a non-negative integer", details={"leg_id": leg.leg_id})

    event_key = f"sale:{sale.ticket_id}"
    # One read for the usual case (a new sale): nothing of this ticket or its legs is known yet.
    known_any = session.execute(sa.select(ClearingLeg.leg_id).where(sa.or_(
        ClearingLeg.ticket_id == sale.ticket_id, ClearingLeg.leg_id.in_(leg_ids))).limit(1)).first()  # type: ignore[attr-defined]
    if known_any is not None and ledger.find_entry(session, event_key) is not None:
        known = session.exec(select(ClearingLeg).where(ClearingLeg.ticket_id == sale.ticket_id)
                             .order_by(ClearingLeg.position)).all()
        if ([k.leg_id for k in known] != leg_ids or sum(k.share for k in known) != paid
                or any(k.currency != currency for k in known)):
            raise SaleConflict("this ticket was recorded with different figures",
                               details={"ticket_id": sale.ticket_id})
        return
    if known_any is not None:
        taken = session.exec(select(ClearingLeg.leg_id)
                             .where(ClearingLeg.leg_id.in_(leg_ids))).all()  # type: ignore[attr-defined]
        raise SaleConflict("leg ids already belong to another ticket" if taken else
                           "this ticket has clearing legs but no sale entry",
                           details={"leg_ids": sorted(taken)} if taken else {"ticket_id": sale.ticket_id})

    sold_on = local_date(sold_at)
    values = [leg.value for leg in sale.legs]
    if all(v is not None for v in values):
        # The legs' values were fixed by `leg_values` when the ticket was offered, shown to the passenger and
        # printed on the ticket: they are the shares (one rule for the ticket, refunds and clearing).
        shares = [_money(v, "value") for v in values]
        if sum(shares) != paid:
            raise InvalidRecord("the legs' values must sum to the paid amount",
                                details={"ticket_id": sale.ticket_id, "paid_amount": paid, "values": shares})
        agreement_id = (sale.agreement_id or AS_PRICED)[:64]
    else:
        agreement_id, shares = _apportion(session, paid, [Leg(leg.operator_id, leg.distance_m, leg.standalone_fare)
                                                          for leg in sale.legs], sold_on)
    session.execute(sa.insert(ClearingLeg.__table__), [  # type: ignore[attr-defined]
        dict(leg_id=leg.leg_id, ticket_id=sale.ticket_id, order_id=sale.order_id, position=position,
             operator_id=leg.operator_id, service_date=leg.service_date, currency=currency, share=share,
             distance_m=leg.distance_m, standalone_fare=leg.standalone_fare, agreement_id=agreement_id)
        for position, (leg, share) in enumerate(zip(sale.legs, shares, strict=True))])
    lines = [Line(ledger.CASH, paid, "sale", ticket_id=sale.ticket_id)]
    lines += [Line(ledger.deferred(leg.operator_id), -share, "sale", leg.operator_id, sale.ticket_id, leg.leg_id)
              for leg, share in zip(sale.legs, shares, strict=True)]
    ledger.post(session, NewEntry(event_key, "sale", currency, sold_on, lines, memo=f"order {sale.order_id}"))


def _apportion(session: Session, paid: int, inputs: list[Leg], on: dt.date) -> tuple[str, list[int]]:
    agreement = find_agreement(session, {leg.operator_id for leg in inputs}, on)
    try:
        return agreement.agreement_id, apportion(paid, inputs, agreement)
    except ApportionmentError:
        if agreement is DEFAULT_AGREEMENT:
            raise
        # A sale must not fail over a missing distance or fare (the passenger has paid): the default split
        # applies, and the legs say which agreement could not be, for the operators to dispute.
        return f"default!{agreement.agreement_id}"[:64], apportion(paid, inputs, DEFAULT_AGREEMENT)


#: The agreement id of legs valued as the fare engine priced them (no stored agreement covered the ticket).
AS_PRICED = "as_priced"


@dataclass(frozen=True)
class PricedLeg:
    """A leg being offered: its operator, distance, standalone fare and the fare engine's price for it."""

    operator_id: str
    distance_m: int | None
    standalone_fare: int | None
    price: int | None


def leg_values(session: Session, *, paid: int, legs: list[PricedLeg], on: dt.date) -> tuple[str, list[int]]:
    """What each leg of a ticket paid ``paid`` is worth: ``(agreement_id, values)``, values summing to ``paid``.

    The one rule (docs/refunds.md): a stored apportionment agreement in force on ``on`` that covers the
    ticket's operators splits ``paid`` by its method; without one, each leg is worth what the fare engine
    charged for it (discounts and concessions where the fare rules put them; `AS_PRICED`). The values are
    fixed when the ticket is offered, shown on the offer and the ticket, refunded by, and recorded as the
    clearing shares (`SaleLeg.value`).
    """
    _money(paid, "paid")
    if not legs:
        raise InvalidRecord("a ticket has at least one leg")
    agreement = find_agreement(session, {leg.operator_id for leg in legs}, on)
    prices = [leg.price for leg in legs]
    if agreement is DEFAULT_AGREEMENT and all(p is not None for p in prices):
        values = [_money(p, "price") for p in prices]
        if sum(values) == paid:
            return AS_PRICED, values
    return _apportion(session, paid, [Leg(leg.operator_id, leg.distance_m, leg.standalone_fare) for leg in legs], on)


def _get_leg(session: Session, leg_id: str) -> ClearingLeg:
    leg = session.get(ClearingLeg, leg_id)
    if leg is None:
        raise UnknownLeg("clearing has no sale for this leg", details={"leg_id": leg_id})
    return leg


def _closing_kind(session: Session, leg_id: str) -> str | None:
    """How the leg was closed (``recognition`` or ``refund``), or None while open."""
    return session.execute(
        sa.select(JournalEntry.kind).join(JournalLine, JournalLine.entry_id == JournalEntry.entry_id)
        .where(JournalLine.leg_id == leg_id, JournalLine.purpose == "close")
    ).scalar_one_or_none()


def _recognition(leg_id: str, ticket_id: str, op: str, service_date: dt.date, share: int, currency: str,
                 rate_bp: int, fixed: int, *, how: str) -> NewEntry:
    fee = commission_amount(share, rate_bp, fixed)
    lines = [Line(ledger.deferred(op), share, "close", op, ticket_id, leg_id),
             Line(ledger.payable(op), -(share - fee), "payable", op, ticket_id, leg_id)]
    if fee:
        lines.append(Line(ledger.COMMISSION, -fee, "commission", op, ticket_id, leg_id))
    return NewEntry(f"close:{leg_id}", "recognition", currency, service_date, lines, memo=how)


def _recognise(session: Session, leg: ClearingLeg, *, how: str) -> None:
    rate_bp, fixed = commission_terms_on(session, leg.service_date).get(leg.operator_id, (0, 0))
    ledger.post(session, _recognition(leg.leg_id, leg.ticket_id, leg.operator_id, leg.service_date, leg.share,
                                      leg.currency, rate_bp, fixed, how=how))


def record_use(session: Session, use: UseRecord) -> None:
    """Keep the validation and recognise the leg's share (once) on its service date, now."""
    used_at = _aware(use.used_at, "used_at")
    leg = _get_leg(session, use.leg_id)
    if leg.operator_id != use.operator_id or leg.ticket_id != use.ticket_id:
        raise InvalidRecord("the use names another operator or ticket than the sale",
                            details={"leg_id": use.leg_id})
    if session.get(Validation, use.leg_id) is not None:
        return
    session.add(Validation(leg_id=use.leg_id, ticket_id=use.ticket_id, operator_id=use.operator_id,
                           used_at=used_at.astimezone(dt.UTC), gate_id=use.gate_id))
    session.flush()
    if _closing_kind(session, leg.leg_id) is None:
        _recognise(session, leg, how="used")


def queue_use(session: Session, use: UseRecord) -> None:
    """Keep the validation, its recognition pending (`recognise_pending_uses`): one statement on the gate's path.

    The row is written only if the sale has this leg with this operator and ticket; otherwise the same
    errors as `record_use` (`UnknownLeg`, `InvalidRecord`). A second use of a leg is a no-op.
    """
    used_at = _aware(use.used_at, "used_at").astimezone(dt.UTC)
    dialect = session.get_bind().dialect.name
    stmt = _QUEUE_USE.get(dialect)
    if stmt is None:
        stmt = _QUEUE_USE[dialect] = _queue_use_statement(dialect)
    if session.new or session.dirty or session.deleted:
        session.flush()
    params = {"leg_id": use.leg_id, "operator_id": use.operator_id, "ticket_id": use.ticket_id, "used_at": used_at,
              "gate_id": use.gate_id}
    if session.connection().execute(stmt, params).first() is not None:
        return
    leg = _get_leg(session, use.leg_id)  # nothing written: say why (or it was a repeat)
    if leg.operator_id != use.operator_id or leg.ticket_id != use.ticket_id:
        raise InvalidRecord("the use names another operator or ticket than the sale",
                            details={"leg_id": use.leg_id})


_QUEUE_USE: dict[str, sa.Insert] = {}


def _queue_use_statement(dialect: str) -> sa.Insert:
    """``INSERT INTO clearing_validations SELECT ... FROM clearing_legs WHERE <the sale's leg> ON CONFLICT DO
    NOTHING``: the row only for a leg sold with this operator and ticket, once."""
    L, V = ClearingLeg.__table__.c, Validation.__table__  # type: ignore[attr-defined]
    source = sa.select(L.leg_id, L.ticket_id, L.operator_id, sa.bindparam("used_at", type_=sa.DateTime(timezone=True)),
                       sa.bindparam("gate_id", type_=sa.String()), sa.true()).where(
        L.leg_id == sa.bindparam("leg_id"), L.operator_id == sa.bindparam("operator_id"),
        L.ticket_id == sa.bindparam("ticket_id"))
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(V).from_select(["leg_id", "ticket_id", "operator_id", "used_at", "gate_id", "pending"],
                                 source).on_conflict_do_nothing(index_elements=["leg_id"]).returning(V.c.leg_id)


#: Uses recognised per batch (one journal insert of this many entries).
RECOGNITION_BATCH = 500


def recognise_pending_uses(session: Session, *, leg_ids: list[str] | tuple[str, ...] | None = None,
                           limit: int | None = None, skip_locked: bool = False) -> int:
    """Post the recognition of uses recorded by `queue_use`; returns how many legs were recognised.

    All pending uses (or those of ``leg_ids``; at most ``limit``), in batches of `RECOGNITION_BATCH`, each
    exactly as `record_use` would have posted it; a use of a leg already closed (refunded, expired) is
    marked done and moves no money. On PostgreSQL the pending rows are locked: a settlement run, refund or
    expiry waits for a concurrent job's batch; the job itself (``skip_locked``) takes rows no one holds.
    Flushes, never commits.
    """
    posted = done = 0
    while limit is None or done < limit:
        size = RECOGNITION_BATCH if limit is None else min(RECOGNITION_BATCH, limit - done)
        n, p = recognise_batch(session, leg_ids=leg_ids, size=size, skip_locked=skip_locked)
        done += n
        posted += p
        if n < size:
            break
    return posted


def recognise_batch(session: Session, *, size: int = RECOGNITION_BATCH, skip_locked: bool = False,
                    leg_ids: list[str] | tuple[str, ...] | None = None) -> tuple[int, int]:
    """One batch of `recognise_pending_uses`: ``(uses done, legs recognised)``, the oldest uses first."""
    V, L = Validation, ClearingLeg
    stmt = (sa.select(V.leg_id, L.ticket_id, L.operator_id, L.service_date, L.share, L.currency)
            .join(L, L.leg_id == V.leg_id).where(V.pending))
    if leg_ids is not None:
        if not leg_ids:
            return 0, 0
        stmt = stmt.where(V.leg_id.in_(list(leg_ids)))  # type: ignore[attr-defined]
    stmt = stmt.order_by(V.used_at, V.leg_id).limit(size)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=V.__table__, skip_locked=skip_locked)
    rows = session.execute(stmt).all()
    if not rows:
        return 0, 0
    ids = [r.leg_id for r in rows]
    closed = set(session.execute(sa.select(JournalLine.leg_id).where(
        JournalLine.leg_id.in_(ids), JournalLine.purpose == "close")).scalars())  # type: ignore[attr-defined]
    terms: dict[dt.date, object] = {}
    entries = []
    for r in rows:
        if r.leg_id in closed:
            continue
        if r.service_date not in terms:
            terms[r.service_date] = commission_terms_on(session, r.service_date)
        rate_bp, fixed = terms[r.service_date].get(r.operator_id, (0, 0))  # type: ignore[attr-defined]
        entries.append(_recognition(r.leg_id, r.ticket_id, r.operator_id, r.service_date, r.share, r.currency,
                                    rate_bp, fixed, how="used"))
    if entries:
        ledger.post_many(session, entries)
    _mark_recognised(session, ids)
    return len(rows), len(entries)


def _mark_recognised(session: Session, leg_ids: list[str]) -> None:
    session.execute(sa.update(Validation).where(Validation.leg_id.in_(leg_ids))  # type: ignore[attr-defined]
                    .values(pending=False).execution_options(synchronize_session=False))


def record_expiry(session: Session, *, leg_id: str, expired_at: dt.datetime) -> None:
    """Recognise an unused leg's share (once) on its service date; a closed leg is left as it is."""
    _aware(expired_at, "expired_at")
    leg = _get_leg(session, leg_id)
    recognise_pending_uses(session, leg_ids=[leg_id])  # a use at the gate closed it first
    if _closing_kind(session, leg_id) is None:
        _recognise(session, leg, how="expired")


def record_refund(session: Session, refund: RefundRecord) -> None:
    """Close the refunded legs on the refund date: their shares less the refund stay with their operators."""
    currency = _currency(refund.currency)
    amount = _money(refund.amount, "amount")
    refunded_at = _aware(refund.refunded_at, "refunded_at")
    event_key = f"refund:{refund.refund_id}"
    if ledger.find_entry(session, event_key) is not None:
        return
    if not refund.leg_ids or len(set(refund.leg_ids)) != len(refund.leg_ids):
        raise InvalidRecord("a refund names distinct legs", details={"refund_id": refund.refund_id})
    legs = [_get_leg(session, leg_id) for leg_id in refund.leg_ids]
    recognise_pending_uses(session, leg_ids=refund.leg_ids)  # a leg used at the gate is closed: LegClosed
    for leg in legs:
        if leg.ticket_id != refund.ticket_id or leg.currency != currency:
            raise InvalidRecord("the refund names a leg of another ticket or currency",
                                details={"leg_id": leg.leg_id})
        closed = _closing_kind(session, leg.leg_id)
        if closed is not None:
            raise LegClosed("this leg was already used, expired or refunded",
                            details={"leg_id": leg.leg_id, "closed_by": closed})
    shares = [leg.share for leg in legs]
    if amount > sum(shares):
        raise RefundTooLarge("the refund exceeds what was paid for these legs",
                             details={"amount": amount, "paid": sum(shares)})
    if refund.leg_amounts is not None:
        parts = [_money(a, "leg_amounts") for a in refund.leg_amounts]
        if len(parts) != len(legs) or sum(parts) != amount:
            raise InvalidRecord("leg_amounts give one amount per leg and sum to the refund's amount",
                                details={"refund_id": refund.refund_id})
        over = [leg.leg_id for leg, part in zip(legs, parts, strict=True) if part > leg.share]
        if over:
            raise RefundTooLarge("the refund exceeds what was paid for a leg",
                                 details={"leg_id": over[0], "amount": amount, "paid": sum(shares)})
    else:
        parts = largest_remainder(amount, shares)
    lines: list[Line] = []
    for leg, part in zip(legs, parts, strict=True):
        op, t = leg.operator_id, leg.ticket_id
        lines += [Line(ledger.deferred(op), leg.share, "close", op, t, leg.leg_id),
                  Line(ledger.payable(op), -(leg.share - part), "payable", op, t, leg.leg_id),
                  Line(ledger.REFUNDS, -part, "refund", op, t, leg.leg_id)]
    ledger.post(session, NewEntry(event_key, "refund", currency, local_date(refunded_at), lines,
                                  memo=f"refund of ticket {refund.ticket_id}"))
