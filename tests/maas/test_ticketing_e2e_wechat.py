"""WeChat Pay end to end over HTTP: the demo city (CNY), the real wechatpayv3 SDK against tests/wechat_server.py.

A passenger buys with ``payment_method=wechat`` (mini-program: ``payer_id`` = openid), gets the signed
``wx.requestPayment`` arguments, WeChat's notification arrives at ``/v1/payments/wechat/notify`` and the
tickets are issued once; forged, stale, replayed and late notifications change nothing; a closed payment
releases the seats; a lost notification is recovered by the sync endpoint; refunds (partial, then the rest)
post ledger entries equal to what WeChat paid back; the day's trade bill is reconciled line by line.
"""

from __future__ import annotations

import datetime as dt

import time

import pytest
from sqlmodel import select

from tests import wechat_server as ws
from tests.ticketing_support import buy, city, demo, journey, traveler  # noqa: F401

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
NOTIFY = "/v1/payments/wechat/notify"


@pytest.fixture
def settings(settings, wechat_server):  # noqa: ANN001, ANN201
    return settings.model_copy(update={**ws.settings_overrides(wechat_server.base), "sandbox_payments": True,
                                       "default_payment_method": "wechat"})


@pytest.fixture
def fake(wechat_server, demo):  # noqa: ANN001, ANN201
    """The WeChat server, its payments and refunds timed by the app's clock (so bills fall on its day)."""
    wechat_server.clock = lambda: demo.now.timestamp()
    return wechat_server


def _wechat_order(client, h, demo, names=("张三",)):  # noqa: ANN001, ANN202
    return buy(client, h, journey(client, demo), [traveler(n) for n in names], payment_method="wechat",
               payer_id=OPENID)


def _post(client, body: bytes, headers: dict[str, str]):  # noqa: ANN001, ANN202
    return client.post(NOTIFY, content=body, headers=headers)


def _order(client, h, order_id: str) -> dict:  # noqa: ANN001
    return client.get(f"/v1/orders/{order_id}", headers=h).json()


def _occupied(app, offer_id: str) -> int:  # noqa: ANN001
    from maas.db import session_scope
    from maas.journeys import now
    from ticketing import seats
    from ticketing.models import Offer

    with session_scope(app.state.engine) as s:
        keys = sorted({h["key"] for h in s.get(Offer, offer_id).holds})
    return sum(seats.occupied(app.state.redis, key=k, now=now(app)) for k in keys)


def test_a_mini_program_purchase_is_ticketed_once_whatever_the_notifications(client, login, fake, demo):  # noqa: ANN001
    _, h = login()
    r = client.post("/v1/offers", headers=h, json={"itinerary": journey(client, demo),
                                                    "travelers": [{"rider_category": "adult"}]})
    # WeChat needs the payer's openid
    r = client.post("/v1/orders", headers=h, json={"offer_id": r.json()["offer_id"], "travelers": [traveler()],
                                                   "payment_method": "wechat"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "payer_required", r.text

    offer, order = _wechat_order(client, h, demo, ("张三", "李四"))
    pay = order["payment"]
    assert pay["payment_method"] == "wechat" and pay["provider_ref"] == order["order_id"]  # out_trade_no
    cp = pay["client_params"]
    at_wechat = fake.orders[pay["provider_ref"]]
    assert at_wechat["params"]["amount"] == {"total": order["total"]["amount"], "currency": "CNY"}
    assert at_wechat["params"]["payer"] == {"openid": OPENID}
    assert cp["package"] == f"prepay_id={at_wechat['prepay_id']}" and cp["signType"] == "RSA"
    assert ws.rsa_verify(ws.MERCHANT_PUBLIC_PEM,
                         f"{cp['appId']}\n{cp['timeStamp']}\n{cp['nonceStr']}\n{cp['package']}\n", cp["paySign"])

    body, headers = fake.notify_payment(pay["provider_ref"], notification_id="EV-e2e-1")
    # forged: another signing key, a changed body, a stale timestamp, an unknown serial
    forged_body, forged = fake.notification("TRANSACTION.SUCCESS", fake.transaction(pay["provider_ref"]),
                                            "transaction", key=ws.OTHER_KEY)
    stale_body, stale = fake.notify_payment(pay["provider_ref"], timestamp=int(time.time()) - 600)
    for b, hd in ((forged_body, forged), (body.replace(b"EV-e2e-1", b"EV-e2e-2"), headers), (stale_body, stale),
                  (body, {**headers, "Wechatpay-Serial": "PUB_KEY_ID_OTHER"}), (body, {})):
        r = _post(client, b, hd)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_webhook_signature"
    assert _order(client, h, order["order_id"])["status"] == "pending_payment"

    r = _post(client, body, headers)
    assert r.status_code == 200 and r.json() == {"code": "SUCCESS", "message": "成功"}
    assert r.headers["X-Maas-Outcome"] == "ticketed"
    # WeChat delivers again (same id): a duplicate; a second notification of the same payment: already paid
    assert _post(client, body, headers).headers["X-Maas-Outcome"] == "duplicate"
    again_body, again = fake.notify_payment(pay["provider_ref"])
    assert _post(client, again_body, again).headers["X-Maas-Outcome"] == "already_paid"
    got = _order(client, h, order["order_id"])
    assert got["status"] == "ticketed" and len(got["tickets"]) == 2
    assert got["payments"][0]["status"] == "succeeded"


def test_a_lost_notification_is_recovered_and_the_late_one_changes_nothing(client, login, fake, demo):  # noqa: ANN001
    _, h = login()
    _offer, order = _wechat_order(client, h, demo, ("张三", "李四"))
    ref = order["payment"]["provider_ref"]
    assert client.post(f"/v1/orders/{order['order_id']}/payment/sync", headers=h).json()["outcome"] == "open"
    fake.pay(ref)  # paid in WeChat; the notification is lost
    r = client.post(f"/v1/orders/{order['order_id']}/payment/sync", headers=h).json()
    assert r["outcome"] == "ticketed" and r["status"] == "ticketed"
    body, headers = fake.notify_payment(ref)  # ... and arrives after all
    assert _post(client, body, headers).headers["X-Maas-Outcome"] == "already_paid"
    got = _order(client, h, order["order_id"])
    assert len(got["tickets"]) == 2
    # paid_at is WeChat's success_time (the time its trade bill files the payment under), not our clock's
    paid_at = dt.datetime.fromisoformat(got["payments"][0]["paid_at"])
    assert abs(paid_at.timestamp() - fake.orders[ref]["success_time"]) < 1


def test_a_closed_payment_releases_the_seats(client, app, login, fake, demo):  # noqa: ANN001
    _, h = login()
    offer, order = _wechat_order(client, h, demo, ("张三", "李四"))
    held = _occupied(app, offer["offer_id"])
    assert held >= 2
    fake.set_state(order["payment"]["provider_ref"], "CLOSED")  # timed out at WeChat
    r = client.post(f"/v1/orders/{order['order_id']}/payment/sync", headers=h).json()
    assert r["outcome"] == "payment_closed" and r["status"] == "cancelled"
    assert _occupied(app, offer["offer_id"]) == held - 2
    # a success notification for it afterwards (paid in the moment before the close) is refunded in full
    fake.refund_status = "SUCCESS"
    body, headers = fake.notify_payment(order["payment"]["provider_ref"])
    assert _post(client, body, headers).headers["X-Maas-Outcome"] == "refunded_late_payment"
    assert sum(r["amount"]["refund"] for r in fake.refunds.values()) == order["total"]["amount"]

    # the passenger cancels: the order is closed at WeChat too
    _offer, other = _wechat_order(client, h, demo, ("王五",))
    assert client.post(f"/v1/orders/{other['order_id']}/cancel", headers=h).json()["status"] == "cancelled"
    assert fake.orders[other["payment"]["provider_ref"]]["trade_state"] == "CLOSED"


def _refund_ledger(engine, refund_id: str) -> int:  # noqa: ANN001
    """What the ledger owes back to the passenger for a refund (credit on platform:refunds), in fen."""
    from clearing.models import JournalEntry, JournalLine
    from maas.db import session_scope

    with session_scope(engine) as s:
        rows = s.exec(select(JournalLine.amount).join(JournalEntry, JournalEntry.entry_id == JournalLine.entry_id)
                      .where(JournalEntry.event_key.like(f"refund:{refund_id}-%"),  # type: ignore[attr-defined]
                             JournalLine.purpose == "refund")).all()
    return -sum(rows)


def test_partial_then_full_refund_and_the_bill(client, login, fake, engine, demo):  # noqa: ANN001
    _, h = login()
    _offer, order = _wechat_order(client, h, demo, ("张三",))
    ref = order["payment"]["provider_ref"]
    body, headers = fake.notify_payment(ref)
    assert _post(client, body, headers).headers["X-Maas-Outcome"] == "ticketed"
    legs = _order(client, h, order["order_id"])["tickets"][0]["legs"]
    assert len(legs) >= 2

    # one leg: WeChat accepts (PROCESSING), the REFUND.SUCCESS notification completes it
    r = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h, json={"leg_ids": [legs[-1]["leg_id"]]})
    assert r.status_code == 201, r.text
    part = r.json()
    assert part["status"] == "pending"
    at_wechat = fake.refunds[part["refund_id"]]  # our refund id is the out_refund_no
    assert at_wechat["amount"]["refund"] == part["amount"]["amount"] > 0
    assert at_wechat["amount"]["total"] == order["total"]["amount"]
    assert _refund_ledger(engine, part["refund_id"]) == 0  # nothing posted before WeChat pays
    body, headers = fake.notify_refund(part["refund_id"])
    assert _post(client, body, headers).headers["X-Maas-Outcome"].startswith("refunds_confirmed")
    assert _post(client, body, headers).headers["X-Maas-Outcome"] == "duplicate"
    assert _refund_ledger(engine, part["refund_id"]) == at_wechat["amount"]["refund"]
    assert _order(client, h, order["order_id"])["status"] == "partially_refunded"

    # the other legs: WeChat refunds at once (SUCCESS in its answer)
    fake.refund_status = "SUCCESS"
    rest = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h,
                       json={"leg_ids": [leg["leg_id"] for leg in legs[:-1]]}).json()
    assert rest["status"] == "succeeded"
    assert _refund_ledger(engine, rest["refund_id"]) == fake.refunds[rest["refund_id"]]["amount"]["refund"]
    assert _order(client, h, order["order_id"])["status"] == "refunded"
    paid_back = sum(r["amount"]["refund"] for r in fake.refunds.values())
    assert paid_back == part["amount"]["amount"] + rest["amount"]["amount"] <= order["total"]["amount"]

    # the day's bill: payment + two refunds; first clean, then with a planted mismatch on the payment's line
    _, admin = login("admin")
    day = fake.bill_day(ref)
    report = client.get(f"/v1/payments/bills/wechat/{day.isoformat()}", headers=admin).json()
    assert report["lines"] == 3 and report["mismatches"] == [] and report["ok"], report
    fake.bill_overrides[ref] = order["total"]["amount"] - 1
    report = client.get(f"/v1/payments/bills/wechat/{day.isoformat()}", headers=admin).json()
    assert [(m["code"], m["line"]) for m in report["mismatches"]] == [("amount_mismatch", 2)]
    assert report["mismatches"][0]["theirs"] == order["total"]["amount"] - 1
