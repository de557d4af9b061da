"""Several payment rails in one deployment (issue 16 item 3), shown on Stripe (real SDK, local server)
and the sandbox side by side on the demo city: an order names its rail, nothing crosses rails, a lost
notification is recovered by asking the provider, a closed payment gives the seats back, and the
provider's bill is matched line by line with our records.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from tests.stripe_server import on_stripe, stripe_server  # noqa: F401
from tests.ticketing_support import buy, city, demo, journey, traveler  # noqa: F401

WEBHOOK_SECRET = "whsec_test_" + "rails"


@pytest.fixture
def settings(settings, stripe_server):  # noqa: ANN001, ANN201
    _fake, base = stripe_server
    return on_stripe(settings, base, WEBHOOK_SECRET, sandbox_payments=True)


def _occupied(app, offer_id: str) -> int:  # noqa: ANN001
    from maas.db import session_scope
    from maas.journeys import now
    from ticketing import seats
    from ticketing.models import Offer

    with session_scope(app.state.engine) as s:
        offer = s.get(Offer, offer_id)
        keys = sorted({h["key"] for h in offer.holds})
    return sum(seats.occupied(app.state.redis, key=k, now=now(app)) for k in keys)


def test_the_deployment_says_which_rails_an_order_may_name(client, demo, login):  # noqa: ANN001
    assert client.get("/v1/payments/methods").json() == {"methods": ["stripe", "sandbox"], "default": "stripe"}
    _, h = login()
    r = client.post("/v1/offers", headers=h, json={"itinerary": journey(client, demo),
                                                    "travelers": [{"rider_category": "adult"}]})
    r = client.post("/v1/orders", headers=h, json={"offer_id": r.json()["offer_id"], "travelers": [traveler()],
                                                   "payment_method": "wechat", "payer_id": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "payment_method_unavailable" and err["details"]["available"] == ["stripe", "sandbox"]
    r = client.post("/v1/orders", headers=h, json={"offer_id": "off_x", "travelers": [traveler()],
                                                   "payment_method": "bitcoin"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_one_rails_confirmation_never_pays_another_rails_order(client, app, demo, login, stripe_server):  # noqa: ANN001
    """The attack: with the sandbox offered beside Stripe, confirm a Stripe order through the sandbox."""
    from maas.db import session_scope
    from maas.journeys import runtime
    from ticketing.payments import SandboxProvider, apply_payment_event, get_payment

    fake, _ = stripe_server
    _, h = login()
    _offer, order = buy(client, h, journey(client, demo), [traveler()], payment_method="stripe")
    assert order["payment"]["payment_method"] == "stripe"
    r = client.post(f"/v1/payments/sandbox/{order['order_id']}/confirm", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "sandbox_disabled"
    # ... nor through the domain call the route makes, with the payment's own reference
    with session_scope(app.state.engine) as s:
        p = get_payment(s, order["order_id"])
        event = SandboxProvider.confirmation(order["order_id"], p.provider_ref, p.amount, p.currency)
        rt = runtime(app)
        assert apply_payment_event(s, event, provider=rt.providers.get("sandbox"), redis_client=app.state.redis,
                                   ledger=rt.ledger, now=demo.now, valid_before_s=7200,
                                   valid_after_s=7200) == "provider_mismatch"
    got = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()
    assert got["status"] == "pending_payment" and got["tickets"] == []
    assert fake.payment_intents[order["payment"]["provider_ref"]]["status"] == "requires_payment_method"

    # the sandbox still pays its own orders in the same deployment
    _offer, own = buy(client, h, journey(client, demo), [traveler("李四")], payment_method="sandbox")
    r = client.post(f"/v1/payments/sandbox/{own['order_id']}/confirm", headers=h)
    assert r.json()["status"] == "ticketed"


def test_a_lost_notification_is_recovered_by_asking_the_provider(client, app, demo, login, stripe_server):  # noqa: ANN001
    fake, _ = stripe_server
    _, h = login()
    _offer, order = buy(client, h, journey(client, demo), [traveler(), traveler("李四")])
    pi = order["payment"]["provider_ref"]
    assert order["payment"]["payment_method"] == "stripe"  # the deployment's default
    r = client.post(f"/v1/orders/{order['order_id']}/payment/sync", headers=h)
    assert r.json()["outcome"] == "open" and r.json()["status"] == "pending_payment"
    fake.succeed(pi)  # the passenger paid; the webhook never arrives
    r = client.post(f"/v1/orders/{order['order_id']}/payment/sync", headers=h)
    assert r.status_code == 200 and r.json()["outcome"] == "ticketed"
    again = client.post(f"/v1/orders/{order['order_id']}/payment/sync", headers=h).json()
    assert again["outcome"] == "succeeded" and again["status"] == "ticketed"
    got = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()
    assert len(got["tickets"]) == 2 and got["payments"][0]["status"] == "succeeded"
    assert got["payments"][0]["paid_at"] is not None
    # someone else's order is not theirs to sync
    _, other = login()
    assert client.post(f"/v1/orders/{order['order_id']}/payment/sync", headers=other).status_code == 404


def test_a_payment_closed_at_the_provider_gives_the_seats_back(client, app, demo, login, stripe_server):  # noqa: ANN001
    fake, _ = stripe_server
    _, h = login()
    offer, order = buy(client, h, journey(client, demo), [traveler(), traveler("李四")])
    held = _occupied(app, offer["offer_id"])
    assert held >= 2
    fake.payment_intents[order["payment"]["provider_ref"]]["status"] = "canceled"  # closed at Stripe
    r = client.post(f"/v1/orders/{order['order_id']}/payment/sync", headers=h).json()
    assert r["outcome"] == "payment_closed" and r["status"] == "cancelled"
    assert _occupied(app, offer["offer_id"]) == held - 2
    got = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()
    assert got["payments"][0]["status"] == "closed" and "client_params" not in got["payments"][0]


def test_cancel_and_expiry_close_the_payment_at_the_provider(client, app, demo, login, stripe_server):  # noqa: ANN001
    from maas.db import session_scope
    from maas.journeys import ClearingLedger, runtime
    from ticketing.payments import query_payments
    from ticketing.tasks import expire_orders

    fake, _ = stripe_server
    _, h = login()
    _offer, order = buy(client, h, journey(client, demo), [traveler()])
    r = client.post(f"/v1/orders/{order['order_id']}/cancel", headers=h).json()
    assert r["status"] == "cancelled" and r["payment"]["status"] == "closed"
    assert fake.payment_intents[order["payment"]["provider_ref"]]["status"] == "canceled"

    _offer, late = buy(client, h, journey(client, demo), [traveler("李四")])
    pi = late["payment"]["provider_ref"]
    later = demo.now + dt.timedelta(hours=2)
    rt = runtime(app)
    with session_scope(app.state.engine) as s:
        assert expire_orders(s, redis_client=app.state.redis, now=later) >= 1
    with session_scope(app.state.engine) as s:
        counts = query_payments(s, rt.providers, redis_client=app.state.redis, ledger=ClearingLedger(), now=later,
                                valid_before_s=7200, valid_after_s=7200)
    assert counts.get("payment_closed", 0) >= 1 and fake.payment_intents[pi]["status"] == "canceled"
    got = client.get(f"/v1/orders/{late['order_id']}", headers=h).json()
    assert got["status"] == "expired" and got["payments"][0]["status"] == "closed"
    with session_scope(app.state.engine) as s:  # nothing left to ask about
        assert query_payments(s, rt.providers, redis_client=app.state.redis, ledger=ClearingLedger(), now=later,
                              valid_before_s=7200, valid_after_s=7200).get("payment_closed", 0) == 0


def test_a_payment_taken_after_the_order_expired_is_refunded_in_full(client, app, demo, login, stripe_server):  # noqa: ANN001
    from maas.db import session_scope
    from maas.journeys import ClearingLedger, runtime
    from ticketing.payments import query_payments
    from ticketing.tasks import expire_orders

    fake, _ = stripe_server
    _, h = login()
    _offer, order = buy(client, h, journey(client, demo), [traveler()])
    pi = order["payment"]["provider_ref"]
    later = demo.now + dt.timedelta(hours=2)
    with session_scope(app.state.engine) as s:
        expire_orders(s, redis_client=app.state.redis, now=later)
    fake.succeed(pi)  # paid in the moment before the close reached Stripe
    with session_scope(app.state.engine) as s:
        counts = query_payments(s, runtime(app).providers, redis_client=app.state.redis, ledger=ClearingLedger(),
                                now=later, valid_before_s=7200, valid_after_s=7200)
    assert counts.get("refunded_late_payment") == 1
    refunded = sum(r["amount"] for r in fake.refunds.values() if r["payment_intent"] == pi)
    assert refunded == order["total"]["amount"]
    got = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()
    assert got["status"] == "expired" and got["tickets"] == []


def test_the_rail_choice_is_refused_where_it_is_not_configured():
    from ticketing.errors import ProviderNotAvailable
    from ticketing.payments import SandboxProvider, make_providers

    assert make_providers(environment="development", configured={}).names == ("sandbox",)
    with pytest.raises(ProviderNotAvailable, match="refused in production"):
        make_providers(environment="production", configured={}, sandbox=True)
    with pytest.raises(ProviderNotAvailable, match="no payment provider"):
        make_providers(environment="production", configured={})
    with pytest.raises(ProviderNotAvailable, match="'wechat' is not configured"):
        make_providers(environment="development", configured={}, default="wechat")
    rails = make_providers(environment="production", configured={"stripe": SandboxProvider()})
    assert rails.names == ("stripe",) and rails.default == "stripe"


def test_the_bill_is_matched_line_by_line(client, app, demo, login, engine):  # noqa: ANN001
    """Two sandbox orders paid, one refunded in part; the bill agrees except for the planted lines."""
    from maas.db import session_scope
    from ticketing.bills import day_window, reconcile_lines
    from ticketing.models import Payment, Refund
    from ticketing.payments import BillLine

    _, h = login()
    orders = []
    for name in ("张三", "李四", "王五"):
        _offer, order = buy(client, h, journey(client, demo), [traveler(name)], payment_method="sandbox")
        assert client.post(f"/v1/payments/sandbox/{order['order_id']}/confirm", headers=h).json()["status"] == \
            "ticketed"
        orders.append(order)
    legs = client.get(f"/v1/orders/{orders[0]['order_id']}", headers=h).json()["tickets"][0]["legs"]
    refund = client.post(f"/v1/orders/{orders[0]['order_id']}/refunds", headers=h,
                         json={"leg_ids": [legs[-1]["leg_id"]]}).json()
    assert refund["status"] == "succeeded" and refund["amount"]["amount"] > 0
    with session_scope(engine) as s:
        pays = {p.order_id: p for p in s.exec(select(Payment)).all()}
        day = pays[orders[0]["order_id"]].paid_at.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
        start, _end = day_window(day)
        p0, p1, p2 = (pays[o["order_id"]] for o in orders)
        r0 = s.get(Refund, refund["refund_id"])
        at = start + dt.timedelta(hours=3)
        lines = [
            BillLine(line=2, kind="payment", payment_ref=p0.provider_ref, amount=p0.amount, currency="CNY", at=at),
            BillLine(line=3, kind="payment", payment_ref=p1.provider_ref, amount=p1.amount - 1, currency="CNY",
                     at=at),  # planted: one fen short
            BillLine(line=4, kind="refund", payment_ref=p0.provider_ref, refund_id=r0.refund_id, amount=r0.amount,
                     currency="CNY", at=at),
            BillLine(line=5, kind="payment", payment_ref="sbx_pi_ord_stranger", amount=500, currency="CNY", at=at),
            # p2 is not on the bill: planted missing payment
        ]
        report = reconcile_lines(s, provider="sandbox", day=day, lines=lines)
    found = [(m.code, m.line) for m in report.mismatches]
    assert found == [("amount_mismatch", 3), ("unknown_payment", 5), ("missing_payment", None)]
    assert report.mismatches[0].ours == p1.amount and report.mismatches[0].theirs == p1.amount - 1
    assert report.mismatches[2].payment_ref == p2.provider_ref
    assert report.matched == 2 and not report.ok
    assert report.our_total == {"CNY": p0.amount + p1.amount + p2.amount - r0.amount}
    assert report.to_dict()["mismatches"][0]["line"] == 3


def test_a_half_configured_rail_stops_start_up_with_one_line_per_missing_setting(tmp_path):  # noqa: ANN001
    from maas.settings import SettingsError, load_settings

    with pytest.raises(SettingsError) as exc:
        load_settings(alipay_app_id="2021000000000000", alipay_notify_url="http://pay.example/notify",
                      environment="development")
    assert exc.value.lines == [
        "setting ALIPAY_APP_PRIVATE_KEY is required when ALIPAY_APP_ID is set (Alipay)",
        "setting ALIPAY_PUBLIC_KEY is required when ALIPAY_APP_ID is set (Alipay)"]
    with pytest.raises(SettingsError) as exc:
        load_settings(wechat_pay_mchid="1900000109")
    assert any("WECHAT_PAY_APIV3_KEY" in line for line in exc.value.lines)
    assert any("WECHAT_PAY_PUBLIC_KEY" in line for line in exc.value.lines)
    # docker-compose passes unset variables as empty strings: the rail stays off, the default unset
    s = load_settings(wechat_pay_mchid="", alipay_app_id=" ", default_payment_method="", data_dir=tmp_path)
    assert s.wechat_pay_mchid is None and s.alipay_app_id is None and s.default_payment_method is None
