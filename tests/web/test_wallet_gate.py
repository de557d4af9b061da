"""The ticket wallet's rotating QR and the gate simulator's face and ID checks, in a real headless Chromium.

One order of three travellers is bought over the API (the purchase pages have their own test): one
traveller's ticket is shown as a QR that rotates on screen, one enters with their face, one with their
ID number. The browser's clock is Playwright's (``page.clock``): the wallet's countdown and rotation run
on it, so nothing waits for thirty real seconds; the server's clock is moved past the first code's
expiry before the wallet rotates, so the screenshot of the old code is refused as stale.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.ticketing_support import resident_id
from tests.web.conftest import assert_accessible
from tests.web.test_passenger import _login, _real_clock, _shift_clock, _travel_day  # noqa: F401

pytestmark = pytest.mark.browser

QR_TRAVELER, FACE_TRAVELER, ID_TRAVELER = "王小明", "李四", "张三"
_SEQ = itertools.count(100)


def _id_numbers() -> dict[str, str]:
    """Fresh ID numbers per order (an ID number opens the gate for every ticket of its traveller)."""
    return {n: resident_id(seq=str(next(_SEQ))) for n in (QR_TRAVELER, FACE_TRAVELER, ID_TRAVELER)}


def _api(demo, token: str, method: str, path: str, **kw: Any) -> httpx.Response:  # noqa: ANN001
    return httpx.request(method, f"{demo.base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60,
                         **kw)


def _buy_three(demo, token: str, ids: dict[str, str]) -> dict[str, dict]:  # noqa: ANN001
    """An order for three travellers (bus + metro + coach to 青石县), paid with the sandbox: tickets by name."""
    origin = httpx.get(f"{demo.base}/v1/stops", params={"q": "人民广场"}, timeout=30).json()["stops"][0]["stop_id"]
    depart = dt.datetime.combine(_travel_day(), dt.time(7, 0), dt.timezone(dt.timedelta(hours=8)))
    plan = httpx.get(f"{demo.base}/v1/plan", params={"from": origin, "to": "yx-coach:QSX",
                                                    "depart_at": depart.isoformat()}, timeout=60)
    assert plan.status_code == 200, plan.text
    itinerary = plan.json()["itineraries"][0]
    names = [QR_TRAVELER, FACE_TRAVELER, ID_TRAVELER]
    offer = _api(demo, token, "POST", "/v1/offers", json={"itinerary": itinerary,
                                                          "travelers": [{"rider_category": "adult"}] * 3})
    assert offer.status_code == 201, offer.text
    order = _api(demo, token, "POST", "/v1/orders", json={
        "offer_id": offer.json()["offer_id"],
        "travelers": [{"name": n, "id_type": "cn_resident_id", "id_number": ids[n], "rider_category": "adult"}
                      for n in names]})
    assert order.status_code == 201, order.text
    order_id = order.json()["order_id"]
    assert _api(demo, token, "POST", f"/v1/payments/sandbox/{order_id}/confirm").status_code == 200
    tickets = [t for t in _api(demo, token, "GET", "/v1/tickets").json()["tickets"] if t["order_id"] == order_id]
    assert len(tickets) == 3
    by_name = {}
    for n in names:  # masked on the way out ("王*"): the order of travellers is the order of tickets' names
        by_name[n] = next(t for t in tickets if t["traveler"]["name"].startswith(n[0]))
    return by_name


@pytest.fixture
def bought(mobile_page, demo) -> dict[str, Any]:  # noqa: ANN001
    """Signed in on the phone (its clock installed, so the test can move it), three tickets bought."""
    page = mobile_page
    page.clock.install()
    _login(page, demo)
    page.wait_for_url("**/app/passenger")
    token = page.evaluate("JSON.parse(sessionStorage.getItem('maas.session')).access_token")
    ids = _id_numbers()
    tickets = _buy_three(demo, token, ids)
    legs = tickets[QR_TRAVELER]["legs"]
    first_departure = dt.datetime.fromisoformat(min(leg["valid_from"] for leg in legs)) + dt.timedelta(hours=2)
    at = first_departure - dt.timedelta(minutes=10)  # the first ride is valid now on the server
    _shift_clock(demo, at)
    return {"page": page, "token": token, "tickets": tickets, "at": at, "ids": ids}


def _decode_qr(locator) -> str:  # noqa: ANN001
    import zxingcpp

    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(locator.screenshot())))
    assert len(decoded) == 1, "the on-screen QR must decode"
    return decoded[0].text


def _qr_shown(page, ticket_id: str, rotation: int) -> None:  # noqa: ANN001
    page.wait_for_function(
        "([id, n]) => { const i = document.querySelector(`article[data-ticket='${id}'] [data-testid=ticket-qr]`);"
        " return i && Number(i.dataset.rotation) >= n && i.complete && i.naturalWidth > 0; }", arg=[ticket_id, rotation])


def _seconds_left(card) -> int:  # noqa: ANN001
    text = card.locator(".qr-left").inner_text()
    m = re.fullmatch(r"二维码 (\d+) 秒后刷新", text)
    assert m, text
    return int(m.group(1))


def _gate_page(chromium, demo, operator_id: str, stop_id: str):  # noqa: ANN001, ANN202
    """The gate simulator, set up as a gate of ``operator_id`` at ``stop_id``; returns (context, page)."""
    context = chromium.new_context(base_url=demo.base, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(20_000)
    gate = demo.gate(operator_id)
    page.goto("/app/gate")
    page.get_by_label("闸机编号").fill(gate["gate_id"])
    page.get_by_label("设备令牌").fill(gate["token"])
    page.locator("#stop-input").fill(stop_id)
    page.locator("#stop-list").get_by_role("option").first.click()
    return context, page


def test_wallet_qr_rotates_with_a_countdown_and_the_stale_code_is_refused(bought, chromium, demo, shots) -> None:  # noqa: ANN001
    page, ticket = bought["page"], bought["tickets"][QR_TRAVELER]
    page.goto("/app/passenger/tickets")
    card = page.locator(f'article.ticket[data-ticket="{ticket["ticket_id"]}"]')
    card.wait_for()
    card.get_by_role("button", name="出示乘车码").click()
    _qr_shown(page, ticket["ticket_id"], 1)
    qr = card.get_by_test_id("ticket-qr")
    first = _decode_qr(qr)
    ttl = demo.app.state.settings.qr_ttl_s
    left = _seconds_left(card)
    assert 0 < left <= ttl
    page.clock.run_for(5_000)  # the countdown runs on the phone's clock
    assert _seconds_left(card) <= left - 4
    page.screenshot(path=str(shots / "passenger-qr-countdown.png"), full_page=True)
    assert_accessible(page, "the wallet with a QR shown")

    # the server's time passes the first code's expiry (and the gates' clock-skew allowance) ...
    # (the first code was signed at or before the server's "now" read here; it expires ttl seconds later)
    _shift_clock(demo, demo.app.state.clock() + dt.timedelta(seconds=ttl + 15))
    # ... and the phone's: the wallet swaps the code a few seconds before it expires
    page.clock.run_for(ttl * 1000)
    _qr_shown(page, ticket["ticket_id"], 2)
    second = _decode_qr(qr)
    assert second != first, "the code on screen must change when it rotates"
    assert 0 < _seconds_left(card) <= ttl  # a fresh code, counting down again
    page.screenshot(path=str(shots / "passenger-qr-rotated.png"), full_page=True)

    leg = ticket["legs"][0]
    context, gate = _gate_page(chromium, demo, leg["operator_id"], leg["from_stop_id"])
    try:
        result = gate.locator("#gate-result")
        gate.get_by_label("二维码内容").fill(first)  # a screenshot of the old code
        gate.get_by_role("button", name="扫码验票").click()
        expect(result).to_contain_text("拒绝")
        expect(result).to_contain_text("原因: 二维码已过期，请在手机上刷新")
        gate.screenshot(path=str(shots / "gate-stale-qr.png"), full_page=True)
        gate.get_by_label("二维码内容").fill(second)
        gate.get_by_role("button", name="扫码验票").click()
        expect(result).to_contain_text("通过")
        expect(result).to_contain_text(leg["leg_id"])
        gate.get_by_label("二维码内容").fill(second)  # the same fresh code again: the leg is used
        gate.get_by_role("button", name="扫码验票").click()
        expect(result).to_contain_text("原因: 该行程段已使用过")
    finally:
        context.close()


def test_gate_admits_the_enrolled_face_refuses_a_stranger_and_admits_an_id_owner_once(
        bought, chromium, demo, shots, shared_data) -> None:  # noqa: ANN001
    from tests.face_support import caching_encoder, photo_b64

    demo.app.state.face_encoder = caching_encoder()  # dlib, its weights loaded once per test process
    face_ticket, id_ticket = bought["tickets"][FACE_TRAVELER], bought["tickets"][ID_TRAVELER]
    enrol = _api(demo, bought["token"], "POST", f"/v1/travelers/{face_ticket['traveler']['traveler_id']}/face",
                 json={"consent": True, "image": photo_b64(shared_data, "face_recognition/obama.jpg")})
    assert enrol.status_code in (200, 201), enrol.text

    leg = face_ticket["legs"][0]
    context, gate = _gate_page(chromium, demo, leg["operator_id"], leg["from_stop_id"])
    faces = shared_data / "faces" / "face_recognition"
    try:
        result = gate.locator("#gate-result")
        gate.get_by_label("车票编号（人脸核验）").fill(face_ticket["ticket_id"])
        gate.get_by_label("人脸照片").set_input_files(str(faces / "biden.jpg"))  # someone else
        gate.get_by_role("button", name="人脸核验").click()
        expect(result).to_contain_text("拒绝", timeout=60_000)
        expect(result).to_contain_text("原因: 人脸不匹配")
        expect(result).to_contain_text("核验方式: 人脸（1:1 比对）")
        expect(gate.get_by_role("img", name="出示的照片")).to_be_visible()
        gate.screenshot(path=str(shots / "gate-face-rejected.png"), full_page=True)

        gate.get_by_label("人脸照片").set_input_files(str(faces / "obama2.jpg"))  # the traveller, another photo
        gate.get_by_role("button", name="人脸核验").click()
        expect(result).to_contain_text("通过", timeout=60_000)
        expect(result).to_contain_text(leg["leg_id"])
        gate.screenshot(path=str(shots / "gate-face-accepted.png"), full_page=True)
        assert_accessible(gate, "the gate simulator after a face check")

        id_leg = id_ticket["legs"][0]
        gate.get_by_label("身份证号").fill(bought["ids"][ID_TRAVELER])
        gate.get_by_role("button", name="刷身份证").click()
        expect(result).to_contain_text("通过")
        expect(result).to_contain_text("核验方式: 身份证号")
        expect(result).to_contain_text(id_leg["leg_id"])
        gate.screenshot(path=str(shots / "gate-id-accepted.png"), full_page=True)
        gate.get_by_role("button", name="刷身份证").click()  # the same ID again: admitted once only
        expect(result).to_contain_text("拒绝")
        expect(result).to_contain_text("原因: 该行程段已使用过")
        assert bought["ids"][ID_TRAVELER] not in gate.locator("#gate-result").inner_text()
    finally:
        context.close()
    used = {t["ticket_id"]: t for t in _api(demo, bought["token"], "GET", "/v1/tickets").json()["tickets"]}
    assert used[face_ticket["ticket_id"]]["legs"][0]["status"] == "used"
    assert used[id_ticket["ticket_id"]]["legs"][0]["status"] == "used"


def test_passenger_chooses_seats_on_the_coach_and_sees_them_on_the_tickets(mobile_page, demo, shots) -> None:  # noqa: ANN001
    page = mobile_page
    _login(page, demo)
    page.wait_for_url("**/app/passenger")
    token = page.evaluate("JSON.parse(sessionStorage.getItem('maas.session')).access_token")
    origin = httpx.get(f"{demo.base}/v1/stops", params={"q": "人民广场"}, timeout=30).json()["stops"][0]["stop_id"]
    depart = dt.datetime.combine(_travel_day(), dt.time(7, 0), dt.timezone(dt.timedelta(hours=8)))
    itinerary = httpx.get(f"{demo.base}/v1/plan", params={"from": origin, "to": "yx-coach:QSX",
                                                         "depart_at": depart.isoformat()}, timeout=60).json()["itineraries"][0]
    # someone holds a seat on the coach (an offer of its own): it shows taken and cannot be chosen
    other = _api(demo, token, "POST", "/v1/offers", json={"itinerary": itinerary, "travelers": [{"rider_category": "adult"}]})
    assert other.status_code == 201, other.text
    held = next(int(s) for leg in other.json()["legs"] if leg["seats"] for s in leg["seats"])
    page.evaluate("it => sessionStorage.setItem('maas.itinerary', JSON.stringify({itinerary: it, rider: 'adult'}))",
                  itinerary)
    page.goto("/app/passenger/buy")
    ids = _id_numbers()
    page.get_by_role("button", name="添加乘车人").click()
    for i, name in enumerate((QR_TRAVELER, FACE_TRAVELER)):
        page.locator(f"#name-{i}").fill(name)
        page.locator(f"#idnum-{i}").fill(ids[name])
    page.get_by_role("button", name="确认乘车人并报价").click()
    seat_map = page.locator("fieldset.seat-map")
    seat_map.wait_for()
    expect(seat_map).to_contain_text(f"正在为 {QR_TRAVELER} 选座")
    taken = seat_map.locator(f'button[data-seat="{held}"]')
    expect(taken).to_be_disabled()
    expect(taken).to_have_attribute("aria-label", re.compile("已被占用"))
    free = [int(x) for x in seat_map.locator("button.seat.free").evaluate_all("bs => bs.map(b => b.dataset.seat)")]
    first, second = free[-1], free[-2]  # the back row
    seat_map.locator(f'button[data-seat="{first}"]').click()
    expect(seat_map.locator(f'button[data-seat="{first}"]')).to_have_attribute("aria-pressed", "true")
    expect(seat_map).to_contain_text(f"正在为 {FACE_TRAVELER} 选座")
    seat_map.locator(f'button[data-seat="{second}"]').click()
    expect(seat_map.locator(f'button[data-seat="{second}"]')).to_have_attribute("aria-label",
                                                                                 re.compile(f"{FACE_TRAVELER} 的座位"))
    expect(seat_map.locator('button[aria-pressed="true"]')).to_have_count(2)
    expect(page.locator("ol.legs")).to_contain_text(f"座位：{first}, {second}")
    page.screenshot(path=str(shots / "passenger-seats.png"), full_page=True)
    assert_accessible(page, "the seat picker")

    page.get_by_role("button", name="支付（沙箱）").click()
    page.get_by_text("支付成功，车票已出。").wait_for()
    page.get_by_role("link", name="查看我的车票").click()
    page.wait_for_url("**/app/passenger/tickets")
    for name, seat in ((QR_TRAVELER, first), (FACE_TRAVELER, second)):
        card = page.locator("article.ticket").filter(has_text=f"{name[0]}*").filter(
            has_text=f"110***********{ids[name][-4:]}")
        expect(card).to_contain_text(f"座位 {seat}")
