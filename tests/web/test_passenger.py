"""The passenger H5 in a real headless Chromium on a phone-sized screen: sign in, plan, buy with the sandbox,
open the ticket, decode its on-screen QR from a screenshot and have a gate admit it exactly once, refund
the rest with the fee shown first."""

from __future__ import annotations

import datetime as dt
import io
import re

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.web.conftest import assert_accessible

pytestmark = pytest.mark.browser

VALID_ID = "11010519491231002X"  # GB 11643 check digit X
BAD_ID = "110105194912310021"


def _login(page, demo, role: str = "passenger") -> None:  # noqa: ANN001
    page.goto("/app/login")
    page.get_by_label("手机号").fill(demo.account(role)["phone"])
    page.get_by_label("密码").fill(demo.password)
    page.get_by_role("button", name="登录").click()


def _pick_stop(page, field: str, typed: str, option: str) -> None:  # noqa: ANN001
    page.locator(f"#{field}-input").fill(typed)
    page.locator(f"#{field}-list").get_by_role("option", name=option, exact=True).click()
    assert page.locator(f"#{field}-input").input_value() == option


def test_language_switch_and_wrong_password_shows_readable_error(mobile_page, demo, shots) -> None:  # noqa: ANN001
    page = mobile_page
    page.goto("/app/login")
    assert page.get_by_role("heading", level=1).inner_text() == "登录"
    page.locator("#lang-switch").click()
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    page.goto("/app/login")  # the choice is kept (cookie)
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    page.get_by_label("Phone number").fill(demo.account("passenger")["phone"])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong phone number or password."
    page.screenshot(path=str(shots / "login-en.png"))
    assert_accessible(page, "the sign-in page")
    page.goto("/app/login?lang=zh-CN")
    assert page.get_by_role("heading", level=1).inner_text() == "登录"


def test_passenger_plans_buys_opens_ticket_gate_admits_once_and_refunds(mobile_page, chromium, demo, shots,
                                                                          shared_data) -> None:  # noqa: ANN001
    import zxingcpp

    page = mobile_page
    _login(page, demo)
    page.wait_for_url("**/app/passenger")

    _pick_stop(page, "from", "人民广场", "人民广场")
    _pick_stop(page, "to", "青石", "青石县汽车站")
    page.locator("#when-input").fill(f"{_travel_day().isoformat()}T07:00")
    page.get_by_role("button", name="查询").click()
    first = page.get_by_test_id("itinerary-0")
    first.wait_for()
    assert re.search(r"¥\d+\.\d\d", first.locator(".fare").inner_text())
    assert "客运班车" in first.inner_text()  # the coach leg, in words
    page.wait_for_function("document.querySelectorAll('#map path.leaflet-interactive').length > 0")
    page.screenshot(path=str(shots / "passenger-plan.png"), full_page=True)
    assert_accessible(page, "the planner with results")

    # the cheapest option asks the fare-aware search
    page.get_by_label("最便宜").check()
    page.get_by_role("button", name="查询").click()
    page.get_by_test_id("itinerary-0").wait_for()

    page.get_by_test_id("itinerary-0").get_by_role("button", name="购买此行程").click()
    page.wait_for_url("**/app/passenger/buy")
    page.get_by_label("真实姓名").fill("王小明")
    page.get_by_label("证件号码").fill(BAD_ID)
    expect(page.get_by_text("身份证号码无效（校验位不符）")).to_be_visible()  # inline, before any request
    page.get_by_label("证件号码").fill(VALID_ID)
    expect(page.get_by_text("身份证号码校验通过")).to_be_visible()
    expect(page.get_by_text("身份证号码无效（校验位不符）")).to_be_hidden()
    page.get_by_role("button", name="确认乘车人并报价").click()
    total = page.locator("#offer-total")
    total.wait_for()
    assert re.fullmatch(r"¥\d+\.\d\d", total.inner_text())
    page.screenshot(path=str(shots / "passenger-buy.png"), full_page=True)
    assert_accessible(page, "the purchase page")
    page.get_by_role("button", name="支付（沙箱）").click()
    page.get_by_text("支付成功，车票已出。").wait_for()
    assert page.locator("#order-status").inner_text() == "已出票"
    # the journey is tomorrow (or the day after): from here on the server's clock is ten minutes before the first ride
    tickets = _api_tickets(page, demo)
    first_departure = dt.datetime.fromisoformat(min(leg["valid_from"] for leg in tickets[0]["legs"]))
    _shift_clock(demo, first_departure + dt.timedelta(hours=2, minutes=-10))  # valid_from is 2 h before
    page.get_by_role("link", name="查看我的车票").click()
    page.wait_for_url("**/app/passenger/tickets")

    ticket = page.locator("article.ticket").first
    ticket.wait_for()
    assert "王*" in ticket.inner_text()  # the traveller, masked
    assert "→ 青石县汽车站" in ticket.inner_text()  # legs by stop name
    assert VALID_ID not in page.content()  # the full ID number is never on screen
    _enrol_face_and_withdraw(page, ticket, demo, shared_data, shots)
    ticket.get_by_role("button", name="出示乘车码").click()
    qr = ticket.get_by_test_id("ticket-qr")
    page.wait_for_function("(() => { const i = document.querySelector('[data-testid=ticket-qr]');"
                           " return i && i.complete && i.naturalWidth > 0; })()")
    page.screenshot(path=str(shots / "passenger-ticket.png"), full_page=True)
    assert_accessible(page, "the ticket wallet")
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))
    assert len(decoded) == 1, "the on-screen QR must decode"
    payload = decoded[0].text

    # the gate simulator (a gate of the first ride's operator, at its boarding stop) admits it once, and only once
    legs = tickets[0]["legs"]
    gate = demo.gate(legs[0]["operator_id"])
    _gate_admits_once(chromium, demo, gate, legs[0]["from_stop_id"], payload, shots)

    # refund the legs not yet ridden: the fee is shown before confirming
    page.reload()
    ticket = page.locator("article.ticket").first
    ticket.wait_for()
    expect(ticket.locator(".legs .badge.st-used")).to_have_count(1)
    if len(legs) > 1:
        ticket.get_by_role("button", name="退票").click()
        ticket.get_by_role("button", name="计算退款").click()
        quote = page.locator("#refund-quote")
        quote.wait_for()
        assert re.search(r"退款金额: ¥\d+\.\d\d · 手续费: ¥\d+\.\d\d", quote.inner_text())
        page.screenshot(path=str(shots / "passenger-refund.png"), full_page=True)
        ticket.get_by_role("button", name="确认退票").click()
        page.get_by_role("status").wait_for()
        assert "退票已受理" in page.get_by_role("status").inner_text()
        expect(page.locator("article.ticket").first.locator(".legs .badge.st-refunded")).to_have_count(len(legs) - 1)


def _enrol_face_and_withdraw(page, ticket, demo, shared_data, shots) -> None:  # noqa: ANN001
    """The consent screen says what is stored, for how long and how to withdraw; enrolment needs the box ticked."""
    from tests.face_support import caching_encoder

    demo.app.state.face_encoder = caching_encoder()  # dlib, its weights loaded once per test process
    ticket.get_by_role("button", name="人脸登记").click()
    consent = ticket.locator("#face-consent")
    for words in ("保存什么", "照片本身不保存", "保存多久", "天自动删除", "如何撤回"):
        expect(consent).to_contain_text(words)
    ticket.get_by_label("人脸照片（上传或拍照）").set_input_files(
        str(shared_data / "faces" / "face_recognition" / "obama.jpg"))
    enrol = ticket.get_by_role("button", name="同意并登记")
    expect(enrol).to_be_disabled()  # no consent, no enrolment
    ticket.get_by_label("我已阅读以上说明，单独同意处理本人人脸信息").check()
    enrol.click()
    expect(ticket.locator("#face-status")).to_contain_text("人脸已登记", timeout=60_000)
    page.screenshot(path=str(shots / "passenger-face.png"), full_page=True)
    assert_accessible(page, "the face enrolment screen")
    ticket.get_by_role("button", name="删除人脸并撤回同意").click()
    expect(ticket.locator("#face-status")).to_contain_text("人脸模板已删除")
    ticket.get_by_role("button", name="取消").click()


def _gate_admits_once(chromium, demo, gate, stop_id: str, payload: str, shots) -> None:  # noqa: ANN001
    context = chromium.new_context(base_url=demo.base, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto("/app/gate")
        page.get_by_label("闸机编号").fill(gate["gate_id"])
        page.get_by_label("设备令牌").fill(gate["token"])
        page.locator("#stop-input").fill(stop_id)
        page.locator("#stop-list").get_by_role("option").first.click()
        page.get_by_label("二维码内容").fill(payload)
        page.get_by_role("button", name="扫码验票").click()
        expect(page.locator("#gate-result")).to_contain_text("通过")
        assert page.locator("#gate-result").inner_text().count("准入行程段") == 1
        page.screenshot(path=str(shots / "gate-accepted.png"), full_page=True)
        page.get_by_label("二维码内容").fill(payload)
        page.get_by_role("button", name="扫码验票").click()
        expect(page.locator("#gate-result")).to_contain_text("拒绝")
        expect(page.locator("#gate-result")).to_contain_text("原因: 该行程段已使用过")
        page.screenshot(path=str(shots / "gate-rejected.png"), full_page=True)
        assert_accessible(page, "the gate simulator")

        # offline: the scan is recorded, then uploaded; the server sees it was used already
        page.get_by_label("离线模式").check()
        page.get_by_label("二维码内容").fill(payload)
        page.get_by_role("button", name="扫码验票").click()
        expect(page.get_by_text("已离线记录 1 条")).to_be_visible()
        page.get_by_label("离线模式").uncheck()
        page.get_by_role("button", name="上传离线记录").click()
        expect(page.locator("#taps-result")).to_contain_text("已上传")
        expect(page.get_by_text("已离线记录 0 条")).to_be_visible()
    finally:
        context.close()


def _travel_day() -> dt.date:
    """Tomorrow in the city (UTC+8), or the day after when tomorrow is the demo feeds' holiday (no service)."""
    from maas.demo import demo_holiday

    day = (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=1)).date()
    return day + dt.timedelta(days=1) if day == demo_holiday(dt.date.today()) else day


@pytest.fixture(autouse=True)
def _real_clock(demo):  # noqa: ANN001, ANN202
    yield
    demo.app.state.clock = None


def _shift_clock(demo, at: dt.datetime) -> None:  # noqa: ANN001
    """The server's clock runs on from ``at`` (tickets for a later day become valid now)."""
    started = dt.datetime.now(dt.UTC)
    demo.app.state.clock = lambda: at + (dt.datetime.now(dt.UTC) - started)


def _api_tickets(page, demo) -> list[dict]:  # noqa: ANN001
    token = page.evaluate("JSON.parse(sessionStorage.getItem('maas.session')).access_token")
    r = httpx.get(f"{demo.base}/v1/tickets", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return r.json()["tickets"]
