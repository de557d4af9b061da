"""Refunds of unused legs by the operators' rules, through the payment provider.

Refund rules (JSON file ``MAAS_REFUND_RULES_FILE`` or `DEFAULT_RULES`)::

    {"default": [{"min_hours_before": 24, "fee_percent": 0},
                 {"min_hours_before": 2, "fee_percent": 5},
                 {"min_hours_before": 0, "fee_percent": 10}],
     "operators": {"yunxi-coach": [...]}}

A leg's fee is the first tier (largest ``min_hours_before`` first) whose
threshold the time left before the leg's departure reaches; after departure a
leg is not refundable. Fees are rounded half up to whole minor units. Legs are
locked by a conditional update (``unused -> refunded``), so a leg cannot be
both refunded and admitted at a gate. What a leg is worth is its price on the
ticket (docs/refunds.md).

A refund is a durable two-phase flow (`request_refund`), so money never leaves
without a record and never leaves twice:

1. **intent** (`begin_refund`): under the order's row lock the legs move
   ``unused -> refunded`` and a ``pending`` `Refund` row records what each leg
   gives back; the caller's ``commit`` makes this durable *before* any money
   moves. A retry of the same legs finds this row instead of making another.
2. **provider call**: the refund id is the provider's idempotency key (and
   its metadata), so a repeated call returns the same provider refund; a
   retry or the reconciliation job first looks the refund up at the provider.
3. **outcome** (`complete_refund`, idempotent): ``succeeded`` posts the
   ledger entries, frees the seats and moves the order; ``failed`` gives the
   legs back (``refunded -> unused``); ``pending`` waits for the webhook
   (``charge.refunded`` / ``refund.updated``) or `reconcile_refunds`.

A crash anywhere leaves a ``pending`` intent that the next retry, the
provider's webhook or the ``ticketing.reconcile_refunds`` job finishes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import update
from sqlmodel import Session, select

from ticketing import seats
from ticketing.errors import IllegalTransition, LegNotRefundable, PaymentProviderError
from ticketing.fares.money import scale_minor
from ticketing.ledger import Ledger, RefundEvent
from ticketing.models import LegStatus, Offer, OrderStatus, Payment, Refund, Ticket, TicketLeg, new_id
from ticketing.orders import get_order, transition
from ticketing.payments import ProviderRefund, Providers, RefundUpdate
from ticketing.tickets import refresh_ticket_status

DEFAULT_RULES: dict[str, Any] = {
    "default": [{"min_hours_before": 24, "fee_percent": 0}, {"min_hours_before": 2, "fee_percent": 5},
                {"min_hours_before": 0, "fee_percent": 10}],
    "operators": {},
}


@dataclass(frozen=True)
class RefundRules:
    default: tuple[tuple[int, int], ...]  # (min seconds before departure, fee percent), largest first
    operators: dict[str, tuple[tuple[int, int], ...]]

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RefundRules:
        def tiers(rows: list[dict[str, Any]]) -> tuple[tuple[int, int], ...]:
            out = []
            for r in rows:
                hours, pct = r.get("min_hours_before"), r.get("fee_percent")
                if not isinstance(hours, (int, float)) or not isinstance(pct, int) or not 0 <= pct <= 100:
                    raise ValueError("refund rule tiers need min_hours_before (number) and fee_percent (0-100 int)")
                out.append((int(hours * 3600), pct))
            return tuple(sorted(out, reverse=True))

        return cls(tiers(doc.get("default") or DEFAULT_RULES["default"]),
                   {op: tiers(rows) for op, rows in (doc.get("operators") or {}).items()})

    @classmethod
    def load(cls, path: Path | None) -> RefundRules:
        return cls.from_doc(json.loads(Path(path).read_text(encoding="utf-8")) if path else DEFAULT_RULES)

    def fee_percent(self, operator_id: str, seconds_before: float) -> int | None:
        """Fee percent for a leg departing in ``seconds_before`` seconds; ``None`` when not refundable."""
        for min_s, pct in self.operators.get(operator_id, self.default):
            if seconds_before >= min_s:
                return pct
        return None


def _checkpoint(stage: str) -> None:
    """Called between the steps of a refund. Does nothing; tests replace it to fail a refund partway."""


def _same_legs(refund: Refund, legs: list[str]) -> bool:
    return sorted(refund.leg_ids) == sorted(legs)


def begin_refund(session: Session, *, order_id: str, user_id: str, leg_ids: list[str], rules: RefundRules,
                 now: dt.datetime) -> tuple[Refund, bool]:
    """Phase 1: locks the legs and records the refund intent (``pending``); returns ``(refund, created)``.

    A request for exactly the legs of an earlier refund that did not fail returns that refund
    (``created`` False): a retried request never refunds twice. Raises `LegNotRefundable` / `IllegalTransition`.
    """
    order = get_order(session, order_id, user_id=user_id, for_update=True)
    wanted = list(dict.fromkeys(leg_ids))
    for earlier in session.exec(select(Refund).where(Refund.order_id == order_id,
                                                     Refund.status != "failed")).all():
        if earlier.leg_ids and _same_legs(earlier, wanted):
            return earlier, False
    if order.status not in (OrderStatus.ticketed, OrderStatus.partially_refunded):
        raise IllegalTransition(f"an order in state {order.status} has nothing to refund",
                                details={"order_id": order_id, "from": order.status})
    rows = session.exec(select(TicketLeg, Ticket).join(Ticket, Ticket.ticket_id == TicketLeg.ticket_id)
                        .where(Ticket.order_id == order_id, TicketLeg.leg_id.in_(wanted))).all()  # type: ignore[attr-defined]
    found = {leg.leg_id: (leg, ticket) for leg, ticket in rows}
    missing = [x for x in wanted if x not in found]
    if missing:
        raise LegNotRefundable("these legs are not part of the order", details={"leg_ids": missing})
    parts = []
    for leg_id in wanted:
        leg, ticket = found[leg_id]
        pct = rules.fee_percent(leg.operator_id, (leg.departure - now).total_seconds())
        if pct is None:
            raise LegNotRefundable("the leg has departed", details={"leg_id": leg_id, "reason": "departed"})
        changed = session.execute(update(TicketLeg).where(TicketLeg.leg_id == leg_id,
                                                          TicketLeg.status == LegStatus.unused.value)
                                  .values(status=LegStatus.refunded.value)
                                  .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            raise LegNotRefundable(f"the leg is {leg.status}, only unused legs are refundable",
                                   details={"leg_id": leg_id, "reason": leg.status})
        fee = scale_minor(leg.price_amount, pct)
        parts.append({"leg_id": leg_id, "ticket_id": ticket.ticket_id, "amount": leg.price_amount - fee, "fee": fee})
    refund = Refund(refund_id=new_id("rfd"), order_id=order_id, leg_ids=wanted,
                    amount=sum(p["amount"] for p in parts), fee=sum(p["fee"] for p in parts),
                    currency=order.currency, status="pending", parts=parts, created_at=now, updated_at=now)
    session.add(refund)
    session.flush()
    return refund, True


def call_provider(session: Session, refund: Refund, *, providers: Providers, lookup: bool) -> ProviderRefund:
    """Phase 2: the refund at the rail that took the payment (``lookup``: first ask whether it already made one)."""
    if refund.amount == 0:
        return ProviderRefund(ref="", status="succeeded")  # nothing to pay back (free legs, 100 % fee)
    payment = session.exec(select(Payment).where(Payment.order_id == refund.order_id)).first()
    assert payment is not None  # a ticketed order was paid
    provider = providers.for_payment(payment)
    if lookup:
        known = provider.find_refund(payment_ref=payment.provider_ref, refund_id=refund.refund_id)
        if known is not None:
            return known
    return provider.refund(payment_ref=payment.provider_ref, amount=refund.amount, refund_id=refund.refund_id,
                           total=payment.amount)


def complete_refund(session: Session, refund_id: str, *, status: str, provider_ref: str | None,
                    redis_client: redis.Redis, ledger: Ledger, now: dt.datetime) -> Refund:
    """Phase 3: records the provider's outcome once (a finished refund is returned unchanged)."""
    refund = session.get(Refund, refund_id)
    assert refund is not None
    order = get_order(session, refund.order_id, for_update=True)
    session.refresh(refund)
    if refund.status != "pending":
        return refund
    if provider_ref:
        refund.provider_ref = provider_ref
    refund.updated_at = now
    session.add(refund)
    if status == "pending":
        session.flush()
        return refund
    if refund.parts is None and refund.leg_ids and status == "succeeded":
        refund.status = "succeeded"  # recorded before intents existed: its ledger entries were posted then
        session.flush()
        return refund
    in_refund = TicketLeg.leg_id.in_(refund.leg_ids)  # type: ignore[attr-defined]
    legs = list(session.exec(select(TicketLeg).where(in_refund)).all())
    by_ticket: dict[str, list[TicketLeg]] = {}
    for leg in legs:
        by_ticket.setdefault(leg.ticket_id, []).append(leg)
    if status == "failed":
        refund.status = "failed"
        session.execute(update(TicketLeg).where(in_refund, TicketLeg.status == LegStatus.refunded.value)
                        .values(status=LegStatus.unused.value).execution_options(synchronize_session=False))
        session.flush()
        for leg in legs:
            session.refresh(leg)
        for ticket_id in sorted(by_ticket):
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            refresh_ticket_status(session, ticket)
        session.flush()
        return refund
    refund.status = "succeeded"
    parts = {p["leg_id"]: p for p in (refund.parts or [])}
    offer = session.get(Offer, order.offer_id)
    holds = {h["leg_index"]: h for h in (offer.holds if offer else [])}
    for n, ticket_id in enumerate(sorted(by_ticket)):
        ticket_legs = sorted(by_ticket[ticket_id], key=lambda x: x.position)
        for leg in ticket_legs:
            session.refresh(leg)
            hold = holds.get(leg.leg_index)
            if hold is not None and leg.seat is not None:
                seats.release(redis_client, key=hold["key"], hold_id=hold["hold_id"], seat=int(leg.seat))
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        refresh_ticket_status(session, ticket)
        amounts = tuple(int(parts[leg.leg_id]["amount"]) for leg in ticket_legs)
        ledger.refund(session, RefundEvent(refund_id=f"{refund.refund_id}-{n}", ticket_id=ticket_id,
                                           leg_ids=tuple(leg.leg_id for leg in ticket_legs), amount=sum(amounts),
                                           currency=refund.currency, refunded_at=now, leg_amounts=amounts))
    remaining = session.exec(select(TicketLeg.leg_id).join(Ticket, Ticket.ticket_id == TicketLeg.ticket_id)
                             .where(Ticket.order_id == order.order_id,
                                    TicketLeg.status != LegStatus.refunded.value)).first()
    if order.status in (OrderStatus.ticketed, OrderStatus.partially_refunded):
        transition(order, OrderStatus.refunded if remaining is None else OrderStatus.partially_refunded, now=now)
        session.add(order)
    session.flush()
    return refund


def request_refund(session: Session, *, order_id: str, user_id: str, leg_ids: list[str], rules: RefundRules,
                   providers: Providers, redis_client: redis.Redis, ledger: Ledger, now: dt.datetime,
                   commit: Callable[[], None], on_intent: Callable[[Refund], None] | None = None) -> Refund:
    """Refunds the given unused legs of the caller's order: intent, ``commit()``, provider, outcome.

    ``on_intent`` runs in the intent's transaction when a new intent is recorded (the audit record).
    The outcome is flushed in the caller's transaction (one more commit by the caller). A retried
    request returns the earlier refund, finishing it if it was left pending.
    """
    refund, created = begin_refund(session, order_id=order_id, user_id=user_id, leg_ids=leg_ids, rules=rules,
                                   now=now)
    if refund.status != "pending":
        return refund
    if created and on_intent is not None:
        on_intent(refund)
    commit()  # the intent and the locked legs are durable before any money moves
    _checkpoint("before_provider")
    try:
        pr = call_provider(session, refund, providers=providers, lookup=not created)
    except PaymentProviderError as exc:
        if getattr(exc, "definitive", False):
            # the provider refused: nothing was paid, the legs are the passenger's again (kept on the error)
            complete_refund(session, refund.refund_id, status="failed", provider_ref=None,
                            redis_client=redis_client, ledger=ledger, now=now)
            exc.keep_writes = True  # type: ignore[attr-defined]
        raise  # otherwise the intent stays pending: a retry, the webhook or the job finishes it
    _checkpoint("after_provider")
    refund = complete_refund(session, refund.refund_id, status=pr.status, provider_ref=pr.ref or None,
                             redis_client=redis_client, ledger=ledger, now=now)
    _checkpoint("before_commit")
    return refund


def apply_refund_updates(session: Session, order_id: str, updates: Iterable[RefundUpdate], *,
                         redis_client: redis.Redis, ledger: Ledger, now: dt.datetime) -> int:
    """Provider notifications (webhook) about the order's refunds; returns how many refunds they finished."""
    n = 0
    for u in updates:
        refund = session.get(Refund, u.refund_id) if u.refund_id else None
        if refund is None:
            refund = session.exec(select(Refund).where(Refund.provider_ref == u.ref)).first()
        if refund is None or refund.order_id != order_id or refund.status != "pending":
            continue
        done = complete_refund(session, refund.refund_id, status=u.status, provider_ref=u.ref,
                               redis_client=redis_client, ledger=ledger, now=now)
        n += done.status != "pending"
    return n


def reconcile_refunds(session: Session, *, providers: Providers, redis_client: redis.Redis, ledger: Ledger,
                      now: dt.datetime, older_than_s: int = 60, batch: int = 100) -> dict[str, int]:
    """Finishes refund intents left ``pending`` for ``older_than_s`` (a crash, a lost response, no webhook).

    Each is looked up at the provider (and made there if it never was, with the same idempotency key),
    then completed. Returns counts by outcome.
    """
    cutoff = now - dt.timedelta(seconds=older_than_s)
    pending = session.exec(select(Refund).where(Refund.status == "pending", Refund.created_at <= cutoff)
                           .order_by(Refund.created_at).limit(batch)).all()
    counts: dict[str, int] = {}
    for refund in pending:
        pr = call_provider(session, refund, providers=providers, lookup=True)
        done = complete_refund(session, refund.refund_id, status=pr.status, provider_ref=pr.ref or None,
                               redis_client=redis_client, ledger=ledger, now=now)
        counts[done.status] = counts.get(done.status, 0) + 1
    return counts


def list_refunds(session: Session, order_id: str) -> list[Refund]:
    return list(session.exec(select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at)))


def refund_view(r: Refund) -> dict[str, Any]:
    return {"refund_id": r.refund_id, "order_id": r.order_id, "leg_ids": r.leg_ids, "status": r.status,
            "amount": {"amount": r.amount, "currency": r.currency}, "fee": {"amount": r.fee, "currency": r.currency},
            "created_at": r.created_at.isoformat()}

