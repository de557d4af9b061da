"""Issue 12, item 1: a refund is never paid out without a durable record, and never twice.

The attack: fail the refund request at every step (before the provider call, after it, in the ledger
posting, before the commit), then retry it, let the reconciliation job run, or let Stripe's webhook
arrive. Real Stripe SDK against the local Stripe server, demo city (bus + metro + coach), both
backends. After every path the money Stripe paid back equals the refunds we recorded and the
ledger's refunds account, and exactly one Stripe refund exists per refund intent.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.security.refund_support import (  # noqa: F401
    app,
    buy_and_pay,
    provider_refunded,
    recorded,
    stripe_server,
    webhook,
)
from tests.ticketing_support import city, demo, journey, traveler  # noqa: F401

MEASURED: list[str] = []


class Crash(RuntimeError):
    pass


def _fail_once_at(monkeypatch: pytest.MonkeyPatch, stage: str) -> dict[str, int]:
    """Makes the next refund fail at ``stage`` (once); returns a counter of the failures raised."""
    fired = {"n": 0}
    if stage == "ledger":
        from clearing import interface

        real = interface.record_refund

        def failing(session, refund):  # noqa: ANN001, ANN202
            if not fired["n"]:
                fired["n"] += 1
                raise Crash("ledger unavailable")
            return real(session, refund)

        monkeypatch.setattr(interface, "record_refund", failing)
        return fired
    from ticketing import refunds

    def checkpoint(at: str) -> None:
        if at == stage and not fired["n"]:
            fired["n"] += 1
            raise Crash(f"crash at {at}")

    monkeypatch.setattr(refunds, "_checkpoint", checkpoint)
    return fired


# Every failure point with every way of recovering, but a webhook after a crash before Stripe was called
# (there is no Stripe refund, so no webhook to wait for).
@pytest.mark.parametrize(("stage", "recovery"), [
    (stage, recovery) for stage in ("before_provider", "after_provider", "ledger", "before_commit")
    for recovery in ("retry", "job", "webhook") if (stage, recovery) != ("before_provider", "webhook")])
def test_injected_failures_never_pay_twice_or_unrecorded(client, login, engine, demo, app, stripe_server,
                                                         monkeypatch, stage, recovery):  # noqa: ANN001
    fake, _base = stripe_server
    _uid, h = login("passenger")
    _offer, order = buy_and_pay(client, fake, h, journey(client, demo), [traveler("张三"), traveler("李四")])
    pi = order["payment"]["provider_ref"]
    coach = order["tickets"][0]["legs"][2]
    url = f"/v1/orders/{order['order_id']}/refunds"

    fired = _fail_once_at(monkeypatch, stage)
    r = client.post(url, headers=h, json={"leg_ids": [coach["leg_id"]]})
    assert r.status_code == 500 and fired["n"] == 1
    mid = recorded(engine, order["order_id"])
    # whatever failed, the money that left is covered by a durable intent, and nothing was booked twice
    assert provider_refunded(fake, pi) <= mid["succeeded"] + mid["pending"]
    assert mid["rows"] == 1 and mid["ledger"] == mid["succeeded"]
    if stage != "before_provider":
        assert provider_refunded(fake, pi) == mid["pending"] > 0  # paid, not yet booked: the crash's window

    if recovery == "retry":
        r = client.post(url, headers=h, json={"leg_ids": [coach["leg_id"]]})
        assert r.status_code == 201, r.text
    elif recovery == "job":
        from maas.jobs import run_jobs

        out = run_jobs(app.state.settings, "ticketing.reconcile_refunds", now=demo.now + dt.timedelta(minutes=2))
        assert out["ticketing.reconcile_refunds"] == "1 succeeded"
    else:
        (re,) = [x for x in fake.refunds.values() if x["payment_intent"] == pi]
        charge = {"id": "ch_" + pi[3:], "object": "charge", "payment_intent": pi, "amount_refunded": re["amount"],
                  "currency": "cny", "refunds": {"object": "list", "data": [re]}}
        assert webhook(client, fake, "charge.refunded", charge).json()["outcome"] == "refunds_confirmed:1"

    # a second retry (and a duplicate job run) change nothing
    again = client.post(url, headers=h, json={"leg_ids": [coach["leg_id"]]})
    assert again.status_code == 201 and again.json()["status"] == "succeeded"
    from maas.jobs import run_jobs

    assert run_jobs(app.state.settings, "ticketing.reconcile_refunds",
                    now=demo.now + dt.timedelta(minutes=5))["ticketing.reconcile_refunds"] == "no pending refunds"
    end = recorded(engine, order["order_id"])
    paid_back = provider_refunded(fake, pi)
    assert [x["metadata"]["refund_id"] for x in fake.refunds.values() if x["payment_intent"] == pi] \
        == [again.json()["refund_id"]]
    assert paid_back == end["succeeded"] == end["ledger"] == again.json()["amount"]["amount"] > 0
    assert end["pending"] == 0 and end["rows"] == 1
    got = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()
    assert got["status"] == "partially_refunded"
    assert got["tickets"][0]["legs"][2]["status"] == "refunded"
    assert got["tickets"][0]["legs"][2]["price"]["amount"] == again.json()["amount"]["amount"] \
        + again.json()["fee"]["amount"]
    MEASURED.append(f"{stage}/{recovery}: stripe {paid_back}, recorded {end['succeeded']}, ledger {end['ledger']}")
    print(MEASURED[-1])


def test_provider_refusal_gives_the_legs_back(client, login, engine, demo, stripe_server, monkeypatch):  # noqa: ANN001
    fake, _base = stripe_server
    _uid, h = login("passenger")
    _offer, order = buy_and_pay(client, fake, h, journey(client, demo), [traveler("张三")])
    legs = [x["leg_id"] for x in order["tickets"][0]["legs"]]
    real = fake.handle
    monkeypatch.setattr(fake, "handle", lambda path, p: (400, {"error": {
        "type": "invalid_request_error", "message": "refused"}}) if path == "/v1/refunds" else real(path, p))
    url = f"/v1/orders/{order['order_id']}/refunds"
    r = client.post(url, headers=h, json={"leg_ids": legs})
    assert r.status_code == 502 and r.json()["error"]["code"] == "payment_provider_error"
    got = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()
    assert {x["status"] for x in got["tickets"][0]["legs"]} == {"unused"} and got["status"] == "ticketed"
    assert got["tickets"][0]["status"] == "active"
    assert [x["status"] for x in got["refunds"]] == ["failed"]
    monkeypatch.setattr(fake, "handle", real)
    r = client.post(url, headers=h, json={"leg_ids": legs})
    assert r.status_code == 201 and r.json()["status"] == "succeeded"
    end = recorded(engine, order["order_id"])
    assert provider_refunded(fake, order["payment"]["provider_ref"]) == end["succeeded"] == end["ledger"]


def test_concurrent_identical_refunds_pay_once(client, login, engine, demo, stripe_server):  # noqa: ANN001
    from concurrent.futures import ThreadPoolExecutor

    fake, _base = stripe_server
    _uid, h = login("passenger")
    _offer, order = buy_and_pay(client, fake, h, journey(client, demo), [traveler("张三")])
    legs = [x["leg_id"] for x in order["tickets"][0]["legs"]]
    url = f"/v1/orders/{order['order_id']}/refunds"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: client.post(url, headers=h, json={"leg_ids": legs}), range(8)))
    assert {r.status_code for r in results} == {201}, [r.text for r in results]
    assert len({r.json()["refund_id"] for r in results}) == 1
    end = recorded(engine, order["order_id"])
    pi = order["payment"]["provider_ref"]
    assert len([x for x in fake.refunds.values() if x["payment_intent"] == pi]) == 1
    assert provider_refunded(fake, pi) == end["succeeded"] == end["ledger"] == results[0].json()["amount"]["amount"]


def test_a_late_payment_refund_survives_a_failed_commit(client, login, engine, demo, stripe_server,
                                                        monkeypatch):  # noqa: ANN001
    """A payment arriving for a cancelled order is refunded whole inside the webhook; if that transaction
    fails after Stripe refunded, Stripe delivers the event again: the same refund id (idempotency key)
    means one Stripe refund and one recorded refund."""
    from tests.ticketing_support import buy

    fake, _base = stripe_server
    _uid, h = login("passenger")
    _offer, order = buy(client, h, journey(client, demo), [traveler("张三")])
    assert client.post(f"/v1/orders/{order['order_id']}/cancel", headers=h).json()["status"] == "cancelled"
    pi = order["payment"]["provider_ref"]
    from maas import audit

    real, fired = audit.record, {"n": 0}

    def failing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not fired["n"]:
            fired["n"] += 1
            raise Crash("commit lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(audit, "record", failing)
    payload_obj = fake.succeed(pi)
    event = fake.event("payment_intent.succeeded", payload_obj, "evt_late_1")
    from tests.security.refund_support import WEBHOOK_SECRET
    from tests.stripe_server import sign_payload

    def deliver():  # noqa: ANN202
        return client.post("/v1/payments/stripe/webhook", content=event.encode(), headers={
            "Stripe-Signature": sign_payload(event, WEBHOOK_SECRET), "Content-Type": "application/json"})

    assert deliver().status_code == 500 and fired["n"] == 1
    assert provider_refunded(fake, pi) == order["total"]["amount"] and recorded(engine, order["order_id"])["rows"] == 0
    r = deliver()  # Stripe retries the webhook
    assert r.status_code == 200 and r.json()["outcome"] == "refunded_late_payment", r.text
    assert len([x for x in fake.refunds.values() if x["payment_intent"] == pi]) == 1
    end = recorded(engine, order["order_id"])
    assert provider_refunded(fake, pi) == end["succeeded"] == order["total"]["amount"] and end["rows"] == 1
