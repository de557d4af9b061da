"""Bulk posting gives the same ledger and settlement lines as posting event by event."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from clearing import bulk, ledger, settlement
from clearing.agreements import commission_amount, set_commission
from clearing.apportionment import largest_remainder_batch
from clearing.errors import InvalidRecord
from clearing.interface import record_expiry
from tests.clearing.builders import at, refund, sale, use

D1, D2 = dt.date(2026, 3, 2), dt.date(2026, 3, 3)
TICKETS = [  # (paid, [(operator, fare)], outcome per leg: u used, e expired, r refunded (half back))
    (500, [("bus", 200), ("metro", 400)], "ue"),
    (2_800, [("coach", 2_800)], "r"),
    (700, [("metro", 300), ("bus", 200), ("ferry", 300)], "uru"),
]


def test_bulk_load_settles_to_the_same_digest_as_the_interface(engine) -> None:  # noqa: ANN001
    from maas.db import session_scope

    digests = []
    for mode in ("interface", "bulk"):
        with session_scope(engine) as s:
            if mode == "interface":
                set_commission(s, term_id="c-metro", operator_id="metro", rate_bp=300, fixed_per_leg=1, valid_from=D1)
                for paid, legs, outcome in TICKETS:
                    t = sale(s, paid, [(op, 1, fare) for op, fare in legs], day=D1)
                    for i, o in enumerate(outcome):
                        if o == "u":
                            use(s, t, i)
                        elif o == "e":
                            record_expiry(s, leg_id=t.legs[i].leg_id, expired_at=at(D2))
                    refunded = [i for i, o in enumerate(outcome) if o == "r"]
                    shares = [leg.share for leg in _legs(s, t.ticket_id)]
                    for i in refunded:
                        refund(s, t, [i], shares[i] // 2, when=at(D1, 12))
            else:
                _bulk(s)
        with session_scope(engine) as s:
            run, _ = settlement.run_settlement(s, period_start=D1 if mode == "interface" else D1 + dt.timedelta(10),
                                               period_end=D2 if mode == "interface" else D2 + dt.timedelta(10))
            digests.append(_line_fingerprint(s, run.run_id))
    assert digests[0] == digests[1]
    assert len(digests[0][0]) == 6 and digests[0][1] == []


def _legs(s, ticket_id):  # noqa: ANN001, ANN202
    from sqlmodel import select

    from clearing.models import ClearingLeg

    return s.exec(select(ClearingLeg).where(ClearingLeg.ticket_id == ticket_id).order_by(ClearingLeg.position)).all()


def _bulk(s) -> None:  # noqa: ANN001
    day = np.datetime64(D1 + dt.timedelta(10), "D")
    paid = np.array([p for p, _, _ in TICKETS])
    counts = [len(legs) for _, legs, _ in TICKETS]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    fares = np.array([f for _, legs, _ in TICKETS for _, f in legs])
    ops = np.array([op for _, legs, _ in TICKETS for op, _ in legs], dtype=object)
    outcome = np.array([o for _, _, out in TICKETS for o in out])
    tix = np.repeat(np.arange(len(TICKETS)), counts)
    tickets = np.array([f"B{n}" for n in range(len(TICKETS))], dtype=object)
    legs = np.array([f"B{t}-L{i}" for t, c in enumerate(counts) for i in range(c)], dtype=object)
    shares = largest_remainder_batch(paid, offsets, fares)
    days = np.full(len(legs), day)
    bulk.post_sales(s, currency="CNY", ticket_ids=tickets, order_ids=tickets, paid=paid,
                    sold_on=np.full(len(TICKETS), day), offsets=offsets, leg_ids=legs, operator_ids=ops,
                    service_dates=days, shares=shares, distance_m=np.ones(len(legs), dtype=np.int64),
                    standalone_fare=fares)
    fees = np.array([commission_amount(int(sh), 300, 1) if op == "metro" else 0 for sh, op in zip(shares, ops)])
    for code, how in (("u", "used"), ("e", "expired")):
        m = outcome == code
        bulk.post_recognitions(s, currency="CNY", leg_ids=legs[m], ticket_ids=tickets[tix][m], operator_ids=ops[m],
                               service_dates=days[m], shares=shares[m], fees=fees[m], how=how)
    m = outcome == "r"
    bulk.post_refunds(s, currency="CNY", refund_ids=np.char.add("rf-", legs[m].astype(str)), leg_ids=legs[m],
                      ticket_ids=tickets[tix][m], operator_ids=ops[m], refund_dates=days[m], shares=shares[m],
                      amounts=shares[m] // 2)
    bulk.analyze(s)
    with pytest.raises(InvalidRecord):
        bulk.post_sales(s, currency="CNY", ticket_ids=tickets[:1], order_ids=tickets[:1], paid=paid[:1] + 1,
                        sold_on=np.full(1, day), offsets=offsets[:2], leg_ids=legs[:2], operator_ids=ops[:2],
                        service_dates=days[:2], shares=shares[:2])


def _line_fingerprint(s, run_id):  # noqa: ANN001, ANN202
    """The run's lines with ticket and leg ids replaced by their position (the two loads name them differently)."""
    lines = settlement.statement_lines(s, run_id, "bus") + settlement.statement_lines(s, run_id, "metro") + \
        settlement.statement_lines(s, run_id, "coach") + settlement.statement_lines(s, run_id, "ferry")
    positions = {leg.leg_id: leg.position for line in lines for leg in _legs(s, line.ticket_id)}
    return sorted((line.operator_id, positions[line.leg_id], line.kind, line.gross, line.refunds, line.commission,
                   line.adjustments, line.net) for line in lines), ledger.unbalanced_entries(s)
