"""AlipayProvider (python-alipay-sdk) against a local gateway speaking Alipay's signed wire format.

tests/alipay_server.py checks our RSA2 request signatures and signs its answers and notifications with its
own platform key, so every request, answer and notification here crosses a real signature check.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.alipay_server import (
    APP_ID, APP_KEY, BUYER_ID, FORGER_KEY, SELLER_ID, FakeAlipay, private_pem, rsa2_verify, signing_string,
)
from ticketing.errors import InvalidWebhook, PaymentMethodUnavailable, PaymentProviderError
from ticketing.pay_alipay import BEIJING, AlipayProvider, fen, parse_bill_csv, yuan

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=BEIJING)  # Alipay's clock in these tests; never today's date


@pytest.fixture
def fake(alipay_server: FakeAlipay) -> FakeAlipay:
    alipay_server.now = lambda: T0
    return alipay_server


@pytest.fixture
def alipay(fake: FakeAlipay) -> AlipayProvider:
    return AlipayProvider(**fake.provider_kwargs())


def _paid(fake: FakeAlipay, alipay: AlipayProvider, order_id: str = "ord_1", amount: int = 1230) -> bytes:
    alipay.create_payment(order_id=order_id, amount=amount, currency="CNY", payer=BUYER_ID, description="地铁票")
    return fake.pay(order_id)


# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(("text", "expected"), [("12.30", 1230), ("12.3", 1230), ("0.01", 1), ("12", 1200),
                                                ("0.07", 7), ("99999999.99", 9_999_999_999), ("19.99", 1999)])
def test_yuan_strings_are_fen_exactly(text: str, expected: int) -> None:
    assert fen(text) == expected


@pytest.mark.parametrize("text", ["", " ", "1e3", "12.345", "-1.00", "+1.00", "1,00", "NaN", "Infinity", "0x10",
                                  "12.", ".5", "1 2", None])
def test_anything_but_a_yuan_string_is_refused(text: str | None) -> None:
    with pytest.raises(ValueError):
        fen(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_fen_and_yuan_round_trip(n: int) -> None:
    assert fen(yuan(n)) == n


def test_yuan_refuses_what_is_not_fen() -> None:
    for bad in (-1, 12.3, True):
        with pytest.raises(ValueError):
            yuan(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- creating payments


def test_mini_program_payment_is_a_signed_trade_create(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    expires = T0 + dt.timedelta(minutes=15)
    pp = alipay.create_payment(order_id="ord_1", amount=1230, currency="CNY", payer=BUYER_ID, description="地铁票",
                               expires_at=expires)
    trade = fake.trades["ord_1"]
    assert pp.ref == "ord_1" and pp.status == "pending"
    assert pp.client_params == {"trade_no": trade["trade_no"]}
    assert (trade["total_amount"], trade["buyer_id"], trade["subject"]) == ("12.30", BUYER_ID, "地铁票")
    assert trade["product_code"] == "JSAPI_PAY" and trade["notify_url"].endswith("/v1/payments/alipay/notify")
    assert trade["time_expire"] == "2026-03-02 10:15:00"  # Beijing time
    # a retried order creation finds the same trade
    again = alipay.create_payment(order_id="ord_1", amount=1230, currency="CNY", payer=BUYER_ID)
    assert again.client_params == pp.client_params and len(fake.trades) == 1


def test_a_new_style_open_id_is_sent_as_buyer_open_id(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    alipay.create_payment(order_id="ord_o", amount=100, currency="CNY", payer="074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5")
    assert fake.trades["ord_o"]["buyer_id"].startswith("074a1")


def test_h5_payment_is_a_signed_gateway_url(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    pp = alipay.create_payment(order_id="ord_h5", amount=1230, currency="CNY", expires_at=T0 + dt.timedelta(minutes=15))
    url = pp.client_params["pay_url"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == alipay.gateway
    params = dict(parse_qsl(parts.query))
    # our signature verifies with the app's public key (what Alipay holds), independently of the SDK
    assert rsa2_verify(APP_KEY, signing_string(params, exclude=("sign",)), params["sign"])
    biz = json.loads(params["biz_content"])
    assert (params["method"], params["app_id"], params["sign_type"]) == ("alipay.trade.wap.pay", APP_ID, "RSA2")
    assert biz == {"out_trade_no": "ord_h5", "total_amount": "12.30", "subject": "Order ord_h5",
                   "time_expire": "2026-03-02 10:15:00", "product_code": "QUICK_WAP_PAY"}
    assert params["notify_url"].endswith("/v1/payments/alipay/notify")
    assert "ord_h5" not in fake.trades  # Alipay knows the trade only once the buyer opens the page
    assert alipay.query_payment("ord_h5") is None
    fake.open_wap(url)
    assert fake.trades["ord_h5"]["status"] == "WAIT_BUYER_PAY"


def test_a_tampered_h5_url_is_refused_by_alipay(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    url = alipay.create_payment(order_id="ord_t", amount=1230, currency="CNY").client_params["pay_url"]
    with pytest.raises(ValueError, match="invalid-signature"):
        fake.open_wap(url.replace("12.30", "0.01"))


def test_other_currencies_are_refused(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    with pytest.raises(PaymentMethodUnavailable, match="CNY only"):
        alipay.create_payment(order_id="ord_hk", amount=1230, currency="HKD", payer=BUYER_ID)
    assert fake.requests == []


def test_requests_signed_with_another_key_are_refused(fake: FakeAlipay) -> None:
    forger = AlipayProvider(**{**fake.provider_kwargs(), "app_private_key": private_pem(FORGER_KEY)})
    with pytest.raises(PaymentProviderError) as e:
        forger.create_payment(order_id="ord_f", amount=1230, currency="CNY", payer=BUYER_ID)
    assert "isv.invalid-signature" in str(e.value) and e.value.definitive  # type: ignore[attr-defined]
    other_app = AlipayProvider(**{**fake.provider_kwargs(), "app_id": "2021000999999999"})
    with pytest.raises(PaymentProviderError, match="isv.invalid-app-id"):
        other_app.query_payment("ord_f")
    assert fake.trades == {}


def test_answers_not_signed_by_alipay_are_not_believed(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    _paid(fake, alipay)
    fake.sign_key = FORGER_KEY  # a man in the middle answering "refunded"
    with pytest.raises(PaymentProviderError, match="not signed by Alipay") as e:
        alipay.refund(payment_ref="ord_1", amount=100, refund_id="rfd_m")
    assert not e.value.definitive  # type: ignore[attr-defined]  # it may have paid: look it up later


@pytest.mark.parametrize("raw", ["{}", "[]", "<html>login</html>", '{"alipay_trade_refund_response": {"code": "10000"}}',
                                 '{"other_response": {}, "sign": "x"}'])
def test_answers_that_are_not_alipays_are_not_refusals(fake: FakeAlipay, alipay: AlipayProvider, raw: str) -> None:
    _paid(fake, alipay)
    fake.raw_answer = raw
    with pytest.raises(PaymentProviderError) as e:
        alipay.refund(payment_ref="ord_1", amount=100, refund_id="rfd_x")
    assert not e.value.definitive  # type: ignore[attr-defined]


def test_a_gateway_failure_is_not_a_refusal(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    _paid(fake, alipay)
    fake.fail_next = 1
    with pytest.raises(PaymentProviderError, match="could not be reached") as e:
        alipay.refund(payment_ref="ord_1", amount=100, refund_id="rfd_500")
    assert not e.value.definitive  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- notifications


def test_payment_notification_verifies_and_maps(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    body = _paid(fake, alipay)
    event = alipay.parse_webhook(body, {"content-type": "application/x-www-form-urlencoded"})
    notify_id = dict(parse_qsl(body.decode()))["notify_id"]
    assert event is not None
    assert (event.event_id, event.kind, event.payment_ref, event.amount, event.currency) == (
        f"alipay:{notify_id}", "payment_succeeded", "ord_1", 1230, "CNY")
    assert event.provider_txn == fake.trades["ord_1"]["trade_no"] and event.occurred_at == T0
    # the same notification delivered again is the same event (applied once by the shared code)
    assert alipay.parse_webhook(body, {}) == event


def _resign_free(body: bytes, **changes: str) -> bytes:
    p = dict(parse_qsl(body.decode()))
    p.update(changes)
    return urlencode(p).encode()


@pytest.mark.parametrize("attack", ["forged", "tampered_amount", "tampered_order", "unsigned", "rsa1", "empty_sign",
                                    "repeated_field", "not_utf8", "garbage_sign"])
def test_forged_and_tampered_notifications_are_refused(fake: FakeAlipay, alipay: AlipayProvider, attack: str) -> None:
    body = _paid(fake, alipay)
    bad = {
        "forged": lambda: fake.notification("ord_1", key=FORGER_KEY),
        "tampered_amount": lambda: _resign_free(body, total_amount="0.01"),
        "tampered_order": lambda: _resign_free(body, out_trade_no="ord_2"),
        "unsigned": lambda: urlencode([(k, v) for k, v in parse_qsl(body.decode()) if k != "sign"]).encode(),
        "rsa1": lambda: _resign_free(body, sign_type="RSA"),
        "empty_sign": lambda: _resign_free(body, sign=""),
        "repeated_field": lambda: body + b"&trade_status=TRADE_CLOSED",
        "not_utf8": lambda: body.replace(b"sign_type", b"sign_\xfftype"),
        "garbage_sign": lambda: _resign_free(body, sign="!!notbase64"),
    }[attack]()
    with pytest.raises(InvalidWebhook):
        alipay.parse_webhook(bad, {})


def test_a_notification_for_another_app_is_refused(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    _paid(fake, alipay)
    # genuinely signed by Alipay, but for another app of the same key holder
    with pytest.raises(InvalidWebhook, match="another app"):
        alipay.parse_webhook(fake.notification("ord_1", app_id="2021000999999999"), {})


def test_wrong_amount_or_seller_reaches_the_shared_mismatch_check(fake: FakeAlipay) -> None:
    alipay = AlipayProvider(**fake.provider_kwargs(), seller_id=SELLER_ID)
    _paid(fake, alipay)
    assert alipay.parse_webhook(fake.notification("ord_1", total_amount="12.31"), {}).amount == 1231  # type: ignore[union-attr]
    assert alipay.parse_webhook(fake.notification("ord_1", seller_id="2088999999999999"), {}).amount == 0  # type: ignore[union-attr]
    assert alipay.parse_webhook(fake.notification("ord_1"), {}).amount == 1230  # type: ignore[union-attr]
    with pytest.raises(InvalidWebhook, match="malformed amount"):
        alipay.parse_webhook(fake.notification("ord_1", total_amount="12.3e1"), {})


def test_unpaid_close_is_a_close(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    alipay.create_payment(order_id="ord_c", amount=500, currency="CNY", payer=BUYER_ID)
    event = alipay.parse_webhook(fake.timeout_close("ord_c"), {})
    assert event is not None and event.kind == "payment_closed" and event.payment_ref == "ord_c"


def test_refund_notifications_are_refunds_never_a_close_or_a_payment(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    """Alipay: a partial refund notifies TRADE_SUCCESS, a full refund TRADE_CLOSED, both with out_biz_no and
    refund_fee. Mapping the first to a payment or the second to a close would cancel a ticketed order."""
    _paid(fake, alipay)
    alipay.refund(payment_ref="ord_1", amount=230, refund_id="rfd_a")
    partial = alipay.parse_webhook(fake.notification("ord_1", refund="rfd_a"), {})
    assert dict(parse_qsl(fake.notification("ord_1", refund="rfd_a").decode()))["trade_status"] == "TRADE_SUCCESS"
    assert partial is not None and partial.kind == "refund_updated" and partial.amount == 230
    assert [(u.refund_id, u.status) for u in partial.refunds] == [("rfd_a", "succeeded")]
    alipay.refund(payment_ref="ord_1", amount=1000, refund_id="rfd_b")
    body = fake.notification("ord_1", refund="rfd_b")
    assert dict(parse_qsl(body.decode()))["trade_status"] == "TRADE_CLOSED"
    full = alipay.parse_webhook(body, {})
    assert full is not None and full.kind == "refund_updated" and full.amount == 1230  # refund_fee: the total so far
    assert [(u.refund_id, u.status) for u in full.refunds] == [("rfd_b", "succeeded")]


def test_wait_buyer_pay_notifications_are_ignored(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    alipay.create_payment(order_id="ord_w", amount=500, currency="CNY", payer=BUYER_ID)
    assert alipay.parse_webhook(fake.notification("ord_w"), {}) is None


# --------------------------------------------------------------------------- query and close


def test_query_finds_a_lost_payment_with_a_stable_event_id(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    assert alipay.query_payment("ord_1") is None  # unknown to Alipay
    alipay.create_payment(order_id="ord_1", amount=1230, currency="CNY", payer=BUYER_ID)
    assert alipay.query_payment("ord_1") is None  # waiting for the buyer
    fake.pay("ord_1")  # the notification is lost
    first, second = alipay.query_payment("ord_1"), alipay.query_payment("ord_1")
    trade_no = fake.trades["ord_1"]["trade_no"]
    assert first == second and first is not None
    assert (first.event_id, first.kind, first.amount, first.provider_txn, first.occurred_at) == (
        f"alipay:query:{trade_no}:TRADE_SUCCESS", "payment_succeeded", 1230, trade_no, T0)


def test_query_and_close_of_an_unpaid_trade(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    alipay.create_payment(order_id="ord_c", amount=500, currency="CNY", payer=BUYER_ID)
    alipay.close_payment("ord_c")
    alipay.close_payment("ord_c")  # idempotent
    alipay.close_payment("ord_never")  # an H5 trade never opened: nothing to close
    assert fake.trades["ord_c"]["status"] == "TRADE_CLOSED"
    event = alipay.query_payment("ord_c")
    assert event is not None and event.kind == "payment_closed"
    assert event.event_id == f"alipay:query:{fake.trades['ord_c']['trade_no']}:TRADE_CLOSED"


def test_closing_a_paid_trade_changes_nothing(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    _paid(fake, alipay)
    alipay.close_payment("ord_1")
    assert fake.trades["ord_1"]["status"] == "TRADE_SUCCESS"


def test_a_trade_paid_then_refunded_in_full_is_no_close(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    _paid(fake, alipay)
    alipay.refund(payment_ref="ord_1", amount=1230, refund_id="rfd_all")
    assert fake.trades["ord_1"]["status"] == "TRADE_CLOSED"
    assert alipay.query_payment("ord_1") is None


# --------------------------------------------------------------------------- refunds


def test_refunds_are_idempotent_by_our_refund_id(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    _paid(fake, alipay)
    first = alipay.refund(payment_ref="ord_1", amount=230, refund_id="rfd_1", total=1230)
    again = alipay.refund(payment_ref="ord_1", amount=230, refund_id="rfd_1", total=1230)
    assert first.status == again.status == "succeeded" and first.ref == again.ref == "rfd_1"
    assert fake.refunded(fake.trades["ord_1"]) == 230  # paid back once
    assert alipay.find_refund(payment_ref="ord_1", refund_id="rfd_1").status == "succeeded"  # type: ignore[union-attr]
    assert alipay.find_refund(payment_ref="ord_1", refund_id="rfd_none") is None
    assert alipay.find_refund(payment_ref="ord_unknown", refund_id="rfd_1") is None


@pytest.mark.parametrize(("amount", "refund_id", "sub_code"), [
    (1001, "rfd_2", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"),  # more than is left
    (100, "rfd_1", "ACQ.DISCORDANT_REPEAT_REQUEST"),  # our refund id reused for another amount
])
def test_refunds_alipay_refuses_are_definitive(fake: FakeAlipay, alipay: AlipayProvider, amount: int, refund_id: str,
                                                sub_code: str) -> None:
    _paid(fake, alipay)
    alipay.refund(payment_ref="ord_1", amount=230, refund_id="rfd_1")
    with pytest.raises(PaymentProviderError, match=sub_code) as e:
        alipay.refund(payment_ref="ord_1", amount=amount, refund_id=refund_id)
    assert e.value.definitive and e.value.details["sub_code"] == sub_code  # type: ignore[attr-defined]
    assert fake.refunded(fake.trades["ord_1"]) == 230


def test_an_unpaid_trade_cannot_be_refunded(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    alipay.create_payment(order_id="ord_u", amount=500, currency="CNY", payer=BUYER_ID)
    with pytest.raises(PaymentProviderError, match="ACQ.TRADE_STATUS_ERROR"):
        alipay.refund(payment_ref="ord_u", amount=500, refund_id="rfd_u")


# --------------------------------------------------------------------------- bills


def test_bill_download_and_parse(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    _paid(fake, alipay, "ord_1", 1230)
    _paid(fake, alipay, "ord_2", 800)
    alipay.refund(payment_ref="ord_1", amount=230, refund_id="rfd_1")
    alipay.create_payment(order_id="ord_3", amount=500, currency="CNY", payer=BUYER_ID)  # never paid: not billed
    day = T0.date()
    with pytest.raises(PaymentProviderError, match="isp.bill_not_exist"):
        alipay.download_bill(day)  # the day is not over
    fake.now = lambda: T0 + dt.timedelta(days=1)
    raw = alipay.download_bill(day)
    assert raw.startswith(b"PK")
    lines = alipay.parse_bill(raw)
    got = [(b.kind, b.payment_ref, b.amount, b.currency, b.refund_id) for b in lines]
    assert got == [("payment", "ord_1", 1230, "CNY", None), ("refund", "ord_1", 230, "CNY", "rfd_1"),
                   ("payment", "ord_2", 800, "CNY", None)]
    assert lines[0].provider_txn == fake.trades["ord_1"]["trade_no"] and lines[0].at == T0
    text = fake.bill_csv(day).split("\r\n")
    for b in lines:  # line numbers point at the row in the 业务明细 file
        assert b.payment_ref in text[b.line - 1]
    assert [b.line for b in lines] == [6, 7, 8]
    # the CSV alone (e.g. saved from the merchant console) parses the same
    assert alipay.parse_bill(fake.bill_csv(day).encode("gbk")) == lines


def test_a_planted_amount_shows_in_the_bill(fake: FakeAlipay, alipay: AlipayProvider) -> None:
    _paid(fake, alipay, "ord_1", 1230)
    fake.plant["ord_1"] = 1200
    fake.now = lambda: T0 + dt.timedelta(days=1)
    (line,) = alipay.parse_bill(alipay.download_bill(T0.date()))
    assert (line.payment_ref, line.amount) == ("ord_1", 1200)


def _bill(*rows: str) -> str:
    return "\r\n".join(["#支付宝业务明细查询", "#账号：[20880000000000010156]", FakeAlipay.HEADER, *rows,
                        "#-----业务明细列表结束-----", "#交易合计：1笔"]) + "\r\n"


ROW = ("2026030222001ABC\t,ord_1\t,交易,地铁票,2026-03-02 10:00:00,2026-03-02 10:00:05,,,,,138****0000,{total},{total},"
       "0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,0.00,0.00,")


@pytest.mark.parametrize(("row", "message"), [
    (ROW.format(total="12.3O"), "line 5: not an amount"),
    (ROW.format(total="12.30").replace("2026-03-02 10:00:05", "yesterday"), "line 5: not a time"),
    (ROW.format(total="12.30") + ",extra", "line 5: 26 fields where the header has 25"),
    (ROW.format(total="12.30").replace("ord_1\t", ""), "line 5: no 商户订单号"),
    (ROW.format(total="12.30").replace("交易", "退款"), "line 5: a refund without"),
])
def test_a_malformed_bill_names_the_line(row: str, message: str) -> None:
    good = ROW.format(total="12.30")
    assert [b.amount for b in parse_bill_csv(_bill(good))] == [1230]
    with pytest.raises(ValueError, match=message):
        parse_bill_csv(_bill(good, row))


def test_bills_that_are_not_alipay_bills(alipay: AlipayProvider) -> None:
    with pytest.raises(ValueError, match="header lacks"):
        parse_bill_csv("#x\r\na,b,c\r\n")
    with pytest.raises(ValueError, match="no header"):
        parse_bill_csv("#only comments\r\n")
    with pytest.raises(ValueError, match="not an Alipay bill"):
        alipay.parse_bill(b"PK\x03\x04 broken")
    other_types = _bill(ROW.format(total="1.00").replace("交易", "冻结"))
    assert parse_bill_csv(other_types) == []


# --------------------------------------------------------------------------- configuration


def test_keys_load_as_pem_or_bare_base64_and_bad_ones_stop_start_up(fake: FakeAlipay) -> None:
    from cryptography.hazmat.primitives import serialization

    from ticketing.errors import ProviderNotAvailable

    k = fake.provider_kwargs()
    pkcs8 = APP_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
    for private in (k["app_private_key"], pkcs8):
        # the Alipay key tool prints keys as one base64 line, without PEM armour
        bare = {name: "".join(x for x in text.splitlines() if not x.startswith("-----"))
                for name, text in (("app_private_key", private), ("alipay_public_key", k["alipay_public_key"]))}
        assert AlipayProvider(**{**k, **bare}).query_payment("ord_none") is None  # signed, and verified
    for bad in ({"alipay_public_key": "not a key"}, {"app_private_key": "bm90IGEga2V5"}, {"app_id": ""}):
        with pytest.raises(ProviderNotAvailable):
            AlipayProvider(**{**k, **bad})
