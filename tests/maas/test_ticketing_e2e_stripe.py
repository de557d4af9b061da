"""End to end over HTTP on a real feed with the real Stripe SDK against a local Stripe-speaking server.

Feed: MTR High Speed Rail (hk-xrl, shared data), priced by an operator fare
table (the feed has no fare files). plan -> offer -> order (PaymentIntent) ->
signed webhook -> tickets -> QR -> gates -> refund (Stripe Refund) -> gate.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.feed_shift import shift_feed_weeks, weeks_until
from tests.stripe_server import on_stripe, sign_payload, stripe_server  # noqa: F401
from tests.ticketing_support import SHANGHAI, Clock, buy, gate_headers, load_feeds, plan, traveler

WEBHOOK_SECRET = "whsec_test_" + "s3cr3t"
FEED_DAY = dt.date(2026, 1, 28)  # a Wednesday of the published feed's only week of service
# The feed moved by whole weeks so that this Wednesday is in the coming week, whatever the day the suite runs.
WEEKS = weeks_until(FEED_DAY, dt.date.today() + dt.timedelta(days=1))
DAY = FEED_DAY + dt.timedelta(weeks=WEEKS)
OPERATOR = "mtr-hsr"


@pytest.fixture(scope="module")
def fare_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("xrl-fares") / "operator_fare_tables.json"
    path.write_text(json.dumps({"version": 1, "tables": [{
        "feed_id": "hk-xrl", "operator_id": OPERATOR, "kind": "distance_bands", "currency": "HKD",
        "bands": [{"up_to_m": 45000, "amount": 8800}, {"up_to_m": None, "amount": 24700}],
        "rider_categories": {"adult": {"percent": 100}, "child": {"percent": 50}}}]}))
    return path


@pytest.fixture(scope="module")
def xrl_feed(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shift_feed_weeks(shared_data / "hk-xrl" / "hk_xrl.zip",
                            tmp_path_factory.mktemp("xrl-feed") / "hk_xrl.zip", WEEKS)


@pytest.fixture
def xrl(settings, engine, xrl_feed, stripe_server, fare_table, tmp_path_factory):  # noqa: ANN001, ANN201
    from fastapi.testclient import TestClient

    from maas.app import create_app

    fake, base = stripe_server
    s = on_stripe(settings, base, WEBHOOK_SECRET, operator_fare_tables_file=fare_table)
    app = create_app(s)
    with TestClient(app, raise_server_exceptions=True) as client:
        load_feeds(app, engine, [(xrl_feed, "hk-xrl", OPERATOR)],
                   tmp_path_factory.getbasetemp() / "xrl-timetables")
        app.state.clock = Clock(dt.datetime.combine(DAY, dt.time(6, 30), SHANGHAI))
        yield client, app, fake


def _login(client, make_user):  # noqa: ANN001, ANN202
    _user, phone, password = make_user("passenger")
    token = client.post("/v1/auth/token", json={"phone": phone, "password": password}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _webhook(client, fake, event_type, obj, event_id=None, secret=WEBHOOK_SECRET):  # noqa: ANN001, ANN202
    payload = fake.event(event_type, obj, event_id)
    return client.post("/v1/payments/stripe/webhook", content=payload.encode(),
                       headers={"Stripe-Signature": sign_payload(payload, secret), "Content-Type": "application/json"})


def test_stripe_journey_on_a_real_feed(xrl, make_user, engine):
    from maas import accounts
    from maas.db import session_scope

    client, app, fake = xrl
    h = _login(client, make_user)
    its = plan(client, "hk-xrl:WEK_pf", "hk-xrl:SZB_pf", app.state.clock.now)
    it = its[0]
    assert [leg["mode"] for leg in it["legs"]] == ["RAIL"]
    offer, order = buy(client, h, it, [traveler("陈大文"), traveler("陈小文", id_number="H12345678",
                                                                     id_type="hk_macau_permit")])
    assert offer["total"] == {"amount": 8800 * 2, "currency": "HKD"}
    pay = order["payment"]
    assert pay["provider"] == "stripe" and pay["client_secret"].startswith(pay["provider_ref"] + "_secret_")
    pi = fake.payment_intents[pay["provider_ref"]]
    assert pi["amount"] == 17600 and pi["currency"] == "hkd" and pi["metadata"] == {"order_id": order["order_id"]}

    # an unsigned or wrongly signed webhook changes nothing
    r = _webhook(client, fake, "payment_intent.succeeded", fake.succeed(pi["id"]), secret="whsec_wrong")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_webhook_signature"
    assert client.get(f"/v1/orders/{order['order_id']}", headers=h).json()["status"] == "pending_payment"

    event_id = "evt_paid_1"
    r = _webhook(client, fake, "payment_intent.succeeded", fake.succeed(pi["id"]), event_id)
    assert r.status_code == 200 and r.json()["outcome"] == "ticketed"
    assert _webhook(client, fake, "payment_intent.succeeded", pi, event_id).json()["outcome"] == "duplicate"
    assert _webhook(client, fake, "payment_intent.succeeded", pi).json()["outcome"] == "already_paid"
    late_failure = _webhook(client, fake, "payment_intent.payment_failed", {**pi, "status": "requires_payment_method"})
    assert late_failure.json()["outcome"] == "ignored_failure"
    got = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()
    assert got["status"] == "ticketed" and len(got["tickets"]) == 2
    t1, t2 = got["tickets"]
    assert t2["traveler"]["id_number"] == "H******78"
    leg1 = t1["legs"][0]
    assert leg1["operator_id"] == OPERATOR and leg1["from_stop_id"] == "hk-xrl:WEK_pf"
    assert leg1["service_date"] == DAY.isoformat() and leg1["price"] == {"amount": 8800, "currency": "HKD"}

    gate, gh = gate_headers(engine, OPERATOR)
    with session_scope(engine) as session:
        accounts.ensure_operator(session, operator_id="other-rail", name="Other Rail")
    other_gate, oh = gate_headers(engine, "other-rail")
    payload = client.get(f"/v1/tickets/{t1['ticket_id']}/qr", headers=h).json()["payload"]
    body = {"gate_id": gate, "stop_id": "hk-xrl:WEK_pf", "payload": payload}
    assert client.post("/v1/gates/validate", headers=gh, json=body).json()["result"] == "accepted"
    assert client.post("/v1/gates/validate", headers=gh, json=body).json()["reason"] == "already_used"
    tampered = payload[:-3] + ("AAA" if payload[-3:] != "AAA" else "BBB")
    assert client.post("/v1/gates/validate", headers=gh, json={**body, "payload": tampered}).json()["reason"] \
        == "bad_signature"
    p2 = client.get(f"/v1/tickets/{t2['ticket_id']}/qr", headers=h).json()["payload"]
    wrong = client.post("/v1/gates/validate", headers=oh, json={**body, "gate_id": other_gate, "payload": p2})
    assert wrong.json()["reason"] == "wrong_operator"

    # refund the second traveller's unused leg through a Stripe Refund; the leg no longer passes
    r = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h, json={"leg_ids": [t2["legs"][0]["leg_id"]]})
    assert r.status_code == 201, r.text
    refund = r.json()
    assert refund["status"] == "succeeded" and refund["amount"]["amount"] + refund["fee"]["amount"] == 8800
    (stripe_refund,) = [x for x in fake.refunds.values() if x["payment_intent"] == pi["id"]]
    assert stripe_refund["amount"] == refund["amount"]["amount"]
    charge = {"id": "ch_1", "object": "charge", "payment_intent": pi["id"], "amount_refunded": stripe_refund["amount"],
              "currency": "hkd", "refunds": {"object": "list", "data": [stripe_refund]}}
    assert _webhook(client, fake, "charge.refunded", charge).json()["outcome"].startswith("refunds_confirmed")
    p2 = client.get(f"/v1/tickets/{t2['ticket_id']}/qr", headers=h)
    assert p2.status_code == 409 and p2.json()["error"]["code"] == "ticket_not_active"
    fresh = client.get(f"/v1/gates/keys", headers=gh).json()
    assert t2["ticket_id"] in fresh["revoked_tickets"]
    from ticketing.qr import IssuerKeys

    # a code made before the refund (e.g. by an offline phone) is refused online too
    issuer = IssuerKeys(app.state.settings.secret("issuer_keys"))
    old, _ = issuer.rotating_qr(t2["ticket_id"], now=app.state.clock.now, ttl_s=30)
    assert client.post("/v1/gates/validate", headers=gh, json={**body, "payload": old}).json()["reason"] == "revoked"
    got = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()
    assert got["status"] == "partially_refunded"
    assert [t["status"] for t in got["tickets"]] == ["used", "refunded"]


def test_stripe_order_creation_is_idempotent_at_stripe_too(xrl, make_user):
    client, app, fake = xrl
    h = _login(client, make_user)
    it = plan(client, "hk-xrl:WEK_pf", "hk-xrl:SZB_pf", app.state.clock.now)[0]
    r = client.post("/v1/offers", headers=h, json={"itinerary": it, "travelers": [{"rider_category": "child"}]})
    assert r.json()["total"] == {"amount": 4400, "currency": "HKD"}
    child = traveler("陈小小", "child", id_number="81001234", id_type="taiwan_permit", birth_date="2018-05-01")
    body = {"offer_id": r.json()["offer_id"], "travelers": [child]}
    hk = dict(h, **{"Idempotency-Key": "pay-once"})
    a = client.post("/v1/orders", headers=hk, json=body).json()
    b = client.post("/v1/orders", headers=hk, json=body).json()
    assert a["payment"]["provider_ref"] == b["payment"]["provider_ref"]
    assert sum(1 for path, key in fake.requests if key == f"pi-{a['order_id']}") == 1
    # the sandbox is not available when Stripe is configured
    r = client.post(f"/v1/payments/sandbox/{a['order_id']}/confirm", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "sandbox_disabled"
