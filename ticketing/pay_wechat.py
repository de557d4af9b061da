"""WeChat Pay (API v3) through the ``wechatpayv3`` SDK: JSAPI / mini-program prepay, signed and encrypted
notifications, order query and close, domestic refunds and the daily trade bill (docs/payments-wechat.md).

The SDK signs our requests (``Authorization: WECHATPAY2-SHA256-RSA2048 ...`` with the merchant's API key),
verifies WeChat's answers and notifications (``Wechatpay-Signature`` over ``timestamp\\nnonce\\nbody\\n``
with the platform public key or a platform certificate) and decrypts notification resources with the APIv3
key (AEAD_AES_256_GCM). On top of it this module adds what the SDK leaves to its caller:

- notifications outside a 5-minute window of their ``Wechatpay-Timestamp`` are refused (replays), as are
  those signed under a serial we do not know (checked before the SDK, which would otherwise go and download
  certificates for every forged serial) and those for another merchant or app;
- amounts are fen (CNY only: another currency is refused with `PaymentMethodUnavailable` before any request);
- ``out_trade_no`` is derived from our order id (`out_trade_no`), ``out_refund_no`` is our refund id, so a
  retried prepay or refund is the same one at WeChat (WeChat is idempotent on both);
- event ids are stable per WeChat notification (``wechat:<notification id>``) and per queried state
  (``wechat:query:<transaction_id>:SUCCESS``, ``wechat:query:<out_trade_no>:CLOSED``).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import requests

from ticketing.errors import InvalidWebhook, PaymentMethodUnavailable, PaymentProviderError, ProviderNotAvailable
from ticketing.payments import BillLine, PaymentEvent, ProviderPayment, ProviderRefund, RefundUpdate

#: WeChat Pay's times (``time_expire``, bills) are Beijing time.
WECHAT_TZ = ZoneInfo("Asia/Shanghai")
#: A notification whose ``Wechatpay-Timestamp`` is further than this from our clock is refused (replay).
NOTIFY_WINDOW_S = 300
#: Certificate mode: an unknown serial lets the SDK download WeChat's certificates at most this often.
CERT_REFRESH_S = 600
#: The SDK's signature algorithm, the only one WeChat Pay v3 uses with RSA keys.
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"

_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
#: trade_state -> our event kind; NOTPAY / USERPAYING (and ACCEPT) mean the passenger may still pay
_TRADE_KINDS = {"SUCCESS": "payment_succeeded", "REFUND": "payment_succeeded", "CLOSED": "payment_closed",
                "REVOKED": "payment_closed", "PAYERROR": "payment_closed"}
#: refund status -> ours
_REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "pending", "CLOSED": "failed", "ABNORMAL": "failed"}
#: error codes after which a retry may succeed (the request may even have been applied)
_TRANSIENT_CODES = {"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "FREQUENCY_LIMIT_EXCEED", "BANKERROR"}

#: columns of the trade bill (``bill_type=ALL``) that we read
BILL_COLUMNS = ("交易时间", "微信订单号", "商户订单号", "交易状态", "货币种类", "应结订单金额", "微信退款单号",
                "商户退款单号", "退款金额", "订单金额", "申请退款金额")
BILL_SUMMARY_HEADER = "总交易单数"


def out_trade_no(order_id: str) -> str:
    """Our ``out_trade_no`` for an order: the order id itself when it fits WeChat's rule (6 to 32 characters
    of ``[0-9A-Za-z_-|*]``; ours, ``ord_`` + 24 hex, do), else ``wx`` + the first 30 hex digits of the id's
    SHA-256. Deterministic, so a retried order creation asks WeChat for the same order."""
    if _OUT_TRADE_NO.fullmatch(order_id):
        return order_id
    return "wx" + hashlib.sha256(order_id.encode()).hexdigest()[:30]


def out_refund_no(refund_id: str) -> str:
    """Our ``out_refund_no`` for a refund: the refund id when it fits (1 to 64 of ``[0-9A-Za-z_-|*@]``),
    else ``wxr`` + 40 hex digits of its SHA-256."""
    if _OUT_REFUND_NO.fullmatch(refund_id):
        return refund_id
    return "wxr" + hashlib.sha256(refund_id.encode()).hexdigest()[:40]


def _error(message: str, *, definitive: bool, code: str | None = None) -> PaymentProviderError:
    err = PaymentProviderError(message, details={"provider": "wechat", **({"wechat_code": code} if code else {})})
    err.definitive = definitive  # type: ignore[attr-defined]
    return err


def _require_cny(currency: str) -> None:
    if currency.upper() != "CNY":
        # the same answer as Alipay's: the passenger picks another rail (422), nothing was asked of WeChat
        raise PaymentMethodUnavailable(f"WeChat Pay takes payments in CNY only, not {currency}",
                                       details={"payment_method": "wechat", "currency": currency})


class WeChatPayProvider:
    """WeChat Pay API v3 for a direct merchant (``mchid``) and one mini-program / official account (``appid``).

    ``private_key``: the merchant API private key (PEM) whose certificate serial is ``cert_serial_no``;
    ``apiv3_key``: the 32-byte APIv3 key; platform verification with ``platform_public_key`` (PEM) and its
    ``platform_public_key_id`` (WeChat's current mode), else with platform certificates kept in ``cert_dir``
    (downloaded by the SDK from WeChat when none there is valid). ``api_base`` points the SDK at another
    server (tests); it needs the public key mode. ``clock`` (seconds since the epoch) is for the notification
    window and ``wx.requestPayment``'s ``timeStamp``; it is real time, as WeChat's.
    """

    name = "wechat"

    def __init__(self, *, mchid: str, appid: str, private_key: str, cert_serial_no: str, apiv3_key: str,
                 notify_url: str, platform_public_key: str | None = None, platform_public_key_id: str | None = None,
                 cert_dir: str | None = None, api_base: str | None = None,
                 clock: Callable[[], float] | None = None, timeout: tuple[float, float] = (5.0, 20.0)) -> None:
        missing = [n for n, v in (("WECHAT_PAY_MCHID", mchid), ("WECHAT_PAY_APPID", appid),
                                  ("WECHAT_PAY_PRIVATE_KEY", private_key),
                                  ("WECHAT_PAY_CERT_SERIAL_NO", cert_serial_no),
                                  ("WECHAT_PAY_APIV3_KEY", apiv3_key), ("WECHAT_PAY_NOTIFY_URL", notify_url)) if not v]
        if missing:
            raise ProviderNotAvailable(f"WeChat Pay is not configured: missing {', '.join(missing)}")
        if len(apiv3_key.encode()) != 32:
            raise ProviderNotAvailable("WECHAT_PAY_APIV3_KEY must be the 32-byte APIv3 key")
        if bool(platform_public_key) != bool(platform_public_key_id):
            raise ProviderNotAvailable("WECHAT_PAY_PUBLIC_KEY and WECHAT_PAY_PUBLIC_KEY_ID go together")
        if not platform_public_key and not cert_dir:
            raise ProviderNotAvailable("WeChat Pay needs the platform public key (WECHAT_PAY_PUBLIC_KEY and _ID) "
                                       "or a platform certificate directory (WECHAT_PAY_CERT_DIR)")
        if api_base and not platform_public_key:
            raise ProviderNotAvailable("WECHAT_PAY_API_BASE needs the platform public key mode")
        self.mchid = mchid
        self.appid = appid
        self.platform_public_key_id = platform_public_key_id
        self._clock = clock or time.time
        self._args = {"mchid": mchid, "appid": appid, "private_key": private_key, "cert_serial_no": cert_serial_no,
                      "apiv3_key": apiv3_key, "notify_url": notify_url, "cert_dir": cert_dir,
                      "public_key": platform_public_key or None, "public_key_id": platform_public_key_id or None,
                      "timeout": timeout}
        self._api_base = api_base.rstrip("/") if api_base else None
        self._client: Any = None
        self._last_cert_refresh: float | None = None
        self._lock = threading.Lock()
        if platform_public_key:
            self._wx  # noqa: B018 -- loads the keys now: a bad key fails at start, not at the first payment

    @property
    def _wx(self) -> Any:
        """The SDK client; in certificate mode made at first use (the SDK may download certificates)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from wechatpayv3 import WeChatPay, WeChatPayType

                    try:
                        client = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, **self._args)
                    except requests.RequestException as exc:
                        raise ProviderNotAvailable("WeChat Pay platform certificates could not be downloaded") from exc
                    except Exception as exc:  # the SDK raises bare Exception for keys it cannot load
                        raise ProviderNotAvailable(f"WeChat Pay keys do not load: {exc}") from exc
                    if self._api_base:
                        client._core._gate_way = self._api_base  # the SDK's gateway (no public setter)
                    self._client = client
        return self._client

    # -- requests ----------------------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[..., tuple[int, Any]], *args: Any,
              ok: tuple[int, ...] = (200,), **kwargs: Any) -> tuple[int, Any]:
        """One SDK request: (status, parsed JSON or raw bytes). Refusals raise `PaymentProviderError`,
        ``definitive`` unless a retry may succeed (5xx, rate limits, no answer, an answer that does not verify)."""
        try:
            status, body = fn(*args, **kwargs)
        except requests.RequestException as exc:
            raise _error(f"WeChat Pay could not be reached ({what})", definitive=False) from exc
        except Exception as exc:
            if "verify the signature" not in str(exc):
                raise
            raise _error(f"WeChat Pay's answer to {what} does not verify", definitive=False) from exc
        data: Any = body
        if isinstance(body, str):
            try:
                data = json.loads(body) if body else {}
            except ValueError:
                data = {}
        if status in ok:
            return status, data
        code = data.get("code") if isinstance(data, dict) else None
        message = data.get("message") if isinstance(data, dict) else None
        definitive = 400 <= status < 500 and status != 429 and code not in _TRANSIENT_CODES
        raise _error(f"WeChat Pay refused {what}: {code or status} {message or ''}".rstrip(), definitive=definitive,
                     code=code)

    # -- payments ----------------------------------------------------------------------------------------------
    def create_payment(self, *, order_id: str, amount: int, currency: str, payer: str | None = None,
                       description: str = "", expires_at: dt.datetime | None = None) -> ProviderPayment:
        """A JSAPI / mini-program prepay for ``payer`` (the passenger's ``openid`` under our appid) and the
        signed arguments of ``wx.requestPayment``. Idempotent: WeChat gives the same ``prepay_id`` for the
        same ``out_trade_no`` and parameters."""
        _require_cny(currency)
        if amount <= 0:
            raise _error("a WeChat Pay order needs a positive amount (fen)", definitive=True)
        if not payer:
            raise _error("WeChat Pay JSAPI needs the payer's openid (payer_id)", definitive=True)
        ref = out_trade_no(order_id)
        kwargs: dict[str, Any] = {}
        if expires_at is not None:
            kwargs["time_expire"] = expires_at.astimezone(WECHAT_TZ).isoformat(timespec="seconds")
        _status, data = self._call("the prepay", self._wx.pay, description=_description(description),
                                   out_trade_no=ref, amount={"total": amount, "currency": "CNY"},
                                   payer={"openid": payer}, **kwargs)
        prepay_id = data.get("prepay_id") if isinstance(data, dict) else None
        if not prepay_id:
            raise _error("WeChat Pay's prepay answer has no prepay_id", definitive=False)
        return ProviderPayment(ref=ref, status="pending", client_params=self.request_payment_params(prepay_id))

    def request_payment_params(self, prepay_id: str) -> dict[str, str]:
        """``wx.requestPayment`` / ``WeixinJSBridge getBrandWCPayRequest`` arguments: ``paySign`` is
        RSA-SHA256 (merchant key) over ``appId\\ntimeStamp\\nnonceStr\\npackage\\n`` (the SDK's ``sign``)."""
        ts = str(int(self._clock()))
        nonce = secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        return {"appId": self.appid, "timeStamp": ts, "nonceStr": nonce, "package": package, "signType": "RSA",
                "paySign": self._wx.sign([self.appid, ts, nonce, package])}

    def _order(self, payment_ref: str) -> dict[str, Any] | None:
        status, data = self._call("the order query", self._wx.query, out_trade_no=payment_ref, ok=(200, 404))
        return data if status == 200 else None

    def query_payment(self, payment_ref: str) -> PaymentEvent | None:
        """The order's ``trade_state``: SUCCESS (and REFUND: it was paid) -> payment_succeeded;
        CLOSED / REVOKED / PAYERROR -> payment_closed; NOTPAY / USERPAYING, or an order WeChat does not
        know (no prepay made) -> None."""
        data = self._order(payment_ref)
        if data is None:
            return None
        return self._trade_event(data, event_id=None)

    def _trade_event(self, data: Mapping[str, Any], *, event_id: str | None) -> PaymentEvent | None:
        state = str(data.get("trade_state") or "")
        kind = _TRADE_KINDS.get(state)
        if kind is None:
            return None
        txn = data.get("transaction_id") or None
        ref = str(data.get("out_trade_no") or "")
        amount = data.get("amount") or {}
        if kind == "payment_succeeded" and not (isinstance(amount.get("total"), int) and amount.get("currency")):
            # never ticket without the amount check upstream
            raise _error("WeChat Pay reports a payment without its amount", definitive=False)
        if event_id is None:
            event_id = (f"wechat:query:{txn}:SUCCESS" if kind == "payment_succeeded"
                        else f"wechat:query:{ref}:{state}")
        return PaymentEvent(event_id=event_id, provider=self.name, kind=kind, payment_ref=ref,
                            amount=amount.get("total") if kind == "payment_succeeded" else None,
                            currency=amount.get("currency") if kind == "payment_succeeded" else None,
                            provider_txn=txn, occurred_at=_success_time(data.get("success_time")))

    def close_payment(self, payment_ref: str) -> None:
        """Closes the order at WeChat (idempotent there). A paid order is left as it is: its success
        notification (or query) will come, and a late payment is refunded by `apply_payment_event`."""
        try:
            self._call("the close", self._wx.close, out_trade_no=payment_ref, ok=(200, 204))
        except PaymentProviderError as exc:
            if exc.details.get("wechat_code") in ("ORDERPAID", "ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS"):
                return
            raise

    # -- refunds -----------------------------------------------------------------------------------------------
    def refund(self, *, payment_ref: str, amount: int, refund_id: str, total: int | None = None) -> ProviderRefund:
        """A domestic refund of ``amount`` fen with our refund id as ``out_refund_no`` (WeChat answers a repeated
        ``out_refund_no`` with the same refund). ``total``: what was paid; asked from WeChat when None."""
        if amount <= 0:
            raise _error("a WeChat Pay refund needs a positive amount (fen)", definitive=True)
        if total is None:
            order = self._order(payment_ref)
            if order is None:
                raise _error(f"WeChat Pay does not know the order {payment_ref}", definitive=True)
            total = int((order.get("amount") or {}).get("total") or 0)
        _status, data = self._call("the refund", self._wx.refund, out_refund_no=out_refund_no(refund_id),
                                   out_trade_no=payment_ref,
                                   amount={"refund": amount, "total": total, "currency": "CNY"})
        return _provider_refund(data)

    def find_refund(self, *, payment_ref: str, refund_id: str) -> ProviderRefund | None:
        """The refund WeChat made for our refund id (query by ``out_refund_no``), or None if it made none."""
        status, data = self._call("the refund query", self._wx.query_refund, out_refund_no=out_refund_no(refund_id),
                                  ok=(200, 404))
        return _provider_refund(data) if status == 200 else None

    # -- notifications -----------------------------------------------------------------------------------------
    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent | None:
        """Verifies a notification (window, serial, RSA signature), decrypts its resource (APIv3 key) and maps
        TRANSACTION.SUCCESS and REFUND.SUCCESS / ABNORMAL / CLOSED; None for other event types."""
        h = {k.lower(): v for k, v in headers.items()}
        names = ("wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature", "wechatpay-serial")
        if not all(h.get(n) for n in names):
            raise InvalidWebhook("the notification is not signed (Wechatpay-* headers missing)")
        try:
            ts = int(h["wechatpay-timestamp"])
        except ValueError:
            raise InvalidWebhook("the notification's Wechatpay-Timestamp is not a number") from None
        if abs(self._clock() - ts) > NOTIFY_WINDOW_S:
            raise InvalidWebhook("the notification's Wechatpay-Timestamp is outside the 5-minute window")
        if h.get("wechatpay-signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            raise InvalidWebhook("the notification's signature type is not " + SIGNATURE_TYPE)
        serial = h["wechatpay-serial"]
        if serial != self.platform_public_key_id and not self._knows_certificate(serial):
            raise InvalidWebhook("the notification is signed under a serial we do not know")
        sdk_headers = {"Wechatpay-Timestamp": h["wechatpay-timestamp"], "Wechatpay-Nonce": h["wechatpay-nonce"],
                       "Wechatpay-Signature": h["wechatpay-signature"], "Wechatpay-Serial": serial,
                       "Wechatpay-Signature-Type": SIGNATURE_TYPE}
        try:
            body = payload.decode("utf-8")
            data = self._wx.callback(sdk_headers, body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidWebhook("the notification is not UTF-8 JSON") from exc
        except Exception as exc:  # the SDK raises bare Exception for an unsupported algorithm
            raise InvalidWebhook(f"the notification does not verify: {exc}") from exc
        if not data:
            raise InvalidWebhook("the notification's signature or encrypted resource does not verify")
        resource = data.get("resource")
        notification_id = data.get("id")
        if not isinstance(resource, dict) or not notification_id:
            raise InvalidWebhook("the notification has no id or resource")
        if resource.get("mchid") != self.mchid:
            raise InvalidWebhook("the notification is for another merchant")
        event_type = str(data.get("event_type") or "")
        event_id = f"wechat:{notification_id}"
        if event_type.startswith("TRANSACTION."):
            if resource.get("appid") != self.appid:
                raise InvalidWebhook("the notification is for another app")
            return self._trade_event(resource, event_id=event_id)
        if event_type.startswith("REFUND."):
            amount = resource.get("amount") or {}
            update = RefundUpdate(ref=str(resource.get("refund_id") or ""),
                                  refund_id=resource.get("out_refund_no") or None,
                                  status=_REFUND_STATES.get(str(resource.get("refund_status")), "pending"))
            return PaymentEvent(event_id=event_id, provider=self.name, kind="refund_updated",
                                payment_ref=str(resource.get("out_trade_no") or ""), amount=amount.get("refund"),
                                currency="CNY", provider_txn=resource.get("transaction_id") or None,
                                refunds=(update,))
        return None

    def _knows_certificate(self, serial: str) -> bool:
        """Certificate mode: the serial is one of the platform certificates the SDK holds (hex serial), or
        an unknown one while a download of WeChat's certificates is allowed (a rotation: the SDK downloads
        them when it meets a serial it does not hold; at most once per `CERT_REFRESH_S`, so forged serials
        cannot make us call WeChat at their pace)."""
        if self._args["cert_dir"] is None:
            return False
        try:
            number = int(serial, 16)
        except ValueError:
            return False
        if any(c.serial_number == number for c in self._wx._core._certificates):
            return True
        with self._lock:
            now = self._clock()
            if self._last_cert_refresh is not None and now - self._last_cert_refresh < CERT_REFRESH_S:
                return False
            self._last_cert_refresh = now
        return True

    # -- bills -------------------------------------------------------------------------------------------------
    def download_bill(self, day: dt.date) -> bytes:
        """The trade bill (``bill_type=ALL``, gzip) of ``day`` (Beijing time), unpacked and checked against the
        SHA1 ``hash_value`` WeChat gives with the ``download_url``; empty when WeChat has no bill for the day."""
        status, meta = self._call("the trade bill", self._wx.trade_bill, bill_date=day.isoformat(), bill_type="ALL",
                                  tar_type="GZIP", ok=(200, 400))
        if status == 400:
            if meta.get("code") == "NO_STATEMENT_EXIST":
                return b""
            raise _error(f"WeChat Pay refused the trade bill: {meta.get('code')} {meta.get('message') or ''}",
                         definitive=meta.get("code") != "STATEMENT_CREATING", code=meta.get("code"))
        url = meta.get("download_url")
        if not url:
            raise _error("WeChat Pay's trade bill answer has no download_url", definitive=False)
        _status, packed = self._call("the bill download", self._wx.download_bill, url)
        if not isinstance(packed, bytes):
            raise _error("WeChat Pay's bill download is not a file", definitive=False)
        try:
            raw = gzip.decompress(packed)
        except (OSError, EOFError) as exc:
            raise _error("WeChat Pay's bill file is not gzip", definitive=False) from exc
        expected = str(meta.get("hash_value") or "").lower()
        if hashlib.sha1(raw).hexdigest() != expected:  # noqa: S324 -- WeChat's own integrity hash
            raise _error("WeChat Pay's bill file does not match its SHA1 hash_value", definitive=False)
        return raw

    def parse_bill(self, raw: bytes) -> list[BillLine]:
        return parse_trade_bill(raw)


def parse_trade_bill(raw: bytes) -> list[BillLine]:
    """The payment (``SUCCESS``) and refund (``REFUND``) rows of a WeChat Pay trade bill.

    The file (UTF-8): a header line of column names, one line per trade with every field prefixed by a
    backtick (`` `2026-01-05 10:00:00,`wx...,`1900000109,...``; fields are split on ``,```), then the
    summary's header (``总交易单数,...``) and its line, whose count must match the rows. Amounts are yuan with
    two decimals. A gzip file (as downloaded) is unpacked first. Raises ValueError naming the line of a
    malformed file.
    """
    if raw[:2] == b"\x1f\x8b":  # the file as downloaded with tar_type=GZIP
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError("line 1: a damaged gzip file") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError("line 1: the bill is not UTF-8") from exc
    lines = text.splitlines()
    if not lines or not text.strip():
        return []
    header = [c.strip().lstrip("`") for c in lines[0].split(",")]
    missing = [c for c in BILL_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"line 1: not a WeChat Pay trade bill header (missing {', '.join(missing)})")
    col = {name: header.index(name) for name in BILL_COLUMNS}
    out: list[BillLine] = []
    rows = 0
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if line.startswith(BILL_SUMMARY_HEADER):
            _check_summary(lines, n, rows)
            return out
        fields = _bill_fields(line, n)
        if len(fields) != len(header):
            raise ValueError(f"line {n}: {len(fields)} fields where the header has {len(header)}")
        rows += 1
        state = fields[col["交易状态"]]
        if state not in ("SUCCESS", "REFUND"):
            continue  # REVOKED and the like: no money moved
        try:
            at = dt.datetime.strptime(fields[col["交易时间"]], "%Y-%m-%d %H:%M:%S").replace(tzinfo=WECHAT_TZ)
        except ValueError:
            raise ValueError(f"line {n}: bad trade time {fields[col['交易时间']]!r}") from None
        amounts = {c: _fen(fields[col[c]], n) if fields[col[c]] else 0
                   for c in ("应结订单金额", "订单金额", "退款金额", "申请退款金额")}
        common = {"line": n, "payment_ref": fields[col["商户订单号"]], "currency": fields[col["货币种类"]] or "CNY",
                  "provider_txn": fields[col["微信订单号"]] or None, "at": at}
        if not common["payment_ref"]:
            raise ValueError(f"line {n}: no out_trade_no (商户订单号)")
        if state == "SUCCESS":
            amount = amounts["订单金额"] or amounts["应结订单金额"]
            out.append(BillLine(kind="payment", amount=amount, **common))
        else:
            refund_id = fields[col["商户退款单号"]]
            if not refund_id:
                raise ValueError(f"line {n}: a refund row without out_refund_no (商户退款单号)")
            amount = amounts["申请退款金额"] or amounts["退款金额"]
            out.append(BillLine(kind="refund", amount=amount, refund_id=refund_id, **common))
    raise ValueError(f"line {len(lines) + 1}: the bill ends without its summary ({BILL_SUMMARY_HEADER})")


def _bill_fields(line: str, n: int) -> list[str]:
    if not line.startswith("`"):
        raise ValueError(f"line {n}: a bill row's fields start with a backtick")
    return [f.strip() for f in line[1:].split(",`")]


def _check_summary(lines: list[str], n: int, rows: int) -> None:
    if n >= len(lines):
        raise ValueError(f"line {n + 1}: the summary header has no summary line")
    fields = _bill_fields(lines[n], n + 1)
    if not fields[0].isdigit() or int(fields[0]) != rows:
        raise ValueError(f"line {n + 1}: the summary counts {fields[0]!r} trades, the bill has {rows}")


def _fen(text: str, n: int) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"line {n}: bad amount {text!r}") from None
    fen = value * 100
    if not value.is_finite() or fen != fen.to_integral_value() or value < 0:
        raise ValueError(f"line {n}: bad amount {text!r}")
    return int(fen)


def _description(text: str) -> str:
    """WeChat's ``description``: required, at most 127 bytes of UTF-8."""
    text = text.strip() or "Transit ticket"
    data = text.encode("utf-8")[:127]
    return data.decode("utf-8", errors="ignore")


def _provider_refund(data: Any) -> ProviderRefund:
    if not isinstance(data, dict) or not data.get("refund_id"):
        raise _error("WeChat Pay's refund answer has no refund_id", definitive=False)
    return ProviderRefund(ref=str(data["refund_id"]), status=_REFUND_STATES.get(str(data.get("status")), "pending"))


def _success_time(value: Any) -> dt.datetime | None:
    """WeChat's ``success_time`` (RFC 3339, e.g. ``2026-12-03T10:15:00+08:00``): when the money was taken,
    the time the trade bill files the payment under. None when absent or not a zoned time."""
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None
