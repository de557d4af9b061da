"""Desensitized exports for regulators (脱敏导出).

- **orders**: one row per traveller of each order created in the period, with the masked name
  (``张*``) and ID number (``110***********1234``) stored at order time, the buyer's masked phone
  (``138****5678``), and pseudonyms instead of ids: ``order_ref`` and ``user_ref`` are keyed hashes
  (HMAC-SHA256 with the blind-index key under an export-only purpose, 16 hex characters), stable
  across exports so a regulator can count repeat buyers without learning who they are. Only the
  date of purchase, operators and modes are given: no stops, so no movement track.
- **journeys**: never one person's sequence of stops, only origin-destination pairs by service day
  (first boarding station, last alighting stop of each journey ticket) with their number of
  journeys, and only pairs with at least k journeys; the rest is counted as suppressed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from clearing.clock import CLEARING_TZ
from maas.audit_views.common import Period
from maas.models import User
from routing.timetable import Timetable
from ticketing.crypto import mask_phone
from ticketing.models import Order, Ticket, TicketLeg, Traveler

Pseudonymizer = Callable[[str, str], str]  #: (kind, value) -> pseudonym

ORDER_COLUMNS = ("order_ref", "user_ref", "buyer_phone", "created_on", "status", "total_amount", "currency",
                 "traveler_name", "id_type", "id_number", "rider_category", "operators", "modes", "legs")
JOURNEY_COLUMNS = ("service_date", "from_stop_id", "from_name", "to_stop_id", "to_name", "journeys")


def export_orders(session: Session, *, period: Period, pseudonymize: Pseudonymizer, offset: int = 0,
                  limit: int = 10_000) -> list[dict[str, Any]]:
    """Masked traveller rows of the orders created in the period, oldest first (see the module docstring)."""
    o, trv, u = Order.__table__, Traveler.__table__, User.__table__
    orders = session.execute(
        sa.select(o.c.order_id, o.c.user_id, o.c.created_at, o.c.status, o.c.total_amount, o.c.currency, u.c.phone)
        .select_from(o.outerjoin(u, u.c.user_id == o.c.user_id))
        .where(o.c.created_at >= period.start_utc, o.c.created_at < period.end_utc)
        .order_by(o.c.created_at, o.c.order_id).offset(offset).limit(limit)).all()
    if not orders:
        return []
    ids = [r.order_id for r in orders]
    travelers: dict[str, list[Any]] = {}
    for r in session.execute(sa.select(trv.c.order_id, trv.c.position, trv.c.name_masked, trv.c.id_type,
                                       trv.c.id_number_masked, trv.c.rider_category)
                             .where(trv.c.order_id.in_(ids)).order_by(trv.c.order_id, trv.c.position)):
        travelers.setdefault(r.order_id, []).append(r)
    t, leg = Ticket.__table__, TicketLeg.__table__
    legs: dict[str, tuple[set[str], set[str], int]] = {}
    for r in session.execute(sa.select(t.c.order_id, leg.c.operator_id, leg.c.mode, sa.func.count())
                             .select_from(leg.join(t, t.c.ticket_id == leg.c.ticket_id))
                             .where(t.c.order_id.in_(ids)).group_by(t.c.order_id, leg.c.operator_id, leg.c.mode)):
        ops, modes, n = legs.get(r[0], (set(), set(), 0))
        legs[r[0]] = (ops | {r[1]}, modes | {r[2]}, n + int(r[3]))
    rows = []
    for r in orders:
        ops, modes, n_legs = legs.get(r.order_id, (set(), set(), 0))
        base = {"order_ref": pseudonymize("order", r.order_id), "user_ref": pseudonymize("user", r.user_id),
                "buyer_phone": mask_phone(r.phone) if r.phone else None,
                # SQLite returns naive values of what was stored as UTC
                "created_on": (r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=dt.UTC))
                .astimezone(CLEARING_TZ).date().isoformat(),
                "status": r.status, "total_amount": int(r.total_amount), "currency": r.currency,
                "operators": sorted(ops), "modes": sorted(modes), "legs": n_legs}
        for tr in travelers.get(r.order_id, []):
            rows.append({**base, "traveler_name": tr.name_masked, "id_type": tr.id_type,
                         "id_number": tr.id_number_masked, "rider_category": tr.rider_category})
    return rows


def export_journeys(session: Session, *, period: Period, k: int,
                    timetable: Timetable | None = None) -> dict[str, Any]:
    """OD pairs by service day of the journeys (tickets) whose first leg runs in the period; groups < k dropped."""
    leg = TicketLeg.__table__
    first, last = leg.alias("first_leg"), leg.alias("last_leg")
    span = (sa.select(leg.c.ticket_id, sa.func.max(leg.c.position).label("last_pos"))
            .group_by(leg.c.ticket_id).subquery())
    origin = sa.func.coalesce(first.c.from_station_id, first.c.from_stop_id)
    groups = (sa.select(first.c.service_date, origin.label("from_stop_id"), last.c.to_stop_id,
                        sa.func.count().label("journeys"))
              .select_from(span.join(first, (first.c.ticket_id == span.c.ticket_id) & (first.c.position == 0))
                           .join(last, (last.c.ticket_id == span.c.ticket_id) & (last.c.position == span.c.last_pos)))
              .where(first.c.service_date >= period.start, first.c.service_date < period.end)
              .group_by(first.c.service_date, origin, last.c.to_stop_id).subquery())
    kept = session.execute(sa.select(groups).where(groups.c.journeys >= k)
                           .order_by(groups.c.service_date, groups.c.from_stop_id, groups.c.to_stop_id)).all()
    dropped = session.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(groups.c.journeys), 0))
                              .where(groups.c.journeys < k)).one()

    def name(stop_id: str) -> str | None:
        i = timetable.find_stop(stop_id) if timetable is not None else None
        return str(timetable.stop_names[i]) if i is not None else None

    rows = [{"service_date": r.service_date.isoformat(), "from_stop_id": r.from_stop_id,
             "from_name": name(r.from_stop_id), "to_stop_id": r.to_stop_id, "to_name": name(r.to_stop_id),
             "journeys": int(r.journeys)} for r in kept]
    return {**period.to_dict(), "k": k, "rows": rows, "suppressed_groups": int(dropped[0]),
            "suppressed_journeys": int(dropped[1])}
