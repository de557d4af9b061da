"""The interface ticketing calls: validation, idempotency, closing each leg exactly once."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from clearing import ledger
from clearing.agreements import create_agreement
from clearing.apportionment import Agreement, Method
from clearing.errors import InvalidRecord, LegClosed, RefundTooLarge, SaleConflict, UnknownLeg
from clearing.interface import (
    RefundRecord, SaleLeg, SaleRecord, UseRecord, record_expiry, record_refund, record_sale, record_use,
)
from clearing.models import ClearingLeg, Validation
from tests.clearing.builders import at, refund, sale, use

D = dt.date(2026, 3, 2)


def test_sale_is_idempotent_per_ticket_and_conflicts_are_refused(session) -> None:  # noqa: ANN001
    t = sale(session, 500, [("bus", 1, 200), ("metro", 1, 400)], day=D)
    record_sale(session, t)  # the same record again: nothing more posted
    assert ledger.balance(session, ledger.CASH) == 500
    with pytest.raises(SaleConflict):
        record_sale(session, dataclasses.replace(t, paid_amount=600))


def test_invalid_sales_are_refused_with_domain_errors(session) -> None:  # noqa: ANN001
    leg = SaleLeg("L1", "bus", D, 100, 100)
    base = SaleRecord("T1", "O1", "CNY", 100, at(D), (leg,))
    for bad in (dataclasses.replace(base, paid_amount=-1), dataclasses.replace(base, currency="yuan"),
                dataclasses.replace(base, sold_at=dt.datetime(2026, 3, 2, 9)), dataclasses.replace(base, legs=()),
                dataclasses.replace(base, legs=(leg, leg))):
        with pytest.raises(InvalidRecord):
            record_sale(session, bad)
    with pytest.raises(UnknownLeg):
        record_expiry(session, leg_id="nope", expired_at=at(D))


def test_stored_agreement_is_used_and_recorded_on_the_legs(session) -> None:  # noqa: ANN001
    create_agreement(session, Agreement("coach-fixed", Method.fixed, operator_ids=frozenset({"bus", "coach"}),
                                        fixed_amounts={"bus": 150}, remainder_operator="coach",
                                        valid_from=dt.date(2026, 1, 1)))
    t = sale(session, 3_000, [("bus", 1, None), ("coach", 1, None)], day=D)
    legs = {leg.operator_id: leg for leg in session.query(ClearingLeg).filter_by(ticket_id=t.ticket_id)}
    assert legs["bus"].share == 150 and legs["coach"].share == 2_850
    assert {leg.agreement_id for leg in legs.values()} == {"coach-fixed"}


def test_a_leg_is_recognised_once_whatever_the_events(session) -> None:  # noqa: ANN001
    t = sale(session, 400, [("bus", 1, 400)], day=D)
    use(session, t, 0)
    use(session, t, 0)                                           # duplicate scan upload
    record_expiry(session, leg_id=t.legs[0].leg_id, expired_at=at(D, 23))   # expiry job after the use
    assert ledger.balance(session, ledger.payable("bus")) == -400
    assert ledger.balance(session, ledger.deferred("bus")) == 0
    with pytest.raises(LegClosed):
        refund(session, t, [0], 100, when=at(D, 23))


def test_refund_closes_legs_and_a_later_use_moves_no_money(session) -> None:  # noqa: ANN001
    t = sale(session, 500, [("bus", 1, 200), ("metro", 1, 400)], day=D)     # shares 167 / 333
    r = refund(session, t, [0, 1], 400, when=at(D, 10))
    record_refund(session, r)                                     # idempotent per refund id
    assert ledger.balance(session, ledger.REFUNDS) == -400
    assert ledger.balance(session, ledger.payable("bus")) + ledger.balance(session, ledger.payable("metro")) == -100
    use(session, t, 1)                                            # a late offline tap of a refunded leg
    assert session.get(Validation, t.legs[1].leg_id) is not None  # kept for reconciliation
    assert ledger.balance(session, ledger.REFUNDS) == -400 and ledger.unbalanced_entries(session) == []
    with pytest.raises(LegClosed):
        refund(session, t, [0], 1, when=at(D, 11))


def test_refund_larger_than_paid_or_on_foreign_legs_is_refused(session) -> None:  # noqa: ANN001
    t = sale(session, 300, [("bus", 1, 300)], day=D)
    other = sale(session, 300, [("bus", 1, 300)], day=D)
    with pytest.raises(RefundTooLarge):
        refund(session, t, [0], 301, when=at(D))
    with pytest.raises(InvalidRecord):
        record_refund(session, RefundRecord("rfx", t.ticket_id, (other.legs[0].leg_id,), 1, "CNY", at(D)))
    with pytest.raises(InvalidRecord):
        record_use(session, UseRecord(t.legs[0].leg_id, t.ticket_id, "metro", at(D), None))


def test_a_stored_agreement_missing_its_inputs_never_blocks_a_sale(session) -> None:  # noqa: ANN001
    create_agreement(session, Agreement("bm-distance", Method.distance, operator_ids=frozenset({"bus", "metro"}),
                                        valid_from=dt.date(2026, 1, 1)))
    t = sale(session, 600, [("bus", None, 200), ("metro", None, 400)], day=D)  # no distances from the router
    legs = session.query(ClearingLeg).filter_by(ticket_id=t.ticket_id).order_by(ClearingLeg.position).all()
    assert [leg.share for leg in legs] == [200, 400]
    assert {leg.agreement_id for leg in legs} == {"default!bm-distance"}
