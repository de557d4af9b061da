"""A local HTTP server speaking Stripe's JSON for the endpoints ticketing uses, and Stripe-style webhook signing.

The real ``stripe`` SDK is pointed at it (``STRIPE_API_BASE``), so tests
exercise the SDK's request encoding, idempotency headers and response
parsing without a network. Endpoints:

- ``POST /v1/payment_intents``  (form-encoded, ``Idempotency-Key`` honoured)
- ``POST /v1/refunds``          (``payment_intent`` + ``amount``; refuses more than was captured)
- ``GET /v1/refunds``           (list, ``payment_intent`` filter, newest first)
- ``GET /v1/payment_intents/{id}`` and ``POST /v1/payment_intents/{id}/cancel``

`sign_payload` builds the ``Stripe-Signature`` header exactly as Stripe does:
``t=<unix>,v1=<hex HMAC-SHA256(secret, f"{t}.{payload}")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pydantic import SecretStr


def _nested(form: list[tuple[str, str]]) -> dict[str, Any]:
    """``metadata[order_id]=x`` -> ``{"metadata": {"order_id": "x"}}`` (Stripe's form encoding)."""
    out: dict[str, Any] = {}
    for key, value in form:
        parts = key.replace("]", "").split("[")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


class FakeStripe:
    def __init__(self) -> None:
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    # -- server ------------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer sk_test_"):
                    return self._send(401, {"error": {"type": "invalid_request_error", "message": "bad key"}})
                params = _nested(parse_qsl(body, keep_blank_values=True))
                key = self.headers.get("Idempotency-Key")
                with fake.lock:
                    fake.requests.append((self.path, key or ""))
                    if key and (self.path, key) in fake.idempotent:
                        return self._send(*fake.idempotent[(self.path, key)])
                    status, obj = fake.handle(self.path, params)
                    if key:
                        fake.idempotent[(self.path, key)] = (status, obj)
                self._send(status, obj)

            def do_GET(self) -> None:  # noqa: N802
                if not self.headers.get("Authorization", "").startswith("Bearer sk_test_"):
                    return self._send(401, {"error": {"type": "invalid_request_error", "message": "bad key"}})
                path, _, query = self.path.partition("?")
                params = dict(parse_qsl(query))
                with fake.lock:
                    fake.requests.append((f"GET {path}", ""))
                    if path.startswith("/v1/payment_intents/") and path.count("/") == 3:
                        pi = fake.payment_intents.get(path.rsplit("/", 1)[1])
                        if pi is None:
                            return self._send(404, {"error": {"type": "invalid_request_error",
                                                              "code": "resource_missing",
                                                              "message": "No such payment_intent"}})
                        return self._send(200, pi)
                    if path == "/v1/refunds":
                        data = [r for r in fake.refunds.values()
                                if r["payment_intent"] == params.get("payment_intent", r["payment_intent"])]
                        return self._send(200, {"object": "list", "url": "/v1/refunds", "has_more": False,
                                                "data": list(reversed(data))})
                return self._send(404, {"error": {"type": "invalid_request_error", "message": "not found"}})

            def _send(self, status: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_" + secrets.token_hex(6))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def handle(self, path: str, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "/v1/payment_intents":
            pi_id = "pi_" + secrets.token_hex(12)
            pi = {"id": pi_id, "object": "payment_intent", "amount": int(p["amount"]), "currency": p["currency"],
                  "status": "requires_payment_method", "client_secret": f"{pi_id}_secret_{secrets.token_hex(8)}",
                  "metadata": p.get("metadata", {}), "livemode": False, "created": int(time.time()),
                  "amount_received": 0}
            self.payment_intents[pi_id] = pi
            return 200, pi
        if path.startswith("/v1/payment_intents/") and path.endswith("/cancel"):
            pi = self.payment_intents.get(path.split("/")[3])
            if pi is None:
                return 404, {"error": {"type": "invalid_request_error", "message": "No such payment_intent"}}
            if pi["status"] in ("succeeded", "canceled"):
                return 400, {"error": {"type": "invalid_request_error", "code": "payment_intent_unexpected_state",
                                       "message": f"You cannot cancel this PaymentIntent because it has a status of "
                                                  f"{pi['status']}."}}
            pi["status"] = "canceled"
            return 200, pi
        if path == "/v1/refunds":
            pi = self.payment_intents.get(p.get("payment_intent", ""))
            if pi is None:
                return 404, {"error": {"type": "invalid_request_error", "message": "No such payment_intent"}}
            amount = int(p.get("amount", pi["amount"]))
            done = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == pi["id"])
            if pi["status"] != "succeeded" or done + amount > pi["amount"]:
                return 400, {"error": {"type": "invalid_request_error", "code": "charge_already_refunded",
                                       "message": "Refund amount is greater than unrefunded amount"}}
            re = {"id": "re_" + secrets.token_hex(12), "object": "refund", "amount": amount,
                  "currency": pi["currency"], "payment_intent": pi["id"], "status": "succeeded",
                  "metadata": p.get("metadata", {})}
            self.refunds[re["id"]] = re
            return 200, re
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL {path}"}}

    # -- events ------------------------------------------------------------------------
    def succeed(self, pi_id: str) -> dict[str, Any]:
        """The customer paid: the intent succeeds (as after confirmation in Stripe.js)."""
        pi = self.payment_intents[pi_id]
        pi["status"] = "succeeded"
        pi["amount_received"] = pi["amount"]
        return dict(pi)

    @staticmethod
    def event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> str:
        return json.dumps({"id": event_id or "evt_" + secrets.token_hex(12), "object": "event",
                           "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
                           "type": event_type, "data": {"object": obj}, "pending_webhooks": 1})


def sign_payload(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``."""
    t = int(time.time()) if timestamp is None else timestamp
    sig = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={sig}"


@pytest.fixture(scope="module")
def stripe_server():  # noqa: ANN201
    """A running `FakeStripe` and its base URL, for a test module (import the fixture to use it)."""
    fake = FakeStripe()
    base = fake.start()
    yield fake, base
    fake.stop()


def on_stripe(settings: Any, base: str, webhook_secret: str, **more: Any) -> Any:
    """``settings`` with Stripe pointed at the local server ``base``."""
    return settings.model_copy(update={"stripe_api_key": SecretStr("sk_test_local"),
                                       "stripe_webhook_secret": SecretStr(webhook_secret), "stripe_api_base": base,
                                       **more})
