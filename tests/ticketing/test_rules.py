"""Order state machine, refund fee tiers and identity-document formats (pure functions)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.ticketing_support import resident_id
from ticketing.errors import IllegalTransition, UnsupportedIdType
from ticketing.identity import InvalidIdNumber
from ticketing.models import Order, OrderStatus
from ticketing.orders import TRANSITIONS, check_document, transition
from ticketing.refunds import RefundRules

NOW = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
S = OrderStatus


def _order(status: str) -> Order:
    return Order(order_id="ord_x", user_id="u", offer_id="off_x", status=status, total_amount=100, currency="CNY",
                 provider="sandbox", request_hash="h", expires_at=NOW)


@pytest.mark.parametrize("start", list(S))
@pytest.mark.parametrize("to", list(S))
def test_only_the_drawn_transitions_are_allowed(start, to):
    allowed = {(S.pending_payment, S.paid), (S.pending_payment, S.expired), (S.pending_payment, S.cancelled),
               (S.paid, S.ticketed), (S.paid, S.refunded), (S.ticketed, S.partially_refunded),
               (S.ticketed, S.refunded), (S.partially_refunded, S.partially_refunded),
               (S.partially_refunded, S.refunded)}
    order = _order(start)
    if (start, to) in allowed:
        transition(order, to, now=NOW)
        assert order.status == to
    else:
        with pytest.raises(IllegalTransition) as exc:
            transition(order, to, now=NOW)
        assert exc.value.status == 409 and exc.value.details["from"] == start
    assert set(TRANSITIONS) == set(S)


def test_refund_fee_tiers_by_time_before_departure():
    rules = RefundRules.from_doc({
        "default": [{"min_hours_before": 24, "fee_percent": 0}, {"min_hours_before": 2, "fee_percent": 5},
                    {"min_hours_before": 0, "fee_percent": 10}],
        "operators": {"coach": [{"min_hours_before": 48, "fee_percent": 0}, {"min_hours_before": 0.5,
                                                                            "fee_percent": 20}]}})
    h = 3600
    assert [rules.fee_percent("bus", s) for s in (30 * h, 24 * h, 5 * h, 2 * h, 60, 0, -1)] == \
        [0, 0, 5, 5, 10, 10, None]
    assert [rules.fee_percent("coach", s) for s in (72 * h, 47 * h, 1800, 1799)] == [0, 20, 20, None]
    with pytest.raises(ValueError):
        RefundRules.from_doc({"default": [{"min_hours_before": 1, "fee_percent": 150}]})


def test_identity_documents_by_type():
    rid = resident_id()
    assert check_document("cn_resident_id", rid.lower(), today=NOW.date()) == rid
    assert check_document("cn_resident_id", f" {rid[:6]} {rid[6:14]} {rid[14:]} ", today=NOW.date()) == rid
    assert check_document("passport", "e1234567 8", today=NOW.date()) == "E12345678"
    assert check_document("hk_macau_permit", "H12345678", today=NOW.date()) == "H12345678"
    for id_type, number in (("cn_resident_id", rid[:-1] + ("1" if rid[-1] != "1" else "2")),
                            ("cn_resident_id", resident_id(birth="20991231")), ("passport", "AB"),
                            ("hk_macau_permit", "X12345678"), ("taiwan_permit", "123")):
        with pytest.raises(InvalidIdNumber):
            check_document(id_type, number, today=NOW.date())
    with pytest.raises(UnsupportedIdType):
        check_document("library_card", "123456", today=NOW.date())
