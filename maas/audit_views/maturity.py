"""The MaaS integration level of an operator set (a region), from what the system sees.

Levels after Sochor, Arby, Karlsson & Sarasini (2018), "A topological approach to Mobility as
a Service", each with the evidence found (levels are cumulative: a level counts only when every
lower one is met):

0. none: no integration;
1. information: the operators' GTFS feeds are imported (multimodal planning works);
2. booking and payment: paid orders (tickets issued) include legs of the set's operators;
3. bundled offers: multi-operator journey tickets were sold with a cross-operator fare agreement
   or transfer discount actually applied (a leg priced below its standalone fare);
4. policy goals: concession categories (child, senior, disabled …) are sold, and the regulator
   targets computed by `maas.audit_views.coverage` are measurable and met.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from maas.audit_views.common import Period
from maas.models import FeedRecord
from ticketing.fares.engine import FareEngine
from ticketing.models import Ticket, TicketLeg, Traveler

LEVEL_NAMES = {0: "none", 1: "information", 2: "booking_and_payment", 3: "bundled_offers", 4: "policy_goals"}
#: Rider categories that are not concessions.
FULL_FARE_CATEGORIES = frozenset({"adult"})


def cross_operator_agreements(fares: FareEngine | None, operator_ids: set[str]) -> list[str]:
    """Ids of the fare engine's transfer-discount agreements joining two different operators of the set."""
    if fares is None:
        return []
    operator_of_feed = {fid: p.operator_id or fid for fid, p in fares.pricers.items()}

    def ops(groups: frozenset[str]) -> set[str]:
        return {operator_of_feed.get(g.split(":", 1)[0], g.split(":", 1)[0]) for g in groups}

    found = []
    for ag in fares.agreements:
        a, b = ops(ag.from_leg_group_ids) & operator_ids, ops(ag.to_leg_group_ids) & operator_ids
        if a and b and len(a | b) > 1:  # from one operator of the set to another
            found.append(ag.agreement_id)
    return sorted(set(found))


def compute_maturity(session: Session, *, operator_ids: list[str] | None, period: Period | None,
                     fares: FareEngine | None, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """The level of an operator set (default: every operator with an imported feed) and its evidence."""
    feeds = session.execute(sa.select(FeedRecord.feed_id, FeedRecord.operator_id)
                            .order_by(FeedRecord.feed_id)).all()
    feed_ops = sorted({op for _, op in feeds})
    ops = sorted(set(operator_ids)) if operator_ids else feed_ops
    op_set = set(ops)
    t = Ticket.__table__
    leg = TicketLeg.__table__
    trv = Traveler.__table__
    when = sa.true()
    if period is not None:
        when = (t.c.issued_at >= period.start_utc) & (t.c.issued_at < period.end_utc)
    mine = leg.c.operator_id.in_(ops) if ops else sa.false()
    legs_of_set = leg.join(t, t.c.ticket_id == leg.c.ticket_id)

    # 1. information
    with_feeds = sorted({op for _, op in feeds if op in op_set})
    l1 = {"level": 1, "name": LEVEL_NAMES[1], "met": bool(ops) and with_feeds == ops,
          "evidence": {"feeds": [f for f, op in feeds if op in op_set], "operators_with_feeds": with_feeds,
                       "operators_without_feeds": sorted(op_set - set(with_feeds))}}
    # 2. booking and payment
    sold = session.execute(sa.select(leg.c.operator_id, sa.func.count(sa.distinct(leg.c.ticket_id)))
                           .select_from(legs_of_set).where(when, mine).group_by(leg.c.operator_id)
                           .order_by(leg.c.operator_id)).all()
    l2 = {"level": 2, "name": LEVEL_NAMES[2], "met": bool(sold),
          "evidence": {"tickets_by_operator": {op: int(n) for op, n in sold},
                       "operators_with_sales": [op for op, _ in sold]}}
    # 3. bundled offers: tickets with >= 2 operators of the set, and those with a discount applied
    per_ticket = (sa.select(leg.c.ticket_id,
                            sa.func.count(sa.distinct(leg.c.operator_id)).label("ops"),
                            sa.func.sum(sa.case((leg.c.price_amount < leg.c.standalone_amount, 1), else_=0))
                            .label("discounted"))
                  .select_from(legs_of_set).where(when, mine).group_by(leg.c.ticket_id).subquery())
    multi = int(session.execute(sa.select(sa.func.count()).select_from(per_ticket)
                                .where(per_ticket.c.ops > 1)).scalar() or 0)
    multi_disc = int(session.execute(sa.select(sa.func.count()).select_from(per_ticket)
                                     .where(per_ticket.c.ops > 1, per_ticket.c.discounted > 0)).scalar() or 0)
    agreements = cross_operator_agreements(fares, op_set)
    l3 = {"level": 3, "name": LEVEL_NAMES[3], "met": multi_disc > 0,
          "evidence": {"multi_operator_tickets": multi, "multi_operator_tickets_discounted": multi_disc,
                       "cross_operator_fare_agreements": agreements}}
    # 4. policy goals: concessions sold, regulator targets measurable and met
    cats = session.execute(sa.select(trv.c.rider_category, sa.func.count(sa.distinct(t.c.ticket_id)))
                           .select_from(t.join(trv, trv.c.traveler_id == t.c.traveler_id)
                                        .join(leg, leg.c.ticket_id == t.c.ticket_id))
                           .where(when, mine).group_by(trv.c.rider_category).order_by(trv.c.rider_category)).all()
    concessions = {c: int(n) for c, n in cats if c not in FULL_FARE_CATEGORIES}
    measured = [x for x in targets if x.get("met") is not None]
    targets_met = bool(measured) and all(x["met"] for x in measured)
    l4 = {"level": 4, "name": LEVEL_NAMES[4], "met": bool(concessions) and targets_met,
          "evidence": {"concession_tickets_by_category": concessions,
                       "targets": [{k: x[k] for k in ("target_id", "threshold", "actual", "met")} for x in targets],
                       "targets_met": targets_met}}
    levels = [l1, l2, l3, l4]
    level = 0
    for item in levels:
        if not item["met"]:
            break
        level = item["level"]
    return {"operator_ids": ops, **(period.to_dict() if period else {"period_start": None, "period_end": None}),
            "level": level, "level_name": LEVEL_NAMES[level], "levels": levels,
            "reference": "Sochor, J., Arby, H., Karlsson, I.C.M., Sarasini, S. (2018). A topological approach to "
                         "Mobility as a Service. Research in Transportation Business & Management 27, 3-14."}
