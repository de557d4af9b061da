"""Expiry jobs (idempotent; run by `maas jobs run`, registered by ``maas.journeys``).

- `expire_orders`: unpaid orders past their payment window become
  ``expired`` and their seat holds are released (holds also lapse by
  themselves in Redis);
- `expire_legs`: unused legs whose validity window has ended become
  ``expired`` and are reported to the ledger; their tickets' status follows.

Running either twice changes nothing the second time: both only touch rows
still in the state they move out of.
"""

from __future__ import annotations

import datetime as dt

import redis
from sqlalchemy import update
from sqlmodel import Session, select

from ticketing.ledger import Ledger
from ticketing.models import LegStatus, Order, OrderStatus, Payment, Ticket, TicketLeg
from ticketing.orders import transition
from ticketing.payments import release_holds
from ticketing.tickets import refresh_ticket_status


def expire_orders(session: Session, *, redis_client: redis.Redis, now: dt.datetime, batch: int = 1000) -> int:
    """Expires unpaid orders whose payment window has passed; returns how many."""
    orders = session.exec(select(Order).where(Order.status == OrderStatus.pending_payment.value,
                                              Order.expires_at <= now)
                          .order_by(Order.expires_at).limit(batch).with_for_update(skip_locked=True)).all()
    for order in orders:
        transition(order, OrderStatus.expired, now=now)
        session.add(order)
        payment = session.exec(select(Payment).where(Payment.order_id == order.order_id)).first()
        if payment is not None and payment.status in ("pending", "failed"):
            payment.status = "cancelled"
            payment.updated_at = now
            session.add(payment)
        release_holds(session, redis_client, order)
    session.flush()
    return len(orders)


def expire_legs(session: Session, *, ledger: Ledger, now: dt.datetime, batch: int = 5000) -> int:
    """Expires unused legs past their validity window; returns how many."""
    legs = session.exec(select(TicketLeg).where(TicketLeg.status == LegStatus.unused.value,
                                                TicketLeg.valid_until < now)
                        .order_by(TicketLeg.valid_until).limit(batch)).all()
    touched: set[str] = set()
    n = 0
    for leg in legs:
        changed = session.execute(update(TicketLeg).where(TicketLeg.leg_id == leg.leg_id,
                                                          TicketLeg.status == LegStatus.unused.value)
                                  .values(status=LegStatus.expired.value)
                                  .execution_options(synchronize_session=False)).rowcount
        if changed == 1:
            ledger.expiry(session, leg_id=leg.leg_id, expired_at=now)
            touched.add(leg.ticket_id)
            n += 1
    session.flush()
    for ticket_id in sorted(touched):
        ticket = session.get(Ticket, ticket_id)
        if ticket is not None:
            for leg in legs:
                if leg.ticket_id == ticket_id:
                    session.refresh(leg)
            refresh_ticket_status(session, ticket)
    session.flush()
    return n
