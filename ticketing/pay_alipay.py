"""Alipay (支付宝) through ``python-alipay-sdk``: mini-program and H5 payments, notifications, refunds, bills.

- A payment is one Alipay trade whose ``out_trade_no`` is our order id (so a retried order creation finds the
  same trade). With a payer (the mini-program user's ``buyer_id``/``buyer_open_id``) it is created server side
  with ``alipay.trade.create`` and the mini-program calls ``my.tradePay({tradeNO})``; without one it is an H5
  payment: ``alipay.trade.wap.pay`` is a signed URL on the gateway that the browser opens.
- Asynchronous notifications (form-encoded POSTs) are verified with Alipay's public key (RSA2, the SDK's
  ``verify``: every field but ``sign`` and ``sign_type``, sorted, ``k=v`` joined by ``&``), must name our
  ``app_id``, and become `PaymentEvent` s with the id ``alipay:<notify_id>``.
- Alipay sends the same ``trade_status_sync`` notification kind for refunds: a partial refund keeps
  ``TRADE_SUCCESS``, a full refund turns the trade ``TRADE_CLOSED``; both carry ``out_biz_no`` (the refund's
  ``out_request_no``, our refund id) and ``refund_fee``. Those are refund events, never a payment or a close.
- Amounts are yuan strings on the wire (``"12.30"``), fen (integer) here, converted exactly with `Decimal`.
  Alipay is CNY only: an order in any other currency is refused (`PaymentMethodUnavailable`).
- ``gateway`` points the SDK elsewhere (tests run a local server speaking Alipay's signed JSON); the SDK has
  no public option for it, so its ``_gateway`` attribute is set.
"""

from __future__ import annotations

import binascii
import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.error import URLError
from urllib.parse import parse_qsl
from urllib.request import urlopen

from ticketing.errors import InvalidWebhook, PaymentMethodUnavailable, PaymentProviderError, ProviderNotAvailable
from ticketing.payments import BillLine, PaymentEvent, ProviderPayment, ProviderRefund, RefundUpdate

#: Alipay's clock, for ``timestamp``, ``time_expire`` and the bill's times (Beijing time, no DST)
BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
_YUAN = re.compile(r"-?\d{1,12}(\.\d{1,2})?")
_SUCCESS = "10000"
#: business errors after which retrying the same request may still succeed (not a refusal)
#: unsigned error codes with which the gateway refuses a request before running it (missing or invalid
#: parameters, authorisation, permission)
_GATEWAY_REFUSALS = {"40001", "40002", "40006", "20001"}
_TRANSIENT = {"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error", "isp.unknown-error"}


def yuan(fen: int) -> str:
    """Fen as Alipay's yuan string: 1230 -> ``"12.30"``."""
    if not isinstance(fen, int) or isinstance(fen, bool) or fen < 0:
        raise ValueError(f"an amount in fen must be a non-negative integer, not {fen!r}")
    return f"{fen // 100}.{fen % 100:02d}"


def fen(text: str | None, *, negative: bool = False) -> int:
    """Alipay's yuan string as fen, exactly: ``"12.30"`` -> 1230; ValueError for anything else (floats,
    exponents, three decimals, blanks; a sign only when ``negative``)."""
    s = (text or "").strip()
    if not _YUAN.fullmatch(s) or (s.startswith("-") and not negative):
        raise ValueError(f"not an amount in yuan: {text!r}")
    try:
        return int(Decimal(s) * 100)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"not an amount in yuan: {text!r}") from exc


def _pem(key: str, kind: str) -> str:
    """Alipay's console gives keys as bare base64; the SDK wants PEM."""
    key = key.strip()
    if key.startswith("-----BEGIN"):
        return key
    body = "\n".join(key[i:i + 64] for i in range(0, len(key), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


def _beijing(t: dt.datetime) -> str:
    return t.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _time(text: str | None) -> dt.datetime | None:
    """Alipay's ``yyyy-MM-dd HH:mm:ss`` (Beijing), or None when absent or unreadable."""
    try:
        return dt.datetime.strptime(str(text or "")[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


class AlipayProvider:
    """Alipay's open API (RSA2 keys, not certificates) for one app (``app_id``)."""

    name = "alipay"

    def __init__(self, *, app_id: str, app_private_key: str, alipay_public_key: str, notify_url: str,
                 gateway: str | None = None, seller_id: str | None = None, timeout_s: float = 15) -> None:
        if not app_id or not app_private_key or not alipay_public_key:
            raise ProviderNotAvailable("Alipay needs ALIPAY_APP_ID, ALIPAY_APP_PRIVATE_KEY and ALIPAY_PUBLIC_KEY")
        from alipay import AliPay
        from alipay.exceptions import AliPayException, AliPayValidationError
        from alipay.utils import AliPayConfig

        self._errors = (AliPayException, AliPayValidationError)
        try:
            self.client = AliPay(appid=app_id, app_notify_url=notify_url or None,
                                 app_private_key_string=_pem(app_private_key, "RSA PRIVATE KEY"),
                                 alipay_public_key_string=_pem(alipay_public_key, "PUBLIC KEY"),
                                 sign_type="RSA2", config=AliPayConfig(timeout=timeout_s))
        except (ValueError, IndexError, TypeError) as exc:
            raise ProviderNotAvailable("the Alipay keys do not load (PEM or bare base64 RSA keys expected)") from exc
        if gateway:
            self.client._gateway = gateway  # no public option in the SDK (read alipay/__init__.py)
        self.gateway: str = self.client._gateway
        self.app_id = app_id
        #: our merchant's ``seller_id`` (2088…): when set, a notification paid to another seller is no payment
        self.seller_id = seller_id
        self.timeout_s = timeout_s

    # -- requests ----------------------------------------------------------------------------------------------
    def _call(self, method: str, biz: dict[str, Any], what: str) -> dict[str, Any]:
        """One signed gateway request; the response object once its signature verifies (any ``code``)."""
        try:
            return self.client.server_api(method, biz, timestamp=_beijing(dt.datetime.now(dt.UTC)))
        except self._errors[1] as exc:
            raise self._error(f"Alipay's answer to {what} is not signed by Alipay", definitive=False) from exc
        except self._errors[0] as exc:  # an unsigned answer: an error_response, or not Alipay's
            code = getattr(exc, "_AliPayException__code", None)  # the SDK keeps it private
            # only the gateway's own refusals of the request (parameters, signature, app id, permission) are
            # sure to have done nothing; anything else unsigned may hide a request that went through
            raise self._error(f"Alipay refused {what}: {str(exc)[:300]}",
                              definitive=code in _GATEWAY_REFUSALS) from exc
        except (URLError, OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
            # network, timeout, HTTP 5xx, not JSON, JSON that is not Alipay's shape (the SDK trips on it)
            raise self._error(f"Alipay could not be reached for {what}: {exc!r}", definitive=False) from exc

    @staticmethod
    def _error(message: str, *, definitive: bool, resp: Mapping[str, Any] | None = None) -> PaymentProviderError:
        details: dict[str, Any] = {"provider": "alipay"}
        if resp is not None:
            details.update({k: resp[k] for k in ("code", "sub_code", "sub_msg") if resp.get(k)})
        err = PaymentProviderError(message, details=details)
        err.definitive = definitive  # type: ignore[attr-defined]
        return err

    def _refused(self, what: str, resp: Mapping[str, Any]) -> PaymentProviderError:
        sub = str(resp.get("sub_code") or "")
        definitive = resp.get("code") == "40004" and sub not in _TRANSIENT
        return self._error(f"Alipay refused {what}: {sub or resp.get('code')} {resp.get('sub_msg') or ''}".strip(),
                           definitive=definitive, resp=resp)

    # -- payments ----------------------------------------------------------------------------------------------
    def create_payment(self, *, order_id: str, amount: int, currency: str, payer: str | None = None,
                       description: str = "", expires_at: dt.datetime | None = None) -> ProviderPayment:
        """A mini-program trade (``payer`` given) or an H5 pay URL; ``client_params`` is what the client needs:
        ``{"trade_no"}`` for ``my.tradePay``, or ``{"pay_url"}`` to open in the browser."""
        if currency != "CNY":
            raise PaymentMethodUnavailable(f"Alipay takes payments in CNY only, not {currency}",
                                           details={"payment_method": "alipay", "currency": currency})
        if amount <= 0:
            raise ValueError("an Alipay payment needs a positive amount")
        biz: dict[str, Any] = {"out_trade_no": order_id, "total_amount": yuan(amount),
                               "subject": (description or f"Order {order_id}")[:256]}
        if expires_at is not None:
            biz["time_expire"] = _beijing(expires_at)
        if payer is None:
            biz["product_code"] = "QUICK_WAP_PAY"
            query = self.client.client_api("alipay.trade.wap.pay", biz, timestamp=_beijing(dt.datetime.now(dt.UTC)))
            return ProviderPayment(ref=order_id, status="pending", client_params={"pay_url": f"{self.gateway}?{query}"})
        biz["product_code"] = "JSAPI_PAY"
        # the older 2088… user id, or the newer per-app OpenID
        biz["buyer_id" if re.fullmatch(r"2088\d{12}", payer) else "buyer_open_id"] = payer
        resp = self._call("alipay.trade.create", biz, "the payment")
        if resp.get("code") != _SUCCESS or not resp.get("trade_no"):
            raise self._refused("the payment", resp)
        return ProviderPayment(ref=order_id, status="pending", client_params={"trade_no": resp["trade_no"]})

    def query_payment(self, payment_ref: str) -> PaymentEvent | None:
        """``alipay.trade.query``: paid, closed (unpaid), or None while open (or while an H5 trade has not been
        opened by the buyer: Alipay does not know it yet)."""
        resp = self._call("alipay.trade.query", {"out_trade_no": payment_ref}, "the payment query")
        if resp.get("code") != _SUCCESS:
            if resp.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return None
            raise self._refused("the payment query", resp)
        status = resp.get("trade_status")
        trade_no = str(resp.get("trade_no") or payment_ref)
        if status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            return PaymentEvent(event_id=f"alipay:query:{trade_no}:{status}", provider=self.name,
                                kind="payment_succeeded", payment_ref=payment_ref, amount=fen(resp.get("total_amount")),
                                currency="CNY", provider_txn=trade_no, occurred_at=_time(resp.get("send_pay_date")))
        if status == "TRADE_CLOSED" and not resp.get("send_pay_date"):
            # closed unpaid; a trade paid and then refunded in full is closed too, but it was paid: no close
            return PaymentEvent(event_id=f"alipay:query:{trade_no}:TRADE_CLOSED", provider=self.name,
                                kind="payment_closed", payment_ref=payment_ref, provider_txn=trade_no)
        return None

    def close_payment(self, payment_ref: str) -> None:
        """``alipay.trade.close``; a trade Alipay does not know (an H5 URL never opened: it lapses at its
        ``time_expire``) or no longer open (closed, or paid: the notification or query says so) is fine."""
        resp = self._call("alipay.trade.close", {"out_trade_no": payment_ref}, "closing the payment")
        if resp.get("code") != _SUCCESS and resp.get("sub_code") not in ("ACQ.TRADE_NOT_EXIST",
                                                                        "ACQ.TRADE_STATUS_ERROR"):
            raise self._refused("closing the payment", resp)

    # -- refunds -----------------------------------------------------------------------------------------------
    def refund(self, *, payment_ref: str, amount: int, refund_id: str, total: int | None = None) -> ProviderRefund:
        """``alipay.trade.refund`` with ``out_request_no`` = our refund id (Alipay's idempotency key: the same id
        never pays twice). ``fund_change=Y`` means it paid now; otherwise the refund query says."""
        resp = self._call("alipay.trade.refund", {"out_trade_no": payment_ref, "refund_amount": yuan(amount),
                                                  "out_request_no": refund_id}, "the refund")
        if resp.get("code") != _SUCCESS:
            raise self._refused("the refund", resp)
        if resp.get("fund_change") == "Y":
            return ProviderRefund(ref=refund_id, status="succeeded")
        # a repeated request (already refunded), or one still in progress
        return self.find_refund(payment_ref=payment_ref, refund_id=refund_id) or ProviderRefund(
            ref=refund_id, status="pending")

    def find_refund(self, *, payment_ref: str, refund_id: str) -> ProviderRefund | None:
        """``alipay.trade.fastpay.refund.query``: ``REFUND_SUCCESS``, or None (Alipay: "not returned means the
        refund was not received or failed"; retrying with the same ``out_request_no`` is then safe)."""
        resp = self._call("alipay.trade.fastpay.refund.query",
                          {"out_trade_no": payment_ref, "out_request_no": refund_id,
                           "query_options": ["gmt_refund_pay"]},
                          "the refund query")
        if resp.get("code") != _SUCCESS:
            if resp.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return None
            raise self._refused("the refund query", resp)
        if resp.get("refund_status") == "REFUND_SUCCESS":
            return ProviderRefund(ref=refund_id, status="succeeded")
        return None

    # -- notifications -----------------------------------------------------------------------------------------
    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent | None:
        """Verifies an asynchronous notification (RSA2 with Alipay's public key, our ``app_id``) and maps it."""
        try:
            pairs = parse_qsl(payload.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidWebhook("the Alipay notification is not a UTF-8 form") from exc
        data = dict(pairs)
        if len(data) != len(pairs):
            raise InvalidWebhook("the Alipay notification repeats a field")
        sign = data.pop("sign", "")
        if not sign or data.get("sign_type") != "RSA2":
            raise InvalidWebhook("the Alipay notification is not signed with RSA2")
        try:
            verified = self.client.verify(dict(data), sign)
        except (*self._errors, ValueError, binascii.Error) as exc:
            raise InvalidWebhook("the Alipay notification signature does not verify") from exc
        if not verified:
            raise InvalidWebhook("the Alipay notification signature does not verify")
        if data.get("app_id") != self.app_id:
            raise InvalidWebhook("the Alipay notification is for another app", details={"app_id": data.get("app_id")})
        notify_id, ref = data.get("notify_id"), data.get("out_trade_no")
        if not notify_id or not ref:
            raise InvalidWebhook("the Alipay notification has no notify_id or out_trade_no")
        try:
            return self._event(data, event_id=f"alipay:{notify_id}", ref=ref)
        except ValueError as exc:
            raise InvalidWebhook(f"the Alipay notification has a malformed amount: {exc}") from exc

    def _event(self, data: Mapping[str, str], *, event_id: str, ref: str) -> PaymentEvent | None:
        status, trade_no = data.get("trade_status"), data.get("trade_no") or None
        refund_id = data.get("out_biz_no") or None
        refunded = fen(data["refund_fee"]) if data.get("refund_fee") else 0
        if refund_id or refunded:
            # partial refund (TRADE_SUCCESS) or full refund (TRADE_CLOSED): a refund either way
            updates = (RefundUpdate(ref=refund_id, refund_id=refund_id, status="succeeded"),) if refund_id else ()
            return PaymentEvent(event_id=event_id, provider=self.name, kind="refund_updated", payment_ref=ref,
                                amount=refunded, currency="CNY", provider_txn=trade_no, refunds=updates)
        if status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            amount = fen(data.get("total_amount"))
            if self.seller_id and data.get("seller_id") != self.seller_id:
                amount = 0  # paid to another merchant: nothing reached us, the shared code sees a mismatch
            return PaymentEvent(event_id=event_id, provider=self.name, kind="payment_succeeded", payment_ref=ref,
                                amount=amount, currency="CNY", provider_txn=trade_no,
                                occurred_at=_time(data.get("gmt_payment")))
        if status == "TRADE_CLOSED":
            return PaymentEvent(event_id=event_id, provider=self.name, kind="payment_closed", payment_ref=ref,
                                provider_txn=trade_no)
        return None  # WAIT_BUYER_PAY (sent only on request) and anything new

    # -- bills -------------------------------------------------------------------------------------------------
    def download_bill(self, day: dt.date) -> bytes:
        """The ``trade`` bill of ``day`` (Beijing): a zip of GBK CSV files, from ``bill_download_url``."""
        resp = self._call("alipay.data.dataservice.bill.downloadurl.query",
                          {"bill_type": "trade", "bill_date": day.isoformat()}, "the bill")
        url = resp.get("bill_download_url")
        if resp.get("code") != _SUCCESS or not url:
            raise self._refused("the bill", resp)
        if not str(url).startswith(("https://", "http://")):
            raise self._error("Alipay's bill URL is not HTTP", definitive=True, resp=resp)
        try:
            with urlopen(url, timeout=self.timeout_s) as r:  # noqa: S310 - scheme checked above
                return r.read()
        except (URLError, OSError) as exc:
            raise self._error(f"the Alipay bill could not be downloaded: {exc}", definitive=False) from exc

    def parse_bill(self, raw: bytes) -> list[BillLine]:
        """The payment (业务类型 交易) and refund (退款) rows of the 业务明细 file (the zip as downloaded, or
        that CSV alone); ValueError naming the line (of that file) when it is malformed."""
        return parse_bill_csv(_detail_file(raw))


_COLUMNS = {"txn": "支付宝交易号", "ref": "商户订单号", "type": "业务类型", "done": "完成时间",
            "total": "订单金额（元）", "received": "商家实收（元）", "refund": "退款批次号/请求号"}


def _detail_file(raw: bytes) -> str:
    if not raw.startswith(b"PK"):
        return raw.decode("gbk")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            for info in z.infolist():
                # Alipay's zip stores GBK names without the UTF-8 flag (zipfile reads them as cp437)
                name = info.filename if info.flag_bits & 0x800 else info.filename.encode("cp437").decode("gbk")
                if name.endswith("业务明细.csv"):
                    return z.read(info).decode("gbk")
    except (zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ValueError(f"not an Alipay bill: {exc}") from exc
    raise ValueError("the Alipay bill has no 业务明细 file")


def parse_bill_csv(text: str) -> list[BillLine]:
    """Rows of an Alipay 业务明细 CSV: ``#`` lines (title, account, period, summaries) are skipped, the first
    other line is the header. Payments carry 订单金额, refunds what the merchant paid back (|商家实收|)."""
    header: dict[str, int] | None = None
    width = 0
    out: list[BillLine] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in next(csv.reader([line]))]
        if header is None:
            names = [c.replace("(", "（").replace(")", "）") for c in cells]
            missing = [c for c in _COLUMNS.values() if c not in names]
            if missing:
                raise ValueError(f"line {n}: the bill's header lacks {', '.join(missing)}")
            header = {key: names.index(col) for key, col in _COLUMNS.items()}
            width = len(cells)
            continue
        if len(cells) != width:
            raise ValueError(f"line {n}: {len(cells)} fields where the header has {width}")
        row = {key: cells[i] for key, i in header.items()}
        kind = {"交易": "payment", "退款": "refund"}.get(row["type"])
        if kind is None:
            continue
        if not row["ref"]:
            raise ValueError(f"line {n}: no 商户订单号")
        try:
            amount = fen(row["total"]) if kind == "payment" else abs(fen(row["received"], negative=True))
            at = _time(row["done"])
            if row["done"] and at is None:
                raise ValueError(f"not a time: {row['done']!r}")
        except ValueError as exc:
            raise ValueError(f"line {n}: {exc}") from exc
        if kind == "refund" and not row["refund"]:
            raise ValueError(f"line {n}: a refund without 退款批次号/请求号")
        out.append(BillLine(line=n, kind=kind, payment_ref=row["ref"], amount=amount, currency="CNY",
                            provider_txn=row["txn"] or None, refund_id=row["refund"] if kind == "refund" else None,
                            at=at))
    if header is None:
        raise ValueError("the bill has no header row")
    return out
