"""Alipay end to end over HTTP: the real python-alipay-sdk against tests/alipay_server.py, on the demo city.

A passenger buys a bus + metro + coach journey with ``payment_method=alipay``: as a mini-program user
(``payer_id`` = Alipay ``buyer_id``: the order carries the ``trade_no`` for ``my.tradePay``) or in a browser
(the order carries the signed H5 ``pay_url``). Alipay's signed notifications reach
``POST /v1/payments/alipay/notify``; forged ones are refused, repeated ones change nothing; a lost one is
recovered by the sync endpoint; a closed trade gives the seats back; partial and full refunds are paid back
by Alipay and booked in the ledger (a full refund's TRADE_CLOSED is no cancellation); the day's bill is
downloaded, parsed and matched, and a planted mismatch is found on its line.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import SecretStr

from tests.alipay_server import BUYER_ID, FORGER_KEY, SELLER_ID, FakeAlipay
from tests.security.refund_support import recorded
from tests.ticketing.test_payment_rails import _occupied
from tests.ticketing_support import buy, city, demo, journey, traveler  # noqa: F401
from ticketing.pay_alipay import BEIJING, yuan


@pytest.fixture
def settings(settings, alipay_server: FakeAlipay):  # noqa: ANN001, ANN201
    k = alipay_server.provider_kwargs()
    return settings.model_copy(update={
        "alipay_app_id": k["app_id"], "alipay_app_private_key": SecretStr(k["app_private_key"]),
        "alipay_public_key": k["alipay_public_key"], "alipay_notify_url": k["notify_url"],
        "alipay_gateway": k["gateway"], "alipay_seller_id": SELLER_ID})


@pytest.fixture
def fake(alipay_server: FakeAlipay, app, demo) -> FakeAlipay:  # noqa: ANN001
    alipay_server.now = lambda: app.state.clock.now  # Alipay's clock is the app's
    return alipay_server


def _notify(client, body: bytes):  # noqa: ANN001, ANN202
    return client.post("/v1/payments/alipay/notify", content=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def _outcome(r) -> str:  # noqa: ANN001
    assert r.status_code == 200 and r.text == "success", r.text
    return r.headers["X-Maas-Outcome"]


def _status(client, h, order) -> dict:  # noqa: ANN001
    return client.get(f"/v1/orders/{order['order_id']}", headers=h).json()


def test_mini_program_journey_paid_notified_refunded(client, app, demo, login, fake, engine):  # noqa: ANN001
    assert client.get("/v1/payments/methods").json()["methods"][0] == "alipay"
    _, h = login()
    _offer, order = buy(client, h, journey(client, demo), [traveler(), traveler("李四")], payment_method="alipay",
                        payer_id=BUYER_ID)
    pay = order["payment"]
    trade = fake.trades[order["order_id"]]
    assert pay["payment_method"] == "alipay" and pay["provider_ref"] == order["order_id"]
    assert pay["client_params"] == {"trade_no": trade["trade_no"]}
    assert trade["total_amount"] == yuan(order["total"]["amount"]) and trade["buyer_id"] == BUYER_ID

    body = fake.pay(order["order_id"])
    # forged (another key) and tampered notifications change nothing
    r = _notify(client, fake.notification(order["order_id"], key=FORGER_KEY))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_webhook_signature"
    assert _notify(client, body.replace(b"trade_status=TRADE_SUCCESS", b"trade_status=TRADE_CLOSED")).status_code == 400
    assert _status(client, h, order)["status"] == "pending_payment"

    assert _outcome(_notify(client, body)) == "ticketed"
    assert _outcome(_notify(client, body)) == "duplicate"  # Alipay delivering the same notification again
    assert _outcome(_notify(client, fake.notification(order["order_id"]))) == "already_paid"  # another notify_id
    got = _status(client, h, order)
    assert got["status"] == "ticketed" and len(got["tickets"]) == 2
    assert got["payments"][0]["status"] == "succeeded"

    # a partial refund (one traveller's coach leg), then the rest: Alipay pays back what we record and book
    legs = got["tickets"][1]["legs"]
    r = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h, json={"leg_ids": [legs[-1]["leg_id"]]})
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    first = r.json()
    assert fake.refunded(trade) == first["amount"]["amount"] > 0 and trade["status"] == "TRADE_SUCCESS"
    assert _outcome(_notify(client, fake.notification(order["order_id"], refund=first["refund_id"]))) \
        == "refunds_confirmed:0"  # already confirmed by the refund call
    rest = [leg["leg_id"] for t in got["tickets"] for leg in t["legs"] if leg["leg_id"] != legs[-1]["leg_id"]]
    r = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h, json={"leg_ids": rest})
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    second = r.json()
    mine = recorded(engine, order["order_id"])
    assert fake.refunded(trade) == mine["succeeded"] == mine["ledger"] == first["amount"]["amount"] + \
        second["amount"]["amount"]
    assert trade["status"] == "TRADE_SUCCESS"  # the refund fees stay paid: the trade is not closed
    assert _outcome(_notify(client, fake.notification(order["order_id"], refund=second["refund_id"]))) \
        == "refunds_confirmed:0"
    got = _status(client, h, order)
    assert got["status"] not in ("cancelled", "expired") and {t["status"] for t in got["tickets"]} == {"refunded"}


def test_a_full_refund_closes_the_trade_and_is_no_cancellation(client, app, demo, login, fake, engine):  # noqa: ANN001
    """Alipay closes a trade refunded in full and notifies TRADE_CLOSED with the refund's out_biz_no: that
    is the refund's confirmation. Read as a close, it would cancel an order that was paid."""
    from maas.db import session_scope
    from ticketing.tasks import expire_orders

    _, h = login()
    _offer, order = buy(client, h, journey(client, demo), [traveler()], payment_method="alipay", payer_id=BUYER_ID)
    trade = fake.trades[order["order_id"]]
    app.state.clock.advance(hours=2)
    with session_scope(app.state.engine) as s:
        assert expire_orders(s, redis_client=app.state.redis, now=app.state.clock.now) >= 1
    paid = fake.pay(order["order_id"])  # paid in the moment before the order expired at our end
    assert _outcome(_notify(client, paid)) == "refunded_late_payment"
    (refund_id,) = trade["refunds"]
    assert fake.refunded(trade) == order["total"]["amount"] == recorded(engine, order["order_id"])["succeeded"]
    assert trade["status"] == "TRADE_CLOSED"
    closed = fake.notification(order["order_id"], refund=refund_id)
    assert dict(parse_qsl(closed.decode()))["trade_status"] == "TRADE_CLOSED"
    assert _outcome(_notify(client, closed)) == "refunds_confirmed:0"
    got = _status(client, h, order)
    assert got["status"] == "expired" and got["payments"][0]["status"] == "refunded"


def test_a_notification_with_the_wrong_amount_tickets_nothing(client, demo, login, fake):  # noqa: ANN001
    _, h = login()
    _offer, order = buy(client, h, journey(client, demo), [traveler()], payment_method="alipay", payer_id=BUYER_ID)
    fake.pay(order["order_id"])
    wrong = fake.notification(order["order_id"], total_amount=yuan(order["total"]["amount"] - 1))
    assert _outcome(_notify(client, wrong)) == "amount_mismatch"
    # paid to another seller (ALIPAY_SELLER_ID is ours): not money we received
    elsewhere = fake.notification(order["order_id"], seller_id="2088999999999999")
    assert _outcome(_notify(client, elsewhere)) == "amount_mismatch"
    assert _status(client, h, order)["tickets"] == []


def test_h5_payment_with_a_lost_notification_is_recovered_by_sync(client, demo, login, fake):  # noqa: ANN001
    _, h = login()
    _offer, order = buy(client, h, journey(client, demo), [traveler()], payment_method="alipay")
    url = order["payment"]["client_params"]["pay_url"]
    assert url.startswith(fake.base + "/gateway.do?")
    biz = json.loads(dict(parse_qsl(urlsplit(url).query))["biz_content"])
    assert biz["out_trade_no"] == order["order_id"] and biz["product_code"] == "QUICK_WAP_PAY"
    sync = f"/v1/orders/{order['order_id']}/payment/sync"
    assert client.post(sync, headers=h).json()["outcome"] == "open"  # the buyer has not opened the page
    fake.open_wap(url)
    assert client.post(sync, headers=h).json()["outcome"] == "open"
    fake.pay(order["order_id"])  # the notification never arrives
    r = client.post(sync, headers=h).json()
    assert r["outcome"] == "ticketed" and r["status"] == "ticketed"
    assert client.post(sync, headers=h).json()["outcome"] == "succeeded"
    assert len(_status(client, h, order)["tickets"]) == 1


def test_a_closed_trade_gives_the_seats_back(client, app, demo, login, fake):  # noqa: ANN001
    _, h = login()
    offer, order = buy(client, h, journey(client, demo), [traveler(), traveler("李四")], payment_method="alipay",
                       payer_id=BUYER_ID)
    held = _occupied(app, offer["offer_id"])
    assert held >= 2
    closed = fake.timeout_close(order["order_id"])  # the buyer never paid; Alipay closed the trade
    assert _outcome(_notify(client, closed)) == "payment_closed"
    assert _outcome(_notify(client, closed)) == "duplicate"
    got = _status(client, h, order)
    assert got["status"] == "cancelled" and got["payments"][0]["status"] == "closed"
    assert _occupied(app, offer["offer_id"]) == held - 2
    # a passenger's own cancellation closes the trade at Alipay
    _offer, other = buy(client, h, journey(client, demo), [traveler()], payment_method="alipay", payer_id=BUYER_ID)
    assert client.post(f"/v1/orders/{other['order_id']}/cancel", headers=h).json()["status"] == "cancelled"
    assert fake.trades[other["order_id"]]["status"] == "TRADE_CLOSED"


def test_the_bill_is_reconciled_and_a_planted_mismatch_found_on_its_line(client, app, demo, login, fake):  # noqa: ANN001
    _, h = login()
    orders = []
    for name in ("张三", "李四"):
        _offer, order = buy(client, h, journey(client, demo), [traveler(name)], payment_method="alipay",
                            payer_id=BUYER_ID)
        assert _outcome(_notify(client, fake.pay(order["order_id"]))) == "ticketed"
        orders.append(order)
    legs = _status(client, h, orders[0])["tickets"][0]["legs"]
    refund = client.post(f"/v1/orders/{orders[0]['order_id']}/refunds", headers=h,
                         json={"leg_ids": [legs[-1]["leg_id"]]}).json()
    assert refund["status"] == "succeeded"
    day = app.state.clock.now.astimezone(BEIJING).date()
    _, admin = login("admin")
    r = client.get(f"/v1/payments/bills/alipay/{day}", headers=admin)
    assert r.status_code == 502 and "isp.bill_not_exist" in r.text  # Alipay publishes a day's bill the day after
    fake.now = lambda: app.state.clock.now + dt.timedelta(days=1)
    report = client.get(f"/v1/payments/bills/alipay/{day}", headers=admin).json()
    assert report["ok"] and report["matched"] == 3 and report["mismatches"] == []

    fake.plant[orders[1]["order_id"]] = orders[1]["total"]["amount"] - 1  # the bill says one fen less
    report = client.get(f"/v1/payments/bills/alipay/{day}", headers=admin).json()
    (m,) = report["mismatches"]
    lines = fake.bill_csv(day).split("\r\n")
    assert m["code"] == "amount_mismatch" and orders[1]["order_id"] in lines[m["line"] - 1]
    assert (m["ours"], m["theirs"]) == (orders[1]["total"]["amount"], orders[1]["total"]["amount"] - 1)


def test_the_cli_reconciles_a_saved_bill_and_names_a_bad_line(cli_env, alipay_server, monkeypatch, capsys):  # noqa: ANN001
    """`maas payments reconcile-bill --provider alipay --file` on the zip as Alipay serves it."""
    from maas.cli import main

    k = alipay_server.provider_kwargs()
    for name, value in (("ALIPAY_APP_ID", k["app_id"]), ("ALIPAY_APP_PRIVATE_KEY", k["app_private_key"]),
                        ("ALIPAY_PUBLIC_KEY", k["alipay_public_key"]), ("ALIPAY_NOTIFY_URL", k["notify_url"]),
                        ("ALIPAY_GATEWAY", k["gateway"])):
        monkeypatch.setenv(name, value)
    day = dt.date(2026, 3, 2)
    alipay_server.extra_rows.append(  # a payment we never took, on the bill's first row
        ["2026030222001XYZ\t", "ord_stranger\t", "交易", "x", "2026-03-02 10:00:00", "2026-03-02 10:00:05", "", "",
         "", "", "", "5.00", "5.00", "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", "", "0.00", "0.00",
         ""])
    bill = cli_env / "bill.zip"
    bill.write_bytes(alipay_server.bill_zip(day))
    assert main(["payments", "reconcile-bill", "--provider", "alipay", "--date", str(day), "--file", str(bill)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(m["code"], m["line"], m["payment_ref"]) for m in report["mismatches"]] == [
        ("unknown_payment", 6, "ord_stranger")]
    alipay_server.extra_rows[0][11] = "5.0O"
    bill.write_bytes(alipay_server.bill_zip(day))
    assert main(["payments", "reconcile-bill", "--provider", "alipay", "--date", str(day), "--file", str(bill)]) != 0
    assert "line 6: not an amount in yuan" in capsys.readouterr().err
