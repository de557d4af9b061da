"""A local HTTP server speaking WeChat Pay API v3 for the endpoints ticketing uses, with WeChat's signatures.

The real ``wechatpayv3`` SDK is pointed at it (``WECHAT_PAY_API_BASE``), so tests exercise the SDK's request
signing, response verification and notification decryption without a network. Like WeChat Pay it:

- checks OUR ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",signature="..",
  timestamp="..",serial_no=".."`` (RSA-SHA256 with the merchant key over ``METHOD\\nPATH?QUERY\\ntimestamp\\n
  nonce\\nbody\\n``, 5-minute window, merchant serial) and answers a bad one with ``401 SIGN_ERROR``;
- signs every answer with the platform key: ``Wechatpay-Signature`` = RSA-SHA256 over
  ``timestamp\\nnonce\\nbody\\n`` with ``Wechatpay-Timestamp/-Nonce/-Serial/-Signature-Type`` headers
  (``Wechatpay-Serial`` = the platform public key id);
- keeps orders (idempotent by ``out_trade_no``: same parameters, same ``prepay_id``; different ones,
  ``400 INVALID_REQUEST``) and refunds (idempotent by ``out_refund_no``; never more than was paid);
- builds notifications (`notify_payment`, `notify_refund`): the resource encrypted with AEAD_AES_256_GCM under
  the APIv3 key, the body signed as above;
- serves the trade bill: ``GET /v3/bill/tradebill`` gives ``download_url`` + SHA1 ``hash_value``, the file
  (gzip) has a header line, backtick-prefixed rows and the summary; `bill_overrides` / `bill_extra_rows` plant
  mismatches.

Endpoints: ``POST /v3/pay/transactions/jsapi``, ``GET /v3/pay/transactions/out-trade-no/{no}?mchid=``,
``POST /v3/pay/transactions/out-trade-no/{no}/close``, ``POST /v3/refund/domestic/refunds``,
``GET /v3/refund/domestic/refunds/{no}``, ``GET /v3/bill/tradebill``, ``GET /v3/billdownload/file``.
Keys are generated at import (RSA 2048), never real ones.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CST = ZoneInfo("Asia/Shanghai")
MCHID = "1900009191"
APPID = "wxd678efh567hg6787"
APIV3_KEY = secrets.token_hex(16)  # 32 ASCII characters, as WeChat's APIv3 keys
MERCHANT_SERIAL = secrets.token_hex(20).upper()
PLATFORM_KEY_ID = "PUB_KEY_ID_" + secrets.token_hex(12).upper()


def _pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _pem_public(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


MERCHANT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PLATFORM_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
#: a key that is not WeChat's (forged notifications)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
MERCHANT_PRIVATE_PEM = _pem_private(MERCHANT_KEY)
MERCHANT_PUBLIC_PEM = _pem_public(MERCHANT_KEY)
PLATFORM_PUBLIC_PEM = _pem_public(PLATFORM_KEY)

BILL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
               "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
               "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
BILL_SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"

_AUTH = re.compile(r'(\w+)="([^"]*)"')


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(public_pem: str, message: str, signature: str) -> bool:
    public = serialization.load_pem_public_key(public_pem.encode())
    try:
        public.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(),  # type: ignore[union-attr]
                      hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_headers(body: str, *, key: rsa.RSAPrivateKey = PLATFORM_KEY, serial: str = PLATFORM_KEY_ID,
                 timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """WeChat's signature headers for a response or notification ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": rsa_sign(key, f"{ts}\n{nonce}\n{body}\n"),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


def encrypt_resource(obj: dict[str, Any], associated_data: str, key: str = APIV3_KEY) -> dict[str, str]:
    nonce = secrets.token_hex(6)  # 12 characters, as WeChat's
    ct = AESGCM(key.encode()).encrypt(nonce.encode(), json.dumps(obj, ensure_ascii=False).encode(),
                                      associated_data.encode())
    return {"original_type": associated_data, "algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ct).decode(),
            "associated_data": associated_data, "nonce": nonce}


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, CST).isoformat(timespec="seconds")


class FakeWeChatPay:
    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.bills: dict[str, bytes] = {}
        #: out_trade_no -> amount (fen) the bill shows instead of the real one (a planted mismatch)
        self.bill_overrides: dict[str, int] = {}
        #: extra rows for the bill (dicts of column -> value, see `bill_row`)
        self.bill_extra_rows: list[dict[str, str]] = []
        #: refund status of new refunds: PROCESSING (WeChat's usual answer) or SUCCESS
        self.refund_status = "PROCESSING"
        #: when set, the next request answers this (status, code, message) instead
        self.fail_next: tuple[int, str, str] | None = None
        self.clock: Callable[[], float] = time.time
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.base = ""

    # -- server ------------------------------------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET", "")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self._handle("POST", self.rfile.read(length).decode())

            def _handle(self, method: str, body: str) -> None:
                problem = fake.check_authorization(method, self.path, body, self.headers.get("Authorization", ""))
                if problem:
                    return self._send(401, {"code": "SIGN_ERROR", "message": problem})
                with fake.lock:
                    fake.requests.append(f"{method} {self.path}")
                    if fake.fail_next is not None:
                        status, code, message = fake.fail_next
                        fake.fail_next = None
                        return self._send(status, {"code": code, "message": message})
                    try:
                        params = json.loads(body) if body else {}
                    except ValueError:
                        return self._send(400, {"code": "PARAM_ERROR", "message": "body is not JSON"})
                    result = fake.handle(method, self.path, params)
                if isinstance(result[1], bytes):
                    return self._send_file(result[1])
                self._send(*result)

            def _send(self, status: int, obj: dict[str, Any] | None) -> None:
                data = json.dumps(obj, ensure_ascii=False) if obj is not None else ""
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                for k, v in sign_headers(data).items():
                    self.send_header(k, v)
                self.send_header("Request-ID", uuid.uuid4().hex)
                self.send_header("Content-Length", str(len(data.encode())))
                self.end_headers()
                self.wfile.write(data.encode())

            def _send_file(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.base

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def check_authorization(self, method: str, path: str, body: str, header: str) -> str | None:
        """Why our request's signature is refused, or None (WeChat's checks)."""
        scheme, _, rest = header.partition(" ")
        if scheme != "WECHATPAY2-SHA256-RSA2048":
            return "Authorization 不合法 (missing or unknown scheme)"
        fields = dict(_AUTH.findall(rest))
        if fields.get("mchid") != MCHID:
            return "商户号不匹配"
        if fields.get("serial_no") != MERCHANT_SERIAL:
            return "证书序列号不匹配"
        try:
            ts = int(fields.get("timestamp", ""))
        except ValueError:
            return "timestamp 不合法"
        if abs(time.time() - ts) > 300:
            return "timestamp 过期"
        message = f"{method}\n{path}\n{ts}\n{fields.get('nonce_str', '')}\n{body}\n"
        if not rsa_verify(MERCHANT_PUBLIC_PEM, message, fields.get("signature", "")):
            return "签名错误"
        return None

    # -- API ---------------------------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, p: dict[str, Any]) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        path, query = url.path, dict(parse_qsl(url.query))
        not_found = (404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
        if method == "POST" and path == "/v3/pay/transactions/jsapi":
            return self._prepay(p)
        m = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)(/close)?", path)
        if m:
            order = self.orders.get(m.group(1))
            if m.group(2) and method == "POST":
                if p.get("mchid") != MCHID:
                    return 400, {"code": "PARAM_ERROR", "message": "mchid 不匹配"}
                if order is None:
                    return not_found
                if order["trade_state"] in ("SUCCESS", "REFUND"):
                    return 400, {"code": "ORDERPAID", "message": "订单已支付"}
                order["trade_state"] = "CLOSED"
                order["trade_state_desc"] = "订单已关闭"
                return 204, None
            if method == "GET" and not m.group(2):
                if query.get("mchid") != MCHID:
                    return 400, {"code": "PARAM_ERROR", "message": "mchid 不匹配"}
                return (200, self.transaction(m.group(1))) if order is not None else not_found
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._refund(p)
        m = re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path)
        if m and method == "GET":
            refund = self.refunds.get(m.group(1))
            if refund is None:
                return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}
            return 200, dict(refund)
        if method == "GET" and path == "/v3/bill/tradebill":
            day = query.get("bill_date", "")
            raw = self.bill(day)
            if raw is None:
                return 400, {"code": "NO_STATEMENT_EXIST", "message": "账单文件不存在"}
            token = secrets.token_urlsafe(12)
            self.bills[token] = raw
            return 200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(raw).hexdigest(),  # noqa: S324
                         "download_url": f"{self.base}/v3/billdownload/file?token={token}"}
        if method == "GET" and path == "/v3/billdownload/file":
            raw = self.bills.get(query.get("token", ""))
            if raw is None:
                return 400, {"code": "INVALID_REQUEST", "message": "token 无效"}
            return 200, gzip.compress(raw)
        return 404, {"code": "NOT_FOUND", "message": f"no such API: {method} {path}"}

    def _prepay(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        required = ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount", "payer")
        missing = [k for k in required if not p.get(k)]
        if missing:
            return 400, {"code": "PARAM_ERROR", "message": f"缺少参数 {', '.join(missing)}"}
        if p["mchid"] != MCHID or p["appid"] != APPID:
            return 400, {"code": "PARAM_ERROR", "message": "appid 和 mch_id 不匹配"}
        if not re.fullmatch(r"[0-9A-Za-z_\-|*]{6,32}", p["out_trade_no"]):
            return 400, {"code": "PARAM_ERROR", "message": "out_trade_no 格式错误"}
        if len(p["description"].encode()) > 127:
            return 400, {"code": "PARAM_ERROR", "message": "description 过长"}
        amount = p["amount"]
        if not isinstance(amount.get("total"), int) or amount["total"] <= 0 or amount.get("currency", "CNY") != "CNY":
            return 400, {"code": "PARAM_ERROR", "message": "amount 不合法"}
        existing = self.orders.get(p["out_trade_no"])
        if existing is not None:
            if existing["params"] != p:
                return 400, {"code": "INVALID_REQUEST", "message": "201 商户订单号重复"}
            if existing["trade_state"] in ("SUCCESS", "REFUND"):
                return 400, {"code": "ORDERPAID", "message": "该订单已支付"}
            return 200, {"prepay_id": existing["prepay_id"]}
        prepay_id = "wx" + dt.datetime.now(CST).strftime("%d%H%M%S") + secrets.token_hex(12)
        self.orders[p["out_trade_no"]] = {"params": p, "prepay_id": prepay_id, "trade_state": "NOTPAY",
                                          "trade_state_desc": "订单未支付", "transaction_id": None,
                                          "success_time": None}
        return 200, {"prepay_id": prepay_id}

    def transaction(self, out_trade_no: str) -> dict[str, Any]:
        """The order as ``GET /v3/pay/transactions/out-trade-no/{no}`` (and the notification) shows it."""
        o = self.orders[out_trade_no]
        p = o["params"]
        out: dict[str, Any] = {"appid": p["appid"], "mchid": p["mchid"], "out_trade_no": out_trade_no,
                               "trade_state": o["trade_state"], "trade_state_desc": o["trade_state_desc"],
                               "payer": p["payer"], "attach": "",
                               "amount": {"total": p["amount"]["total"], "currency": "CNY"}}
        if o["transaction_id"]:
            out.update({"transaction_id": o["transaction_id"], "trade_type": "JSAPI", "bank_type": "OTHERS",
                        "success_time": _rfc3339(o["success_time"])})
            out["amount"].update({"payer_total": p["amount"]["total"], "payer_currency": "CNY"})
        return out

    def _refund(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        orn = p.get("out_refund_no") or ""
        if orn in self.refunds:
            return 200, dict(self.refunds[orn])
        order = self.orders.get(p.get("out_trade_no") or "")
        if order is None and p.get("transaction_id"):
            order = next((o for o in self.orders.values() if o["transaction_id"] == p["transaction_id"]), None)
        if order is None:
            return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"}
        amount = p.get("amount") or {}
        total = order["params"]["amount"]["total"]
        if order["trade_state"] not in ("SUCCESS", "REFUND"):
            return 400, {"code": "INVALID_REQUEST", "message": "订单未支付"}
        if amount.get("total") != total or amount.get("currency", "CNY") != "CNY":
            return 400, {"code": "PARAM_ERROR", "message": "订单金额或币种信息不一致"}
        otn = order["params"]["out_trade_no"]
        done = sum(r["amount"]["refund"] for r in self.refunds.values()
                   if r["out_trade_no"] == otn and r["status"] in ("SUCCESS", "PROCESSING"))
        refund = amount.get("refund")
        if not isinstance(refund, int) or refund <= 0 or done + refund > total:
            return 400, {"code": "INVALID_REQUEST", "message": "申请退款金额超过订单可退金额"}
        now = self.clock()
        self.refunds[orn] = {"refund_id": "50" + secrets.token_hex(14)[:26], "out_refund_no": orn,
                             "transaction_id": order["transaction_id"], "out_trade_no": otn, "channel": "ORIGINAL",
                             "user_received_account": "支付用户零钱", "create_time": _rfc3339(now),
                             "status": self.refund_status, "funds_account": "AVAILABLE",
                             "amount": {"total": total, "refund": refund, "payer_total": total, "payer_refund": refund,
                                        "settlement_refund": refund, "settlement_total": total,
                                        "discount_refund": 0, "currency": "CNY"}}
        if self.refund_status == "SUCCESS":
            self.refunds[orn]["success_time"] = _rfc3339(now)
        order["trade_state"] = "REFUND"
        return 200, dict(self.refunds[orn])

    # -- what happens at WeChat --------------------------------------------------------------------------------
    def pay(self, out_trade_no: str) -> dict[str, Any]:
        """The passenger paid in WeChat: the order succeeds."""
        with self.lock:
            o = self.orders[out_trade_no]
            o["trade_state"] = "SUCCESS"
            o["trade_state_desc"] = "支付成功"
            o["transaction_id"] = o["transaction_id"] or "42000" + secrets.token_hex(12)[:23]
            o["success_time"] = self.clock()
            return self.transaction(out_trade_no)

    def set_state(self, out_trade_no: str, state: str) -> None:
        """Closes (CLOSED, e.g. timed out at WeChat), fails (PAYERROR) or revokes (REVOKED) an order."""
        with self.lock:
            self.orders[out_trade_no]["trade_state"] = state
            self.orders[out_trade_no]["trade_state_desc"] = state

    def settle_refund(self, out_refund_no: str, status: str = "SUCCESS") -> dict[str, Any]:
        with self.lock:
            r = self.refunds[out_refund_no]
            r["status"] = status
            if status == "SUCCESS":
                r["success_time"] = _rfc3339(self.clock())
            return dict(r)

    # -- notifications -----------------------------------------------------------------------------------------
    def notification(self, event_type: str, resource: dict[str, Any], original_type: str, *,
                     notification_id: str | None = None, timestamp: int | None = None,
                     key: rsa.RSAPrivateKey = PLATFORM_KEY, serial: str = PLATFORM_KEY_ID,
                     apiv3_key: str = APIV3_KEY) -> tuple[bytes, dict[str, str]]:
        """A notification as WeChat POSTs it: (body, headers)."""
        summary = {"TRANSACTION.SUCCESS": "支付成功", "REFUND.SUCCESS": "退款成功"}.get(event_type, "通知")
        body = json.dumps({"id": notification_id or str(uuid.uuid4()), "create_time": _rfc3339(self.clock()),
                           "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
                           "resource": encrypt_resource(resource, original_type, apiv3_key)}, ensure_ascii=False)
        headers = {"Content-Type": "application/json", **sign_headers(body, key=key, serial=serial,
                                                                       timestamp=timestamp)}
        return body.encode(), headers

    def notify_payment(self, out_trade_no: str, **kw: Any) -> tuple[bytes, dict[str, str]]:
        """The TRANSACTION.SUCCESS notification of a paid order (pays it first if still open)."""
        if self.orders[out_trade_no]["trade_state"] != "SUCCESS":
            self.pay(out_trade_no)
        return self.notification("TRANSACTION.SUCCESS", self.transaction(out_trade_no), "transaction", **kw)

    def notify_refund(self, out_refund_no: str, status: str = "SUCCESS", **kw: Any) -> tuple[bytes, dict[str, str]]:
        """The REFUND.<status> notification (settles the refund with that status first)."""
        r = self.settle_refund(out_refund_no, status)
        resource = {"mchid": MCHID, "out_trade_no": r["out_trade_no"], "transaction_id": r["transaction_id"],
                    "out_refund_no": out_refund_no, "refund_id": r["refund_id"], "refund_status": status,
                    "success_time": r.get("success_time"), "user_received_account": r["user_received_account"],
                    "amount": {k: r["amount"][k] for k in ("total", "refund", "payer_total", "payer_refund")}}
        return self.notification(f"REFUND.{status}", resource, "refund", **kw)

    # -- bills -------------------------------------------------------------------------------------------------
    @staticmethod
    def bill_row(**values: str) -> dict[str, str]:
        """A bill row: every column empty but those given (by their Chinese names)."""
        row = dict.fromkeys(BILL_HEADER.split(","), "")
        row.update(values)
        return row

    def bill_day(self, out_trade_no: str) -> dt.date:
        """The bill day (Beijing) of an order's payment."""
        return dt.datetime.fromtimestamp(self.orders[out_trade_no]["success_time"], CST).date()

    def bill(self, day: str) -> bytes | None:
        """The trade bill (``ALL``) of ``day`` as WeChat serves it (before gzip), or None if nothing happened."""
        rows = []
        for otn, o in self.orders.items():
            if o["success_time"] is None or _day(o["success_time"]) != day:
                continue
            total = self.bill_overrides.get(otn, o["params"]["amount"]["total"])
            rows.append(self.bill_row(**{
                "交易时间": _bill_time(o["success_time"]), "公众账号ID": APPID, "商户号": MCHID, "特约商户号": "0",
                "微信订单号": o["transaction_id"], "商户订单号": otn, "用户标识": o["params"]["payer"]["openid"],
                "交易类型": "JSAPI", "交易状态": "SUCCESS", "付款银行": "OTHERS", "货币种类": "CNY",
                "应结订单金额": _yuan(total), "代金券金额": "0.00", "微信退款单号": "0", "商户退款单号": "0",
                "退款金额": "0.00", "充值券退款金额": "0.00", "商品名称": o["params"]["description"],
                "手续费": f"{total * 0.006 / 100:.5f}", "费率": "0.60%", "订单金额": _yuan(total),
                "申请退款金额": "0.00"}))
        for r in self.refunds.values():
            if r["status"] != "SUCCESS" or _day_of_rfc3339(r["success_time"]) != day:
                continue
            o = self.orders[r["out_trade_no"]]
            amount = self.bill_overrides.get(r["out_refund_no"], r["amount"]["refund"])
            rows.append(self.bill_row(**{
                "交易时间": r["success_time"][:19].replace("T", " "), "公众账号ID": APPID, "商户号": MCHID,
                "特约商户号": "0", "微信订单号": r["transaction_id"], "商户订单号": r["out_trade_no"],
                "用户标识": o["params"]["payer"]["openid"], "交易类型": "JSAPI", "交易状态": "REFUND",
                "付款银行": "OTHERS", "货币种类": "CNY", "应结订单金额": "0.00", "代金券金额": "0.00",
                "微信退款单号": r["refund_id"], "商户退款单号": r["out_refund_no"], "退款金额": _yuan(amount),
                "充值券退款金额": "0.00", "退款类型": "ORIGINAL", "退款状态": "SUCCESS",
                "商品名称": o["params"]["description"], "手续费": "0.00000", "费率": "0.60%",
                "订单金额": "0.00", "申请退款金额": _yuan(amount)}))
        rows.extend(self.bill_extra_rows)
        if not rows:
            return None
        return render_bill(rows).encode()


def render_bill(rows: list[dict[str, str]]) -> str:
    """The bill file: header, backtick-prefixed rows, then the summary header and line."""
    columns = BILL_HEADER.split(",")
    lines = [BILL_HEADER]
    lines += [",".join("`" + row.get(c, "") for c in columns) for row in rows]

    def total(col: str) -> int:
        return sum(int(round(float(r.get(col) or 0) * 100)) for r in rows)

    fee = sum(float(r.get("手续费") or 0) for r in rows)
    lines.append(BILL_SUMMARY_HEADER)
    lines.append(",".join("`" + v for v in (str(len(rows)), _yuan(total("应结订单金额")), _yuan(total("退款金额")),
                                            "0.00", f"{fee:.5f}", _yuan(total("订单金额")), _yuan(total("申请退款金额")))))
    return "\r\n".join(lines) + "\r\n"


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, CST).date().isoformat()


def _day_of_rfc3339(value: str | None) -> str | None:
    return value[:10] if value else None


def _bill_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M:%S")


def provider_kwargs(base: str) -> dict[str, Any]:
    """`WeChatPayProvider` keyword arguments for this server (the settings the composition passes)."""
    return {"mchid": MCHID, "appid": APPID, "private_key": MERCHANT_PRIVATE_PEM, "cert_serial_no": MERCHANT_SERIAL,
            "apiv3_key": APIV3_KEY, "notify_url": "https://maas.example.com/v1/payments/wechat/notify",
            "platform_public_key": PLATFORM_PUBLIC_PEM, "platform_public_key_id": PLATFORM_KEY_ID, "cert_dir": None,
            "api_base": base}


def settings_overrides(base: str) -> dict[str, Any]:
    """`maas.settings.Settings` fields that configure WeChat Pay against this server."""
    from pydantic import SecretStr

    kw = provider_kwargs(base)
    return {"wechat_pay_mchid": kw["mchid"], "wechat_pay_appid": kw["appid"],
            "wechat_pay_private_key": SecretStr(kw["private_key"]), "wechat_pay_cert_serial_no": kw["cert_serial_no"],
            "wechat_pay_apiv3_key": SecretStr(kw["apiv3_key"]), "wechat_pay_notify_url": kw["notify_url"],
            "wechat_pay_public_key": kw["platform_public_key"], "wechat_pay_public_key_id": kw["platform_public_key_id"],
            "wechat_pay_api_base": base}


def serve() -> Iterator[FakeWeChatPay]:
    """A started `FakeWeChatPay` (``.base`` is its URL), stopped afterwards (the ``wechat_server`` fixture)."""
    fake = FakeWeChatPay()
    fake.start()
    yield fake
    fake.stop()
