"""WeChat Pay v3 provider (ticketing/pay_wechat.py, the real wechatpayv3 SDK) against tests/wechat_server.py."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ticketing.errors import InvalidWebhook, PaymentMethodUnavailable, PaymentProviderError, ProviderNotAvailable
from ticketing.pay_wechat import WeChatPayProvider, out_refund_no, out_trade_no, parse_trade_bill
from tests import wechat_server as ws

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@pytest.fixture
def wx(wechat_server):  # noqa: ANN001, ANN201
    return WeChatPayProvider(**ws.provider_kwargs(wechat_server.base))


def _open(wx: WeChatPayProvider, order_id: str = "ord_0123456789abcdef01234567", amount: int = 1250):  # noqa: ANN202
    return wx.create_payment(order_id=order_id, amount=amount, currency="CNY", payer=OPENID,
                             description="Ticket A -> B", expires_at=dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC))


def test_out_trade_no_is_the_order_id_or_a_stable_hash_within_wechat_limits() -> None:
    assert out_trade_no("ord_0123456789abcdef01234567") == "ord_0123456789abcdef01234567"
    long_id = "order:" + "x" * 60
    assert out_trade_no(long_id) == out_trade_no(long_id)
    for oid in (long_id, "o1", "订单12345678", "a b c d e f"):
        ref = out_trade_no(oid)
        assert 6 <= len(ref) <= 32 and all(c.isalnum() or c in "_-|*" for c in ref) and ref.isascii()
    assert out_trade_no("o1") != out_trade_no("o2")
    assert out_refund_no("rfd_" + "a" * 24) == "rfd_" + "a" * 24
    assert len(out_refund_no("r" * 80)) <= 64


def test_prepay_and_signed_request_payment_params(wx, wechat_server) -> None:  # noqa: ANN001
    pp = _open(wx)
    assert pp.ref == "ord_0123456789abcdef01234567" and pp.status == "pending"
    order = wechat_server.orders[pp.ref]
    assert order["params"]["amount"] == {"total": 1250, "currency": "CNY"}
    assert order["params"]["payer"] == {"openid": OPENID}
    assert order["params"]["time_expire"] == "2030-01-01T20:00:00+08:00"
    assert order["params"]["notify_url"].endswith("/v1/payments/wechat/notify")
    cp = pp.client_params
    assert cp is not None and set(cp) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert cp["package"] == f"prepay_id={order['prepay_id']}" and cp["signType"] == "RSA"
    assert cp["appId"] == ws.APPID and abs(int(cp["timeStamp"]) - time.time()) < 60
    # what WeChat checks in wx.requestPayment: RSA-SHA256 with the merchant key over the four lines
    message = f"{cp['appId']}\n{cp['timeStamp']}\n{cp['nonceStr']}\n{cp['package']}\n"
    assert ws.rsa_verify(ws.MERCHANT_PUBLIC_PEM, message, cp["paySign"])
    assert not ws.rsa_verify(ws.MERCHANT_PUBLIC_PEM, message.replace("prepay_id=", "prepay_id=x"), cp["paySign"])
    # a retried creation is the same order at WeChat (same prepay_id)
    again = _open(wx)
    assert again.client_params["package"] == cp["package"]
    assert len(wechat_server.orders) == 1


def test_prepay_refusals(wx, wechat_server) -> None:  # noqa: ANN001
    with pytest.raises(PaymentMethodUnavailable, match="CNY only") as exc:
        wx.create_payment(order_id="ord_usd_000001", amount=100, currency="USD", payer=OPENID)
    assert exc.value.status == 422
    with pytest.raises(PaymentProviderError, match="openid"):
        wx.create_payment(order_id="ord_nopayer_01", amount=100, currency="CNY")
    assert wechat_server.requests == []  # refused before asking WeChat
    _open(wx, amount=100)
    with pytest.raises(PaymentProviderError, match="INVALID_REQUEST") as exc:  # same out_trade_no, other amount
        _open(wx, amount=200)
    assert exc.value.definitive  # type: ignore[attr-defined]
    wechat_server.fail_next = (500, "SYSTEM_ERROR", "系统错误")
    with pytest.raises(PaymentProviderError) as exc:
        _open(wx, order_id="ord_busy_000001")
    assert not exc.value.definitive  # type: ignore[attr-defined]


def test_server_refuses_requests_not_signed_with_the_merchant_key(wechat_server) -> None:  # noqa: ANN001
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives import serialization

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    forged = WeChatPayProvider(**{**ws.provider_kwargs(wechat_server.base), "private_key": pem})
    with pytest.raises(PaymentProviderError, match="SIGN_ERROR"):
        _open(forged)
    assert wechat_server.orders == {}


def test_answer_not_signed_by_the_platform_is_refused(wechat_server, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(ws, "sign_headers", lambda body, **kw: _forged_headers(body))  # answers signed by another key
    wx = WeChatPayProvider(**ws.provider_kwargs(wechat_server.base))
    with pytest.raises(PaymentProviderError, match="does not verify") as exc:
        _open(wx)
    assert not exc.value.definitive  # type: ignore[attr-defined]


def _forged_headers(body: str) -> dict[str, str]:
    ts, nonce = str(int(time.time())), "n" * 32
    sig = base64.b64encode(ws.OTHER_KEY.sign(f"{ts}\n{nonce}\n{body}\n".encode(), padding.PKCS1v15(),
                                             hashes.SHA256())).decode()
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": ws.PLATFORM_KEY_ID,
            "Wechatpay-Signature": sig, "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


def test_payment_notification_verified_decrypted_and_mapped(wx, wechat_server) -> None:  # noqa: ANN001
    pp = _open(wx)
    body, headers = wechat_server.notify_payment(pp.ref, notification_id="EV-2018022511223320873")
    event = wx.parse_webhook(body, {k.lower(): v for k, v in headers.items()})
    txn = wechat_server.orders[pp.ref]["transaction_id"]
    assert event is not None and event.kind == "payment_succeeded" and event.payment_ref == pp.ref
    assert (event.event_id, event.amount, event.currency, event.provider_txn) == (
        "wechat:EV-2018022511223320873", 1250, "CNY", txn)
    # the same notification delivered again is the same event (applied once upstream)
    assert wx.parse_webhook(body, headers).event_id == event.event_id
    assert "ciphertext" in json.loads(body)["resource"] and txn not in body.decode()


def _refused(wx: WeChatPayProvider, body: bytes, headers: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidWebhook, match=match):
        wx.parse_webhook(body, headers)


def test_forged_notifications_are_refused(wx, wechat_server) -> None:  # noqa: ANN001
    pp = _open(wx)
    body, headers = wechat_server.notify_payment(pp.ref)
    # a changed body (e.g. another amount) no longer matches the signature
    tampered = body.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.SUCCESS" ')
    _refused(wx, tampered, headers, "does not verify")
    # a signature by another key, under WeChat's serial
    forged_body, forged = wechat_server.notification("TRANSACTION.SUCCESS", wechat_server.transaction(pp.ref),
                                                     "transaction", key=ws.OTHER_KEY)
    _refused(wx, forged_body, forged, "does not verify")
    # a serial we do not know (the SDK is not even asked: no certificate download per forged serial)
    _, other_serial = wechat_server.notification("TRANSACTION.SUCCESS", wechat_server.transaction(pp.ref),
                                                 "transaction", serial="PUB_KEY_ID_FORGED")
    n = len(wechat_server.requests)
    _refused(wx, body, {**headers, "Wechatpay-Serial": "PUB_KEY_ID_FORGED"}, "serial")
    assert len(wechat_server.requests) == n
    # a resource encrypted under another APIv3 key, correctly signed
    other_key_body, other_key = wechat_server.notification(
        "TRANSACTION.SUCCESS", wechat_server.transaction(pp.ref), "transaction", apiv3_key="k" * 32)
    _refused(wx, other_key_body, other_key, "does not verify")
    # missing headers, bad signature encoding, another signature type
    _refused(wx, body, {k: v for k, v in headers.items() if k != "Wechatpay-Signature"}, "not signed")
    _refused(wx, body, {**headers, "Wechatpay-Signature": "!!notbase64"}, "does not verify")
    _refused(wx, body, {**headers, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, "signature type")
    _refused(wx, b"\xff\xfe", headers, "not UTF-8")


def test_notification_for_another_merchant_is_refused(wx, wechat_server) -> None:  # noqa: ANN001
    pp = _open(wx)
    wechat_server.pay(pp.ref)
    resource = {**wechat_server.transaction(pp.ref), "mchid": "1230000109"}
    body, headers = wechat_server.notification("TRANSACTION.SUCCESS", resource, "transaction")
    _refused(wx, body, headers, "another merchant")
    resource = {**wechat_server.transaction(pp.ref), "appid": "wx0000000000000000"}
    body, headers = wechat_server.notification("TRANSACTION.SUCCESS", resource, "transaction")
    _refused(wx, body, headers, "another app")


def test_a_success_without_its_amount_is_not_applied(wx, wechat_server) -> None:  # noqa: ANN001
    pp = _open(wx)
    wechat_server.pay(pp.ref)
    resource = {k: v for k, v in wechat_server.transaction(pp.ref).items() if k != "amount"}
    body, headers = wechat_server.notification("TRANSACTION.SUCCESS", resource, "transaction")
    with pytest.raises(PaymentProviderError, match="without its amount"):
        wx.parse_webhook(body, headers)


def test_stale_or_future_timestamps_are_refused(wx, wechat_server) -> None:  # noqa: ANN001
    pp = _open(wx)
    now = int(time.time())
    for ts in (now - 301, now + 301, now - 86400):
        body, headers = wechat_server.notify_payment(pp.ref, timestamp=ts)
        _refused(wx, body, headers, "5-minute window")
    body, headers = wechat_server.notify_payment(pp.ref, timestamp=now - 290)
    assert wx.parse_webhook(body, headers) is not None
    # the window follows the provider's clock (WeChat's real time), not the server's
    late = WeChatPayProvider(**ws.provider_kwargs(wechat_server.base), clock=lambda: now + 600)
    _refused(late, body, headers, "5-minute window")


def test_query_close_and_closed_states(wx, wechat_server) -> None:  # noqa: ANN001
    pp = _open(wx)
    assert wx.query_payment(pp.ref) is None  # NOTPAY: still open
    wechat_server.set_state(pp.ref, "USERPAYING")
    assert wx.query_payment(pp.ref) is None
    wechat_server.pay(pp.ref)
    event = wx.query_payment(pp.ref)
    txn = wechat_server.orders[pp.ref]["transaction_id"]
    assert event is not None and event.kind == "payment_succeeded" and event.amount == 1250
    assert event.event_id == f"wechat:query:{txn}:SUCCESS" and event.provider_txn == txn
    assert wx.query_payment(pp.ref).event_id == event.event_id  # stable
    wx.close_payment(pp.ref)  # paid: left as it is (ORDERPAID)
    assert wechat_server.orders[pp.ref]["trade_state"] == "SUCCESS"
    assert wx.query_payment("ord_unknown_00001") is None

    other = _open(wx, order_id="ord_closeme_000001")
    wx.close_payment(other.ref)
    wx.close_payment(other.ref)  # idempotent
    assert wechat_server.orders[other.ref]["trade_state"] == "CLOSED"
    closed = wx.query_payment(other.ref)
    assert closed is not None and closed.kind == "payment_closed"
    assert closed.event_id == f"wechat:query:{other.ref}:CLOSED"
    for state in ("PAYERROR", "REVOKED"):
        wechat_server.set_state(other.ref, state)
        assert wx.query_payment(other.ref).kind == "payment_closed"
    wx.close_payment("ord_never_opened_1")  # unknown at WeChat: nothing to close


def test_refund_partial_full_idempotent_and_over_refund(wx, wechat_server) -> None:  # noqa: ANN001
    pp = _open(wx, amount=1000)
    with pytest.raises(PaymentProviderError, match="INVALID_REQUEST") as exc:  # not paid yet
        wx.refund(payment_ref=pp.ref, amount=100, refund_id="rfd_early", total=1000)
    assert exc.value.definitive  # type: ignore[attr-defined]
    wechat_server.pay(pp.ref)
    r1 = wx.refund(payment_ref=pp.ref, amount=300, refund_id="rfd_part1", total=1000)
    assert r1.status == "pending" and wechat_server.refunds["rfd_part1"]["amount"]["refund"] == 300
    assert wx.refund(payment_ref=pp.ref, amount=300, refund_id="rfd_part1", total=1000) == r1  # same out_refund_no
    with pytest.raises(PaymentProviderError, match="INVALID_REQUEST") as exc:
        wx.refund(payment_ref=pp.ref, amount=701, refund_id="rfd_toomuch", total=1000)
    assert exc.value.definitive  # type: ignore[attr-defined]
    wechat_server.refund_status = "SUCCESS"
    r2 = wx.refund(payment_ref=pp.ref, amount=700, refund_id="rfd_rest")  # total asked from WeChat
    assert r2.status == "succeeded"
    assert sum(r["amount"]["refund"] for r in wechat_server.refunds.values()) == 1000


def test_refund_query_and_refund_notifications(wx, wechat_server) -> None:  # noqa: ANN001
    pp = _open(wx, amount=1000)
    wechat_server.pay(pp.ref)
    assert wx.find_refund(payment_ref=pp.ref, refund_id="rfd_none") is None
    made = wx.refund(payment_ref=pp.ref, amount=400, refund_id="rfd_q1", total=1000)
    assert wx.find_refund(payment_ref=pp.ref, refund_id="rfd_q1") == made
    body, headers = wechat_server.notify_refund("rfd_q1", notification_id="EV-refund-1")
    event = wx.parse_webhook(body, headers)
    assert event is not None and event.kind == "refund_updated" and event.event_id == "wechat:EV-refund-1"
    assert event.payment_ref == pp.ref and event.amount == 400
    assert [(u.ref, u.refund_id, u.status) for u in event.refunds] == [(made.ref, "rfd_q1", "succeeded")]
    assert wx.find_refund(payment_ref=pp.ref, refund_id="rfd_q1").status == "succeeded"
    wx.refund(payment_ref=pp.ref, amount=100, refund_id="rfd_q2", total=1000)
    body, headers = wechat_server.notify_refund("rfd_q2", status="ABNORMAL")
    assert wx.parse_webhook(body, headers).refunds[0].status == "failed"


def test_trade_bill_download_and_parse(wx, wechat_server) -> None:  # noqa: ANN001
    pp = _open(wx, amount=1234)
    wechat_server.pay(pp.ref)
    wechat_server.refund_status = "SUCCESS"
    wx.refund(payment_ref=pp.ref, amount=234, refund_id="rfd_bill1", total=1234)
    day = wechat_server.bill_day(pp.ref)
    raw = wx.download_bill(day)
    assert raw.startswith("交易时间,".encode()) and b"`" + pp.ref.encode() in raw
    lines = wx.parse_bill(raw)
    txn = wechat_server.orders[pp.ref]["transaction_id"]
    assert [(b.line, b.kind, b.payment_ref, b.amount, b.currency, b.provider_txn, b.refund_id) for b in lines] == [
        (2, "payment", pp.ref, 1234, "CNY", txn, None), (3, "refund", pp.ref, 234, "CNY", txn, "rfd_bill1")]
    assert lines[0].at is not None and lines[0].at.utcoffset() == dt.timedelta(hours=8)
    # a planted mismatch shows in the parsed amount
    wechat_server.bill_overrides[pp.ref] = 1200
    assert wx.parse_bill(wx.download_bill(day))[0].amount == 1200
    # a day without trades: WeChat has no bill (NO_STATEMENT_EXIST)
    assert wx.download_bill(day - dt.timedelta(days=30)) == b""
    assert wx.parse_bill(b"") == []


def test_bill_download_checks_the_hash(wx, wechat_server, monkeypatch) -> None:  # noqa: ANN001
    pp = _open(wx)
    wechat_server.pay(pp.ref)
    day = wechat_server.bill_day(pp.ref)
    real_bill = wechat_server.bill
    monkeypatch.setattr(wechat_server, "bills", _Tampering(wechat_server.bills))
    with pytest.raises(PaymentProviderError, match="SHA1"):
        wx.download_bill(day)
    assert real_bill(day.isoformat()) is not None


class _Tampering(dict):  # type: ignore[type-arg]
    """Serves a changed file under the token (the hash was computed before)."""

    def get(self, key, default=None):  # noqa: ANN001, ANN201
        raw = super().get(key, default)
        return raw.replace(b"1250", b"1251").replace(b"12.50", b"12.51") if raw else raw


GOOD_BILL = ws.render_bill([ws.FakeWeChatPay.bill_row(**{
    "交易时间": "2026-01-05 10:00:00", "微信订单号": "4200001", "商户订单号": "ord_abc123", "交易状态": "SUCCESS",
    "货币种类": "CNY", "应结订单金额": "12.50", "订单金额": "12.50", "商户退款单号": "0", "退款金额": "0.00",
    "申请退款金额": "0.00", "商品名称": "a, b"})])


def test_parse_good_bill_with_a_comma_in_a_field() -> None:
    [line] = parse_trade_bill(GOOD_BILL.encode())
    assert (line.line, line.amount, line.payment_ref) == (2, 1250, "ord_abc123")
    assert parse_trade_bill(b"\xef\xbb\xbf" + GOOD_BILL.encode())[0].amount == 1250  # with a BOM
    assert parse_trade_bill(gzip.compress(GOOD_BILL.encode()))[0].amount == 1250  # as downloaded (--file)
    with pytest.raises(ValueError, match="line 1: a damaged gzip"):
        parse_trade_bill(gzip.compress(GOOD_BILL.encode())[:40])


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda s: s.replace("`12.50", "`12.5x", 1), "line 2: bad amount"),
    (lambda s: s.replace("`12.50", "`12.505", 1), "line 2: bad amount"),
    (lambda s: s.replace("`2026-01-05 10:00:00", "`2026-13-05 10:00:00"), "line 2: bad trade time"),
    (lambda s: s.replace(",`CNY", ""), "line 2: 26 fields"),
    (lambda s: s.replace("`2026-01-05", "2026-01-05"), "line 2: .*backtick"),
    (lambda s: s.replace("交易时间,", "时间,"), "line 1: not a WeChat Pay trade bill"),
    (lambda s: s.split("总交易单数")[0], "line 3: the bill ends without its summary"),
    (lambda s: s.replace("\r\n`1,", "\r\n`2,"), "line 4: the summary counts '2' trades, the bill has 1"),
    (lambda s: s.replace("`ord_abc123", "`"), "line 2: no out_trade_no"),
])
def test_malformed_bill_names_the_line(mutate, message) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=message):
        parse_trade_bill(mutate(GOOD_BILL).encode())


def test_configuration_errors() -> None:
    kw = ws.provider_kwargs("http://127.0.0.1:9")
    with pytest.raises(ProviderNotAvailable, match="WECHAT_PAY_APIV3_KEY"):
        WeChatPayProvider(**{**kw, "apiv3_key": "short"})
    with pytest.raises(ProviderNotAvailable, match="missing WECHAT_PAY_APPID"):
        WeChatPayProvider(**{**kw, "appid": ""})
    with pytest.raises(ProviderNotAvailable, match="go together"):
        WeChatPayProvider(**{**kw, "platform_public_key_id": None})
    with pytest.raises(ProviderNotAvailable, match="keys do not load"):
        WeChatPayProvider(**{**kw, "private_key": "not a key"})


def _platform_certificate(serial: int) -> str:
    """A platform certificate for the test platform key (WeChat's certificate mode), valid for years around now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ws.PLATFORM_KEY.public_key())
            .serial_number(serial).not_valid_before(now - dt.timedelta(days=800))
            .not_valid_after(now + dt.timedelta(days=800)).sign(ws.PLATFORM_KEY, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_certificate_mode_verifies_with_the_certificate_directory(wx, wechat_server, tmp_path) -> None:  # noqa: ANN001
    serial = 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
    (tmp_path / f"{serial:X}.pem").write_text(_platform_certificate(serial))
    kw = {**ws.provider_kwargs(wechat_server.base), "platform_public_key": None, "platform_public_key_id": None,
          "cert_dir": str(tmp_path), "api_base": None}
    certs = WeChatPayProvider(**kw)
    downloads: list[int] = []
    certs._wx._core._update_certificates = lambda: downloads.append(1)  # WeChat's certificate download, stubbed
    pp = _open(wx)
    body, headers = wechat_server.notify_payment(pp.ref, serial=f"{serial:X}")
    event = certs.parse_webhook(body, headers)
    assert event is not None and event.kind == "payment_succeeded" and downloads == []
    # an unknown serial may make the SDK download WeChat's certificates once (a rotation), not at every forgery
    _, other = wechat_server.notify_payment(pp.ref, serial="ABCDEF0123", key=ws.OTHER_KEY)
    _refused(certs, body, other, "does not verify")
    assert downloads == [1]
    _refused(certs, body, other, "serial we do not know")
    _refused(certs, body, {**other, "Wechatpay-Serial": "PUB_KEY_ID_NOT_HEX"}, "serial we do not know")
    assert downloads == [1]
    with pytest.raises(ProviderNotAvailable, match="needs the platform public key"):
        WeChatPayProvider(**{**kw, "api_base": wechat_server.base})
