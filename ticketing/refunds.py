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
both refunded and admitted at a gate.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import update
from sqlmodel import Session, select

from ticketing import seats
from ticketing.errors import IllegalTransition, LegNotRefundable
from ticketing.fares.money import scale_minor
from ticketing.ledger import Ledger, RefundEvent
from ticketing.models import LegStatus, Offer, OrderStatus, Payment, Refund, Ticket, TicketLeg, new_id
from ticketing.orders import get_order, transition
from ticketing.payments import PaymentProvider
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


def request_refund(session: Session, *, order_id: str, user_id: str, leg_ids: list[str], rules: RefundRules,
                   provider: PaymentProvider, redis_client: redis.Redis, ledger: Ledger,
                   now: dt.datetime) -> Refund:
    """Refunds the given unused legs of the caller's order (raises `LegNotRefundable` / `IllegalTransition`)."""
    order = get_order(session, order_id, user_id=user_id, for_update=True)
    if order.status not in (OrderStatus.ticketed, OrderStatus.partially_refunded):
        raise IllegalTransition(f"an order in state {order.status} has nothing to refund",
                                details={"order_id": order_id, "from": order.status})
    wanted = list(dict.fromkeys(leg_ids))
    rows = session.exec(select(TicketLeg, Ticket).join(Ticket, Ticket.ticket_id == TicketLeg.ticket_id)
                        .where(Ticket.order_id == order_id, TicketLeg.leg_id.in_(wanted))).all()  # type: ignore[attr-defined]
    found = {leg.leg_id: (leg, ticket) for leg, ticket in rows}
    missing = [x for x in wanted if x not in found]
    if missing:
        raise LegNotRefundable("these legs are not part of the order", details={"leg_ids": missing})
    refund_id = new_id("rfd")
    fee = amount = 0
    per_ticket: dict[str, list[tuple[TicketLeg, int]]] = {}
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
        leg_fee = scale_minor(leg.price_amount, pct)
        fee += leg_fee
        amount += leg.price_amount - leg_fee
        per_ticket.setdefault(ticket.ticket_id, []).append((leg, leg.price_amount - leg_fee))
    payment = session.exec(select(Payment).where(Payment.order_id == order_id)).first()
    assert payment is not None  # a ticketed order was paid
    refund = Refund(refund_id=refund_id, order_id=order_id, leg_ids=wanted, amount=amount, fee=fee,
                    currency=order.currency, status="succeeded", created_at=now)
    if amount > 0:
        pr = provider.refund(payment_ref=payment.provider_ref, amount=amount, refund_id=refund_id)
        refund.status, refund.provider_ref = pr.status, pr.ref
    session.add(refund)
    offer = session.get(Offer, order.offer_id)
    holds = {h["leg_index"]: h for h in (offer.holds if offer else [])}
    for n, (ticket_id, legs) in enumerate(sorted(per_ticket.items())):
        for leg, _ in legs:
            hold = holds.get(leg.leg_index)
            if hold is not None and leg.seat is not None:
                seats.release(redis_client, key=hold["key"], hold_id=hold["hold_id"], seat=int(leg.seat))
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        session.flush()
        for leg, _ in legs:
            session.refresh(leg)
        refresh_ticket_status(session, ticket)
        ledger.refund(session, RefundEvent(refund_id=f"{refund_id}-{n}", ticket_id=ticket_id,
                                           leg_ids=tuple(leg.leg_id for leg, _ in legs),
                                           amount=sum(a for _, a in legs), currency=order.currency,
                                           refunded_at=now))
    remaining = session.exec(select(TicketLeg.leg_id).join(Ticket, Ticket.ticket_id == TicketLeg.ticket_id)
                             .where(Ticket.order_id == order_id,
                                    TicketLeg.status != LegStatus.refunded.value)).first()
    transition(order, OrderStatus.refunded if remaining is None else OrderStatus.partially_refunded, now=now)
    session.add(order)
    session.flush()
    return refund


def list_refunds(session: Session, order_id: str) -> list[Refund]:
    return list(session.exec(select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at)))


def refund_view(r: Refund) -> dict[str, Any]:
    return {"refund_id": r.refund_id, "order_id": r.order_id, "leg_ids": r.leg_ids, "status": r.status,
            "amount": {"amount": r.amount, "currency": r.currency}, "fee": {"amount": r.fee, "currency": r.currency},
            "created_at": r.created_at.isoformat()}

