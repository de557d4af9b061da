"""What a refund would give back, before the passenger confirms it: ``GET /v1/orders/{id}/refund-quote``.

Read-only: the same operator rules (ticketing.refunds.RefundRules) and rounding as
``POST /v1/orders/{id}/refunds``, evaluated now, without locking or changing anything; the refund
itself re-evaluates at its own time (a quote near a tier boundary may differ by then).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlmodel import select

from maas.api.deps import CurrentPassenger, SessionDep
from maas.errors import error_responses
from maas.journeys import now, runtime
from ticketing.errors import LegNotRefundable, OrderNotFound
from ticketing.fares.money import scale_minor
from ticketing.models import LegStatus, Ticket, TicketLeg
from ticketing.orders import get_order

router = APIRouter(tags=["ticketing"])


@router.get("/v1/orders/{order_id}/refund-quote", responses=error_responses(OrderNotFound, LegNotRefundable))
def refund_quote(order_id: str, request: Request, session: SessionDep, principal: CurrentPassenger,
                 leg_ids: Annotated[list[str], Query(min_length=1, max_length=100)]) -> dict[str, Any]:
    """`{order_id, amount, fee, legs: [{leg_id, price, amount, fee, fee_percent}]}` for refunding these legs now."""
    order = get_order(session, order_id, user_id=principal.subject)
    wanted = list(dict.fromkeys(leg_ids))
    rows = session.exec(select(TicketLeg).join(Ticket, Ticket.ticket_id == TicketLeg.ticket_id)
                        .where(Ticket.order_id == order_id, TicketLeg.leg_id.in_(wanted))).all()  # type: ignore[attr-defined]
    found = {leg.leg_id: leg for leg in rows}
    missing = [x for x in wanted if x not in found]
    if missing:
        raise LegNotRefundable("these legs are not part of the order", details={"leg_ids": missing})
    rules, at = runtime(request.app).refund_rules, now(request.app)
    legs = []
    for leg_id in wanted:
        leg = found[leg_id]
        if leg.status != LegStatus.unused.value:
            raise LegNotRefundable(f"the leg is {leg.status}, only unused legs are refundable",
                                   details={"leg_id": leg_id, "reason": leg.status})
        departure = leg.departure if leg.departure.tzinfo else leg.departure.replace(tzinfo=at.tzinfo)
        pct = rules.fee_percent(leg.operator_id, (departure - at).total_seconds())
        if pct is None:
            raise LegNotRefundable("the leg has departed", details={"leg_id": leg_id, "reason": "departed"})
        fee = scale_minor(leg.price_amount, pct)
        legs.append({"leg_id": leg_id, "price": {"amount": leg.price_amount, "currency": order.currency},
                     "amount": {"amount": leg.price_amount - fee, "currency": order.currency},
                     "fee": {"amount": fee, "currency": order.currency}, "fee_percent": pct})
    return {"order_id": order_id,
            "amount": {"amount": sum(x["amount"]["amount"] for x in legs), "currency": order.currency},
            "fee": {"amount": sum(x["fee"]["amount"] for x in legs), "currency": order.currency}, "legs": legs}
