"""A local gateway speaking Alipay's open API (RSA2) for the methods ticketing uses, and Alipay's notifications.

The real ``python-alipay-sdk`` is pointed at it (``ALIPAY_GATEWAY``). It works like the real gateway:

- requests are the SDK's signed query strings (GET, or a form POST) on ``/gateway.do``; our RSA2 signature
  (every parameter but ``sign``, sorted, ``k=v`` joined by ``&``, SHA256withRSA) is checked with the app's
  public key; unsigned or forged requests get Alipay's ``isv.invalid-signature`` error, unknown apps
  ``isv.invalid-app-id``;
- answers are ``{"<method>_response": {...}, "sign": "..."}`` with ``sign`` the platform key's RSA2 signature
  of the response object's JSON text exactly as it appears in the body;
- trades are kept by ``out_trade_no`` (a repeated ``alipay.trade.create`` with the same content finds the same
  trade), refunds by ``out_request_no`` (a repeat never pays twice; more than was paid is refused, and a full
  refund closes the trade), H5 trades exist once the buyer opens the signed ``alipay.trade.wap.pay`` URL;
- `notification` builds the signed form body Alipay POSTs to ``notify_url`` (``trade_status_sync``);
- ``alipay.data.dataservice.bill.downloadurl.query`` answers a URL on this server serving the day's ``trade``
  bill: a zip (GBK file names) of GBK CSV files, 业务明细 and 业务明细(汇总), in Alipay's layout; ``plant``
  changes what the bill says about a trade (a mismatch for the reconciliation to find).

Keys (RSA 2048) are made at import: the app's (ours), Alipay's (the platform's) and a forger's.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import secrets
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ticketing.pay_alipay import BEIJING, fen, yuan

APP_ID = "2021000123456789"
SELLER_ID = "2088000000000001"
BUYER_ID = "2088102177776666"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#1 PEM, the "RSA PRIVATE KEY" form Alipay's key tool writes."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                                         ).decode()


APP_KEY, ALIPAY_KEY, FORGER_KEY = _key(), _key(), _key()


def rsa2_sign(key: rsa.RSAPrivateKey, text: str) -> str:
    return base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa2_verify(key: rsa.RSAPrivateKey, text: str, sign: str) -> bool:
    try:
        key.public_key().verify(base64.b64decode(sign, validate=True), text.encode(), padding.PKCS1v15(),
                                hashes.SHA256())
    except Exception:  # noqa: BLE001 - any failure is a bad signature
        return False
    return True


def signing_string(params: dict[str, str], *, exclude: tuple[str, ...]) -> str:
    """Alipay's content to sign: non-empty parameters but ``exclude``, sorted by name, ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in exclude and v != "")


def _error(code: str, msg: str, sub_code: str, sub_msg: str) -> dict[str, str]:
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def _business(sub_code: str, sub_msg: str) -> dict[str, str]:
    return _error("40004", "Business Failed", sub_code, sub_msg)


class FakeAlipay:
    def __init__(self) -> None:
        self.trades: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []  # method names, in order
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.base = ""
        #: Alipay's clock (tests set it to the app's); bills are by Beijing day
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        #: out_trade_no -> amount in fen the bill shows instead of the truth (a planted mismatch)
        self.plant: dict[str, int] = {}
        #: extra 业务明细 rows (already formatted cells), e.g. a payment we never took
        self.extra_rows: list[list[str]] = []
        #: the next gateway answers fail with HTTP 500 (a fault to inject)
        self.fail_next = 0
        #: the key answers are signed with (a forger's key to test that we check them)
        self.sign_key = ALIPAY_KEY
        #: the body of the next answer instead of the real one (a middlebox or a broken gateway)
        self.raw_answer: str | None = None

    # -- configuration for our provider ------------------------------------------------------------------
    def provider_kwargs(self) -> dict[str, Any]:
        return {"app_id": APP_ID, "app_private_key": private_pem(APP_KEY), "alipay_public_key": public_pem(ALIPAY_KEY),
                "notify_url": "https://maas.example/v1/payments/alipay/notify", "gateway": f"{self.base}/gateway.do"}

    # -- server ------------------------------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                path, _, query = self.path.partition("?")
                if path == "/gateway.do":
                    return self._gateway(query)
                if path == "/downloadBillFile.resource":
                    params = dict(parse_qsl(query))
                    raw = fake.bill_files.get(params.get("token", ""))
                    if raw is None:
                        return self._send(404, b"not found", "text/plain")
                    return self._send(200, raw, "application/octet-stream")
                return self._send(404, b"not found", "text/plain")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                query = self.path.partition("?")[2]
                return self._gateway("&".join(q for q in (query, body) if q))

            def _gateway(self, query: str) -> None:
                if fake.fail_next:
                    fake.fail_next -= 1
                    return self._send(500, b"<html>busy</html>", "text/html")
                if fake.raw_answer is not None:
                    raw, fake.raw_answer = fake.raw_answer, None
                    return self._send(200, raw.encode(), "text/html;charset=utf-8")
                self._send(200, fake.answer(dict(parse_qsl(query, keep_blank_values=True))).encode(),
                           "text/html;charset=utf-8")

            def _send(self, status: int, data: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.bill_files: dict[str, bytes] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.base

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # -- the gateway -------------------------------------------------------------------------------------
    def answer(self, params: dict[str, str]) -> str:
        """The body Alipay answers to one request: signed, except for signature errors (as Alipay does)."""
        method = params.get("method", "")
        key = method.replace(".", "_") + "_response" if method else "error_response"
        with self.lock:
            self.requests.append(method)
            if params.get("app_id") != APP_ID:
                return json.dumps({key: _error("40002", "Invalid Arguments", "isv.invalid-app-id", "无效的AppID参数")},
                                  ensure_ascii=False)
            if params.get("sign_type") != "RSA2" or not rsa2_verify(
                    APP_KEY, signing_string(params, exclude=("sign",)), params.get("sign", "")):
                return json.dumps({key: _error("40002", "Invalid Arguments", "isv.invalid-signature",
                                               "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配")},
                                  ensure_ascii=False)
            try:
                biz = json.loads(params.get("biz_content") or "{}")
            except ValueError:
                biz = None
            handler = getattr(self, "_" + method.replace(".", "_"), None) if method else None
            if handler is None or not isinstance(biz, dict):
                obj = _error("40002", "Invalid Arguments", "isv.invalid-method" if handler is None
                             else "isv.invalid-parameter", "参数无效")
            else:
                obj = handler(biz, params)
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        return '{"%s":%s,"sign":"%s"}' % (key, text, rsa2_sign(self.sign_key, text))

    def _open(self, biz: dict[str, Any], params: dict[str, str], product: str) -> dict[str, Any]:
        ref, total = str(biz.get("out_trade_no") or ""), str(biz.get("total_amount") or "")
        try:
            cents = fen(total)
        except ValueError:
            cents = 0
        if not ref or not biz.get("subject") or cents <= 0:
            return _business("ACQ.INVALID_PARAMETER", "参数无效")
        trade = self.trades.get(ref)
        if trade is not None:
            if trade["status"] in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                return _business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if trade["status"] == "TRADE_CLOSED":
                return _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if trade["total_amount"] != total:
                return _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return {"code": "10000", "msg": "Success", "out_trade_no": ref, "trade_no": trade["trade_no"]}
        trade = {"out_trade_no": ref, "trade_no": self.now().astimezone(BEIJING).strftime("%Y%m%d")
                 + "22001" + secrets.token_hex(7)[:14].upper(), "total_amount": total, "fen": cents,
                 "subject": biz["subject"], "status": "WAIT_BUYER_PAY", "product_code": product,
                 "buyer_id": biz.get("buyer_id") or biz.get("buyer_open_id") or "",
                 "notify_url": params.get("notify_url", ""), "time_expire": biz.get("time_expire"),
                 "created": self.now(), "paid": None, "closed": None, "refunds": {}}
        self.trades[ref] = trade
        return {"code": "10000", "msg": "Success", "out_trade_no": ref, "trade_no": trade["trade_no"]}

    def _alipay_trade_create(self, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        if not (biz.get("buyer_id") or biz.get("buyer_open_id")):
            return _business("ACQ.INVALID_PARAMETER", "buyer_id 与 buyer_open_id 不能同时为空")
        return self._open(biz, params, "JSAPI_PAY")

    def _find(self, biz: dict[str, Any]) -> dict[str, Any] | None:
        ref = biz.get("out_trade_no")
        if ref:
            return self.trades.get(ref)
        return next((t for t in self.trades.values() if t["trade_no"] == biz.get("trade_no")), None)

    def _alipay_trade_query(self, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        t = self._find(biz)
        if t is None:
            return _business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        out = {"code": "10000", "msg": "Success", "trade_no": t["trade_no"], "out_trade_no": t["out_trade_no"],
               "trade_status": t["status"], "total_amount": t["total_amount"], "buyer_user_id": t["buyer_id"]}
        if t["paid"] is not None:
            out.update(send_pay_date=_fmt(t["paid"]), receipt_amount=t["total_amount"],
                       buyer_pay_amount=t["total_amount"])
        return out

    def _alipay_trade_close(self, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        t = self._find(biz)
        if t is None:
            return _business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        if t["status"] != "WAIT_BUYER_PAY":
            return _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        t["status"], t["closed"] = "TRADE_CLOSED", self.now()
        return {"code": "10000", "msg": "Success", "trade_no": t["trade_no"], "out_trade_no": t["out_trade_no"]}

    def _alipay_trade_refund(self, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        t = self._find(biz)
        if t is None:
            return _business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        request_no = str(biz.get("out_request_no") or t["out_trade_no"])
        try:
            amount = fen(str(biz.get("refund_amount")))
        except ValueError:
            return _business("ACQ.INVALID_PARAMETER", "参数无效")
        done = t["refunds"].get(request_no)
        ok = {"code": "10000", "msg": "Success", "trade_no": t["trade_no"], "out_trade_no": t["out_trade_no"],
              "buyer_user_id": t["buyer_id"]}
        if done is not None:  # the same out_request_no: answered again, nothing paid
            if done["fen"] != amount:
                return _business("ACQ.DISCORDANT_REPEAT_REQUEST", "比对失败，请检查请求参数")
            return {**ok, "fund_change": "N", "refund_fee": yuan(self.refunded(t))}
        if t["paid"] is None:
            return _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if amount <= 0 or self.refunded(t) + amount > t["fen"]:
            return _business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        t["refunds"][request_no] = {"fen": amount, "at": self.now()}
        if self.refunded(t) == t["fen"]:
            t["status"], t["closed"] = "TRADE_CLOSED", self.now()
        return {**ok, "fund_change": "Y", "refund_fee": yuan(self.refunded(t)), "gmt_refund_pay": _fmt(self.now())}

    def _alipay_trade_fastpay_refund_query(self, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        t = self._find(biz)
        if t is None:
            return _business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        r = t["refunds"].get(biz.get("out_request_no"))
        if r is None:  # Alipay answers success with no refund fields: not received or failed
            return {"code": "10000", "msg": "Success"}
        return {"code": "10000", "msg": "Success", "trade_no": t["trade_no"], "out_trade_no": t["out_trade_no"],
                "out_request_no": biz["out_request_no"], "total_amount": t["total_amount"],
                "refund_amount": yuan(r["fen"]), "refund_status": "REFUND_SUCCESS", "gmt_refund_pay": _fmt(r["at"])}

    def _alipay_data_dataservice_bill_downloadurl_query(self, biz: dict[str, Any],
                                                        params: dict[str, str]) -> dict[str, Any]:
        try:
            day = dt.date.fromisoformat(str(biz.get("bill_date")))
        except ValueError:
            return _business("isv.invalid-parameter", "参数无效")
        if biz.get("bill_type") != "trade" or day >= self.now().astimezone(BEIJING).date():
            return _business("isp.bill_not_exist", "账单不存在")
        token = secrets.token_hex(8)
        self.bill_files[token] = self.bill_zip(day)
        return {"code": "10000", "msg": "Success",
                "bill_download_url": f"{self.base}/downloadBillFile.resource?bizType=trade&userId={SELLER_ID}"
                                     f"&fileType=csv.zip&bizDates={day:%Y%m%d}&token={token}"}

    # -- what the buyer and Alipay do --------------------------------------------------------------------
    def open_wap(self, pay_url: str) -> dict[str, Any]:
        """The buyer's browser opens the H5 pay URL: Alipay checks its signature and creates the trade."""
        parts = urlsplit(pay_url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if params.get("method") != "alipay.trade.wap.pay" or not rsa2_verify(
                APP_KEY, signing_string(params, exclude=("sign",)), params.get("sign", "")):
            raise ValueError("isv.invalid-signature")
        biz = json.loads(params["biz_content"])
        with self.lock:
            out = self._open(biz, params, "QUICK_WAP_PAY")
        if out["code"] != "10000":
            raise ValueError(out["sub_code"])
        return self.trades[biz["out_trade_no"]]

    def pay(self, out_trade_no: str, *, buyer_id: str = BUYER_ID) -> bytes:
        """The buyer pays; returns the signed TRADE_SUCCESS notification body."""
        t = self.trades[out_trade_no]
        assert t["status"] == "WAIT_BUYER_PAY", t["status"]
        t.update(status="TRADE_SUCCESS", paid=self.now(), buyer_id=t["buyer_id"] or buyer_id)
        return self.notification(out_trade_no)

    def timeout_close(self, out_trade_no: str) -> bytes:
        """Alipay closes the unpaid trade (its time_expire passed); returns the TRADE_CLOSED notification."""
        t = self.trades[out_trade_no]
        t.update(status="TRADE_CLOSED", closed=self.now())
        return self.notification(out_trade_no)

    @staticmethod
    def refunded(t: dict[str, Any]) -> int:
        return sum(r["fen"] for r in t["refunds"].values())

    def notification(self, out_trade_no: str, *, refund: str | None = None, key: rsa.RSAPrivateKey | None = None,
                     **override: str) -> bytes:
        """The form body of the ``trade_status_sync`` notification of the trade's state (or of one of its
        refunds: ``refund`` = its out_request_no), signed with Alipay's key (or ``key``) after ``override``."""
        t = self.trades[out_trade_no]
        now = self.now()
        p = {"notify_time": _fmt(now), "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(16),
             "charset": "utf-8", "version": "1.0", "sign_type": "RSA2", "app_id": APP_ID, "auth_app_id": APP_ID,
             "trade_no": t["trade_no"], "out_trade_no": out_trade_no, "buyer_id": t["buyer_id"] or BUYER_ID,
             "seller_id": SELLER_ID, "trade_status": t["status"], "total_amount": t["total_amount"],
             "subject": t["subject"], "gmt_create": _fmt(t["created"])}
        if t["paid"] is not None:
            p.update(gmt_payment=_fmt(t["paid"]), receipt_amount=t["total_amount"], invoice_amount=t["total_amount"],
                     buyer_pay_amount=t["total_amount"], point_amount="0.00")
        if refund is not None:
            r = t["refunds"][refund]
            p.update(out_biz_no=refund, refund_fee=yuan(self.refunded(t)), gmt_refund=_fmt(r["at"]) + ".000")
        if t["closed"] is not None:
            p["gmt_close"] = _fmt(t["closed"])
        p.update(override)
        p["sign"] = rsa2_sign(key or ALIPAY_KEY, signing_string(p, exclude=("sign", "sign_type")))
        return urlencode(p).encode()

    # -- the daily bill ----------------------------------------------------------------------------------
    HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
              "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
              "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")

    def bill_rows(self, day: dt.date) -> Iterator[list[str]]:
        def on_day(t: dt.datetime | None) -> bool:
            return t is not None and t.astimezone(BEIJING).date() == day

        for t in self.trades.values():
            if on_day(t["paid"]):
                amount = yuan(self.plant.get(t["out_trade_no"], t["fen"]))
                yield _row(t, "交易", t["paid"], amount, amount, "")
            for request_no, r in t["refunds"].items():
                if on_day(r["at"]):
                    yield _row(t, "退款", r["at"], t["total_amount"], "-" + yuan(r["fen"]), request_no)
        yield from self.extra_rows

    def bill_csv(self, day: dt.date) -> str:
        rows = list(self.bill_rows(day))
        pays = [r for r in rows if r[2] == "交易"]
        refunds = [r for r in rows if r[2] == "退款"]
        total = sum(fen(r[12], negative=True) for r in rows)
        lines = ["#支付宝业务明细查询", f"#账号：[{SELLER_ID}0156]",
                 f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day + dt.timedelta(days=1):%Y年%m月%d日} 00:00:00]",
                 "#-----------------------------------------业务明细列表----------------------------------------",
                 self.HEADER]
        lines += [",".join(r) for r in rows]
        lines += ["#-----------------------------------------业务明细列表结束------------------------------------",
                  f"#交易合计：{len(pays)}笔，商家实收：{yuan(sum(fen(r[12]) for r in pays))}元，"
                  "商家优惠：0.00元",
                  f"#退款合计：{len(refunds)}笔，商家实收退款：-{yuan(-sum(fen(r[12], negative=True) for r in refunds))}元，"
                  "商家优惠退款：0.00元",
                  f"#实收净额：{yuan(total) if total >= 0 else '-' + yuan(-total)}元",
                  f"#导出时间：[{self.now().astimezone(BEIJING):%Y年%m月%d日 %H:%M:%S}]"]
        return "\r\n".join(lines) + "\r\n"

    def bill_zip(self, day: dt.date) -> bytes:
        """The zip Alipay serves: GBK file names (no UTF-8 flag) and GBK CSV contents."""
        stem = f"{SELLER_ID}0156_{day:%Y%m%d}"
        summary = "\r\n".join(["#支付宝业务汇总查询", "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）",
                               "合计,,0,0,0.00"]) + "\r\n"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, text in ((f"{stem}_业务明细.csv", self.bill_csv(day)), (f"{stem}_业务明细(汇总).csv", summary)):
                z.writestr(_GbkName(name, date_time=(2026, 1, 1, 9, 0, 0)), text.encode("gbk"))
        return buf.getvalue()


class _GbkName(zipfile.ZipInfo):
    """A member name stored in GBK without the UTF-8 flag, as Alipay's (Windows-made) zips have them."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 - zipfile's name
        return self.filename.encode("gbk"), self.flag_bits


def _fmt(t: dt.datetime) -> str:
    return t.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _row(t: dict[str, Any], kind: str, at: dt.datetime, total: str, received: str, request_no: str) -> list[str]:
    # ids end with a tab in Alipay's files (so spreadsheets keep them as text)
    return [t["trade_no"] + "\t", t["out_trade_no"] + "\t", kind, t["subject"], _fmt(t["created"]), _fmt(at), "", "",
            "", "", "138****0000", total, received, "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00",
            request_no + ("\t" if request_no else ""), "0.00", "0.00", ""]


def serve() -> Iterator[FakeAlipay]:
    """The ``alipay_server`` fixture (tests/conftest.py): a started `FakeAlipay`; ``provider_kwargs()``
    configures our `AlipayProvider` for it."""
    fake = FakeAlipay()
    fake.start()
    yield fake
    fake.stop()
