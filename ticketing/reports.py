"""An operator's activity by day or by line: gate validations and the legs it sold (its console's charts).

What is counted for operator ``O`` over the dates ``[start, end)`` of a calendar in zone ``tz``:

- ``validations`` / ``rejected``: gate decisions of ``O``'s gates (``ticket_validations.operator_id``)
  accepted / rejected, by the local date of ``scanned_at``;
- ``legs_sold``, ``gross``: ``O``'s ticket legs (tickets are issued once paid) whose **service date** is
  in the period, and the sum of their prices in minor units of ``currency`` (a leg's price is its value:
  the clearing share and the refund basis, see ``ticketing.tickets``); legs in other currencies are not
  counted;
- ``legs_refunded``, ``refunded``: those of the legs sold that were refunded, and their value;
- ``revenue = gross - refunded`` (before the platform's commission and refund fees: the settlement
  statement is the payable, this is the operational view).

``group="day"``: one row per date of the period (zeros included), validations by the day they were
scanned, legs by service date. ``group="line"``: one row per route (``feed_id``, ``route_id``) with any
validation or sale in the period (key: the route id, namespaced by its feed), validations attributed through the leg they named (a rejection that
names no leg is counted in the totals only).

Aggregates run in SQL (GROUP BY); the day buckets are the UTC instants of each local midnight, so a zone
with daylight saving is bucketed exactly on both backends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from ticketing.models import GateValidation, TicketLeg

Group = Literal["day", "line"]
#: Longest period grouped by day (one row per day).
MAX_DAYS = 366


@dataclass
class StatsRow:
    key: str  #: ``YYYY-MM-DD`` (day) or the route id (line; route ids are unique across feeds)
    feed_id: str | None = None
    route_id: str | None = None
    validations: int = 0
    rejected: int = 0
    legs_sold: int = 0
    legs_refunded: int = 0
    gross: int = 0
    refunded: int = 0
    revenue: int = 0

    def add(self, other: StatsRow) -> None:
        for name in ("validations", "rejected", "legs_sold", "legs_refunded", "gross", "refunded", "revenue"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class OperatorStats:
    operator_id: str
    period_start: dt.date
    period_end: dt.date
    group: str
    currency: str
    rows: list[StatsRow]
    totals: StatsRow = field(default_factory=lambda: StatsRow(key="total"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _utc(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)


def _day_buckets(start: dt.date, end: dt.date, tz: ZoneInfo) -> sa.Subquery:
    """``(day, lo, hi)``: each local date and its UTC instants ``[lo, hi)`` (a UNION ALL of literals)."""
    parts = []
    day = start
    while day < end:
        nxt = day + dt.timedelta(days=1)
        parts.append(sa.select(sa.literal(day.isoformat(), sa.String(10)).label("day"),
                               sa.literal(_utc(day, tz), sa.DateTime(timezone=True)).label("lo"),
                               sa.literal(_utc(nxt, tz), sa.DateTime(timezone=True)).label("hi")))
        day = nxt
    return sa.union_all(*parts).subquery("days")


def operator_stats(session: Session, *, operator_id: str, start: dt.date, end: dt.date, tz: ZoneInfo,
                   group: Group = "day", currency: str = "CNY") -> OperatorStats:
    """The operator's validations and sales over ``[start, end)`` grouped by day or line (module docstring)."""
    if end <= start:
        raise ValueError("end must be after start")
    if group == "day" and (end - start).days > MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days by day")
    v, leg = GateValidation.__table__, TicketLeg.__table__
    lo, hi = _utc(start, tz), _utc(end, tz)
    accepted = sa.func.sum(sa.case((v.c.result == "accepted", 1), else_=0))
    rejected = sa.func.sum(sa.case((v.c.result == "accepted", 0), else_=1))
    refunded = leg.c.status == "refunded"
    sales_cols = (sa.func.count(), sa.func.sum(sa.case((refunded, 1), else_=0)),
                  sa.func.coalesce(sa.func.sum(leg.c.price_amount), 0),
                  sa.func.coalesce(sa.func.sum(sa.case((refunded, leg.c.price_amount), else_=0)), 0))
    sold = ((leg.c.operator_id == operator_id) & (leg.c.currency == currency)
            & (leg.c.service_date >= start) & (leg.c.service_date < end))
    rows: dict[str, StatsRow] = {}
    if group == "day":
        day = start
        while day < end:
            rows[day.isoformat()] = StatsRow(key=day.isoformat())
            day += dt.timedelta(days=1)
        days = _day_buckets(start, end, tz)
        val = session.execute(
            sa.select(days.c.day, accepted, rejected)
            .select_from(v.join(days, (v.c.scanned_at >= days.c.lo) & (v.c.scanned_at < days.c.hi)))
            .where(v.c.operator_id == operator_id, v.c.scanned_at >= lo, v.c.scanned_at < hi)
            .group_by(days.c.day)).all()
        for key, n_ok, n_bad in val:
            rows[key].validations, rows[key].rejected = int(n_ok or 0), int(n_bad or 0)
        for service_date, n, n_ref, gross, ref in session.execute(
                sa.select(leg.c.service_date, *sales_cols).where(sold).group_by(leg.c.service_date)).all():
            key = service_date.isoformat() if isinstance(service_date, dt.date) else str(service_date)[:10]
            row = rows[key]
            row.legs_sold, row.legs_refunded, row.gross, row.refunded = int(n), int(n_ref or 0), int(gross), int(ref)
        unattributed = StatsRow(key="")
    else:
        def line(feed_id: str, route_id: str) -> StatsRow:
            return rows.setdefault(route_id, StatsRow(key=route_id, feed_id=feed_id, route_id=route_id))

        in_period = (v.c.operator_id == operator_id) & (v.c.scanned_at >= lo) & (v.c.scanned_at < hi)
        for feed_id, route_id, n_ok, n_bad in session.execute(
                sa.select(leg.c.feed_id, leg.c.route_id, accepted, rejected)
                .select_from(v.join(leg, leg.c.leg_id == v.c.leg_id)).where(in_period)
                .group_by(leg.c.feed_id, leg.c.route_id)).all():
            row = line(feed_id, route_id)
            row.validations, row.rejected = int(n_ok or 0), int(n_bad or 0)
        for feed_id, route_id, n, n_ref, gross, ref in session.execute(
                sa.select(leg.c.feed_id, leg.c.route_id, *sales_cols).where(sold)
                .group_by(leg.c.feed_id, leg.c.route_id)).all():
            row = line(feed_id, route_id)
            row.legs_sold, row.legs_refunded, row.gross, row.refunded = int(n), int(n_ref or 0), int(gross), int(ref)
        # validations naming no leg of a line (e.g. an unreadable QR) count in the totals only
        n_ok, n_bad = session.execute(
            sa.select(accepted, rejected).select_from(v.outerjoin(leg, leg.c.leg_id == v.c.leg_id))
            .where(in_period, leg.c.leg_id.is_(None))).one()
        unattributed = StatsRow(key="", validations=int(n_ok or 0), rejected=int(n_bad or 0))
    out = [rows[k] for k in sorted(rows)]
    totals = StatsRow(key="total")
    for row in out:
        row.revenue = row.gross - row.refunded
        totals.add(row)
    totals.add(unattributed)
    return OperatorStats(operator_id=operator_id, period_start=start, period_end=end, group=group,
                         currency=currency, rows=out, totals=totals)


__all__ = ["MAX_DAYS", "Group", "OperatorStats", "StatsRow", "operator_stats"]
