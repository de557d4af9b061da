"""Builders for clearing tests: sales, uses, refunds through `clearing.interface` only."""

from __future__ import annotations

import datetime as dt
import itertools

from clearing.interface import RefundRecord, SaleLeg, SaleRecord, UseRecord, record_refund, record_sale, record_use

TZ = dt.timezone(dt.timedelta(hours=8))
_ids = itertools.count(1)


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=TZ)


def sale(session, paid: int, legs: list[tuple[str, int | None, int | None]], *, day: dt.date,  # noqa: ANN001
         currency: str = "CNY") -> SaleRecord:
    """Record a ticket sold and served on ``day``; ``legs``: (operator_id, distance_m, standalone_fare)."""
    n = next(_ids)
    record = SaleRecord(
        ticket_id=f"tkt{n}", order_id=f"ord{n}", currency=currency, paid_amount=paid, sold_at=at(day, 7),
        legs=tuple(SaleLeg(f"tkt{n}-L{i}", op, day, dist, fare) for i, (op, dist, fare) in enumerate(legs)),
    )
    record_sale(session, record)
    return record


def use(session, record: SaleRecord, index: int, *, when: dt.datetime | None = None,  # noqa: ANN001
        gate: str | None = "gate1") -> UseRecord:
    leg = record.legs[index]
    u = UseRecord(leg.leg_id, record.ticket_id, leg.operator_id, when or at(leg.service_date, 8), gate)
    record_use(session, u)
    return u


def refund(session, record: SaleRecord, indexes: list[int], amount: int, *,  # noqa: ANN001
           when: dt.datetime) -> RefundRecord:
    r = RefundRecord(f"rf{next(_ids)}", record.ticket_id, tuple(record.legs[i].leg_id for i in indexes), amount,
                     record.currency, when)
    record_refund(session, r)
    return r
