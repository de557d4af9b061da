"""MaaS metrics for a period: aggregates only (SQL GROUP BY), k-anonymous.

Every count cell is ``{"value": int | null, "suppressed": bool}``; a count of 1..k-1 (setting
``MAAS_REGULATOR_K_ANONYMITY``, default 5) is suppressed, and so is a rate whose numerator or
denominator is such a count, and a money total over fewer than k legs. Zero is shown (it
singles nobody out).

What is counted in ``[period_start, period_end)`` (clearing calendar):

- ``users``: passenger accounts at the end of the period, created in it, and active (placed an order);
- ``orders``: orders created, by status;
- ``journeys``: tickets issued (one per traveller and journey), legs by mode, the share of
  journeys whose legs belong to two or more operators;
- ``refunds``: legs refunded among the legs issued in the period, refunded amount;
- ``validations``: gate decisions by result and rejection reason, and the rejection rate;
- ``face``: face verifications at gates, matches, share of validations that used a face;
- ``revenue``: per operator and currency, the price of legs issued (minor units) and refunds.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from maas.audit_views.common import Period, amount_cell, count_cell, rate_cell
from maas.models import User
from ticketing.models import GateValidation, Order, Refund, Ticket, TicketLeg
from ticketing.models_face import FaceVerification


def _scalar(session: Session, stmt: sa.Select) -> int:
    return int(session.execute(stmt).scalar() or 0)


def compute_metrics(session: Session, *, period: Period, k: int) -> dict[str, Any]:
    """The metrics report of one period (see the module docstring)."""
    lo, hi = period.start_utc, period.end_utc
    u = User.__table__
    o = Order.__table__
    t = Ticket.__table__
    leg = TicketLeg.__table__
    v = GateValidation.__table__
    fv = FaceVerification.__table__
    rf = Refund.__table__

    passengers = u.c.role == "passenger"
    users_total = _scalar(session, sa.select(sa.func.count()).where(passengers, u.c.created_at < hi))
    users_new = _scalar(session, sa.select(sa.func.count()).where(passengers, u.c.created_at >= lo,
                                                                  u.c.created_at < hi))
    in_orders = (o.c.created_at >= lo) & (o.c.created_at < hi)
    users_active = _scalar(session, sa.select(sa.func.count(sa.distinct(o.c.user_id))).where(in_orders))

    by_status = session.execute(sa.select(o.c.status, sa.func.count()).where(in_orders)
                                .group_by(o.c.status).order_by(o.c.status)).all()
    orders_total = sum(int(n) for _, n in by_status)

    issued = (t.c.issued_at >= lo) & (t.c.issued_at < hi)
    tickets_n = _scalar(session, sa.select(sa.func.count()).select_from(t).where(issued))
    ops_per_ticket = (sa.select(leg.c.ticket_id, sa.func.count(sa.distinct(leg.c.operator_id)).label("ops"))
                      .select_from(leg.join(t, t.c.ticket_id == leg.c.ticket_id)).where(issued)
                      .group_by(leg.c.ticket_id).subquery())
    multi = _scalar(session, sa.select(sa.func.count()).select_from(ops_per_ticket).where(ops_per_ticket.c.ops > 1))
    legs_issued = leg.join(t, t.c.ticket_id == leg.c.ticket_id)
    by_mode = session.execute(sa.select(leg.c.mode, sa.func.count()).select_from(legs_issued).where(issued)
                              .group_by(leg.c.mode).order_by(leg.c.mode)).all()
    legs_n = sum(int(n) for _, n in by_mode)
    legs_refunded = _scalar(session, sa.select(sa.func.count()).select_from(legs_issued)
                            .where(issued, leg.c.status == "refunded"))
    in_refunds = (rf.c.created_at >= lo) & (rf.c.created_at < hi) & (rf.c.status == "succeeded")
    refunds = session.execute(sa.select(rf.c.currency, sa.func.count(), sa.func.coalesce(sa.func.sum(rf.c.amount), 0))
                              .where(in_refunds).group_by(rf.c.currency).order_by(rf.c.currency)).all()

    in_val = (v.c.scanned_at >= lo) & (v.c.scanned_at < hi)
    val_rows = session.execute(sa.select(v.c.result, v.c.reason, sa.func.count()).where(in_val)
                               .group_by(v.c.result, v.c.reason).order_by(v.c.result, v.c.reason)).all()
    val_total = sum(int(n) for *_, n in val_rows)
    rejected = sum(int(n) for res, _r, n in val_rows if res == "rejected")
    reasons: dict[str, int] = {}
    for res, reason, n in val_rows:
        if res == "rejected":
            reasons[reason or "unspecified"] = reasons.get(reason or "unspecified", 0) + int(n)

    in_face = (fv.c.verified_at >= lo) & (fv.c.verified_at < hi)
    face_n = _scalar(session, sa.select(sa.func.count()).select_from(fv).where(in_face))
    face_match = _scalar(session, sa.select(sa.func.count()).select_from(fv).where(in_face, fv.c.match.is_(True)))

    revenue = session.execute(
        sa.select(leg.c.operator_id, leg.c.currency, sa.func.count(), sa.func.sum(leg.c.price_amount),
                  sa.func.sum(sa.case((leg.c.status == "refunded", 1), else_=0)))
        .select_from(legs_issued).where(issued).group_by(leg.c.operator_id, leg.c.currency)
        .order_by(leg.c.operator_id, leg.c.currency)).all()

    return {
        **period.to_dict(), "k": k,
        "users": {"total": count_cell(users_total, k), "new": count_cell(users_new, k),
                  "active": count_cell(users_active, k)},
        "orders": {"total": count_cell(orders_total, k),
                   "by_status": [{"status": s, "count": count_cell(int(n), k)} for s, n in by_status]},
        "journeys": {"total": count_cell(tickets_n, k),
                     "multi_operator": count_cell(multi, k),
                     "multi_operator_share": rate_cell(multi, tickets_n, k),
                     "legs": count_cell(legs_n, k),
                     "legs_by_mode": [{"mode": m, "count": count_cell(int(n), k)} for m, n in by_mode]},
        "refunds": {"legs_refunded": count_cell(legs_refunded, k),
                    "refund_rate": rate_cell(legs_refunded, legs_n, k),
                    "by_currency": [{"currency": c, "refunds": count_cell(int(n), k),
                                     "amount": amount_cell(int(a), int(n), k)} for c, n, a in refunds]},
        "validations": {"total": count_cell(val_total, k), "rejected": count_cell(rejected, k),
                        "rejection_rate": rate_cell(rejected, val_total, k),
                        "rejections_by_reason": [{"reason": r, "count": count_cell(n, k),
                                                  "rate": rate_cell(n, val_total, k)}
                                                 for r, n in sorted(reasons.items())]},
        "face": {"verifications": count_cell(face_n, k), "matches": count_cell(face_match, k),
                 "share_of_validations": rate_cell(face_n, val_total, k)},
        "revenue": [{"operator_id": op, "currency": cur, "legs": count_cell(int(n), k),
                     "gross": amount_cell(int(gross or 0), int(n), k), "legs_refunded": count_cell(int(nr or 0), k)}
                    for op, cur, n, gross, nr in revenue],
    }
