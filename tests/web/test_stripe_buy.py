"""The buy page with Stripe configured, in a real headless Chromium, as far as it goes without the network.

The server's Stripe is the local Stripe-speaking server (tests/stripe_server.py) driven by the real SDK.
Stripe.js itself comes only from https://js.stripe.com, which is unreachable here, so:

- one run lets the browser try the real URL (aborted: no network): the page says the payment form could
  not be loaded, keeps the order and its payment container, and never falls back to the sandbox;
- one run answers that URL with a stand-in implementing the few calls the page makes (``Stripe(pk)``,
  ``elements({clientSecret})``, ``create("payment").mount(...)``, ``confirmPayment({redirect:
  "if_required"})``): the test checks the page hands Stripe.js the publishable key and the order's own
  PaymentIntent client_secret, then plays Stripe's part (the intent succeeds, a signed webhook arrives)
  and the page shows the order ticketed.

What this cannot test offline: Stripe's own card form (its iframes), 3-D Secure, and the real
``confirmPayment`` talking to api.stripe.com.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.stripe_server import on_stripe, sign_payload, stripe_server  # noqa: F401
from tests.web.conftest import MOBILE, _clean_settings, assert_accessible, serve_demo
from tests.web.test_passenger import _login, _travel_day
from tests.web.test_wallet_gate import _id_numbers

pytestmark = pytest.mark.browser

WEBHOOK_SECRET = "whsec_test_web"
PUBLISHABLE_KEY = "pk_test_web_local"

STRIPE_JS_STAND_IN = """
window.__stripe = {calls: []};
window.Stripe = function (key, opts) {
  window.__stripe.calls.push(["Stripe", key]);
  return {
    elements(o) {
      window.__stripe.calls.push(["elements", o.clientSecret]);
      return {create(type) {
        window.__stripe.calls.push(["create", type]);
        return {mount(sel) {
          const el = document.querySelector(sel);
          el.setAttribute("data-mounted", type);
          el.textContent = "[Stripe Payment Element stand-in]";
        }};
      }};
    },
    async confirmPayment(o) {
      window.__stripe.calls.push(["confirmPayment", o.redirect]);
      return {paymentIntent: {status: "processing"}};
    },
  };
};
"""


@pytest.fixture(scope="module")
def stripe_demo(backend: dict, tmp_path_factory: pytest.TempPathFactory, stripe_server) -> Iterator[Any]:  # noqa: ANN001, F811
    fake, base = stripe_server
    settings = on_stripe(_clean_settings(backend, tmp_path_factory.mktemp("web-stripe") / "data"), base,
                         WEBHOOK_SECRET, stripe_publishable_key=PUBLISHABLE_KEY)
    with serve_demo(settings) as server:
        server.fake_stripe = fake
        yield server


def _to_payment(page, demo) -> None:  # noqa: ANN001
    """Signed in, a journey chosen (from the API), a traveller named, priced, and the first press of 'pay'."""
    _login(page, demo)
    page.wait_for_url("**/app/passenger")
    origin = httpx.get(f"{demo.base}/v1/stops", params={"q": "人民广场"}, timeout=30).json()["stops"][0]["stop_id"]
    depart = dt.datetime.combine(_travel_day(), dt.time(7, 0), dt.timezone(dt.timedelta(hours=8)))
    itinerary = httpx.get(f"{demo.base}/v1/plan", params={"from": origin, "to": "yx-coach:QSX",
                                                         "depart_at": depart.isoformat()}, timeout=60).json()["itineraries"][0]
    page.evaluate("it => sessionStorage.setItem('maas.itinerary', JSON.stringify({itinerary: it, rider: 'adult'}))",
                  itinerary)
    page.goto("/app/passenger/buy")
    page.locator("#name-0").fill("王小明")
    page.locator("#idnum-0").fill(next(iter(_id_numbers().values())))
    page.get_by_role("button", name="确认乘车人并报价").click()
    page.locator("#offer-total").wait_for()
    expect(page.get_by_text("本服务器配置了 Stripe：支付将由 Stripe 完成。")).to_be_visible()
    page.get_by_role("button", name="使用 Stripe 支付").click()


def test_the_stripe_path_is_chosen_only_when_configured(stripe_demo) -> None:  # noqa: ANN001
    from pydantic import SecretStr

    from maas.web.routes import stripe_publishable_key

    on = httpx.get(f"{stripe_demo.base}/app/passenger/buy", timeout=30)
    assert "https://js.stripe.com" in on.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert PUBLISHABLE_KEY in on.text and "sk_test" not in on.text  # the publishable key only, never the secret
    assert "js.stripe.com" not in httpx.get(f"{stripe_demo.base}/app/passenger", timeout=30).headers[
        "content-security-policy"]  # other pages keep the strict policy
    settings = stripe_demo.app.state.settings
    assert stripe_publishable_key(settings) == PUBLISHABLE_KEY
    # the demo (no Stripe secret key), or a publishable key alone: the sandbox path, no Stripe.js
    assert stripe_publishable_key(settings.model_copy(update={"stripe_api_key": None})) is None
    assert stripe_publishable_key(settings.model_copy(update={"stripe_publishable_key": None,
                                                              "stripe_api_key": SecretStr("sk_test_x")})) is None


@pytest.fixture
def phone(chromium, stripe_demo) -> Iterator[Any]:  # noqa: ANN001
    """A phone-sized page on the Stripe-configured server (Asia/Shanghai), failing the test on a script error."""
    context = chromium.new_context(base_url=stripe_demo.base, locale="zh-CN", timezone_id="Asia/Shanghai", **MOBILE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"errors in the page: {errors}"


def test_offline_stripe_js_shows_a_readable_error_and_keeps_the_payment(phone, stripe_demo, shots) -> None:  # noqa: ANN001
    page = phone
    page.context.route("https://js.stripe.com/**", lambda route: route.abort("internetdisconnected"))
    _to_payment(page, stripe_demo)
    expect(page.get_by_role("alert")).to_have_text("无法加载 Stripe 支付组件（js.stripe.com），请检查网络后重试。")
    expect(page.get_by_role("region", name="Stripe 支付表单")).to_be_visible()
    assert page.locator("#stripe-payment").get_attribute("data-client-secret-loaded") == "true"
    expect(page.get_by_role("button", name="支付（沙箱）")).to_have_count(0)  # never the sandbox
    page.screenshot(path=str(shots / "passenger-pay-stripe-offline.png"), full_page=True)


def test_stripe_payment_element_gets_the_orders_client_secret_and_the_webhook_tickets_it(
        phone, stripe_demo, shots) -> None:  # noqa: ANN001
    page, fake = phone, stripe_demo.fake_stripe
    page.context.route("https://js.stripe.com/v3/**", lambda route: route.fulfill(
        status=200, content_type="application/javascript", body=STRIPE_JS_STAND_IN))
    _to_payment(page, stripe_demo)
    element = page.locator("#stripe-payment-element")
    expect(element).to_have_attribute("data-mounted", "payment")
    calls = page.evaluate("window.__stripe.calls")
    assert calls[0] == ["Stripe", PUBLISHABLE_KEY]
    client_secret = calls[1][1]
    (intent,) = [pi for pi in fake.payment_intents.values() if pi["client_secret"] == client_secret]
    assert calls[1:] == [["elements", client_secret], ["create", "payment"]]
    page.screenshot(path=str(shots / "passenger-pay-stripe.png"), full_page=True)
    assert_accessible(page, "the buy page with the Stripe payment form")

    page.get_by_role("button", name="使用 Stripe 支付").click()
    page.wait_for_function("window.__stripe.calls.some(c => c[0] === 'confirmPayment' && c[1] === 'if_required')")
    # Stripe's part: the intent succeeds and a signed webhook tells the server
    payload = fake.event("payment_intent.succeeded", fake.succeed(intent["id"]))
    r = httpx.post(f"{stripe_demo.base}/v1/payments/stripe/webhook", content=payload.encode(), timeout=30,
                   headers={"Stripe-Signature": sign_payload(payload, WEBHOOK_SECRET),
                            "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    page.get_by_text("支付成功，车票已出。").wait_for()
    assert page.locator("#order-status").inner_text() == "已出票"
