"""The operator console (and later the regulator console) in a real headless Chromium."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import assert_accessible

pytestmark = pytest.mark.browser

RECORDS = ("leg_id,validated_at,gate_id,amount\n"
           "leg_nope,2026-01-05T08:00:00+08:00,g1,200\n"
           ",2026-01-05T08:00:00+08:00,g1,200\n"
           "leg_b,yesterday,g1,200\n"
           "leg_c,2026-01-05T08:00:00+08:00,g1\n")


@pytest.fixture
def desktop_page(chromium, demo):  # noqa: ANN001, ANN201
    context = chromium.new_context(base_url=demo.base, locale="zh-CN", timezone_id="Asia/Shanghai",
                                   viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.set_default_timeout(20_000)
    yield page
    context.close()
    assert not errors, f"errors in the page: {errors}"


def _login(page, demo, account: dict) -> None:  # noqa: ANN001
    page.goto("/app/login")
    page.get_by_label("手机号").fill(account["phone"])
    page.get_by_label("密码").fill(demo.password)
    page.get_by_role("button", name="登录").click()


def test_operator_uploads_a_reconciliation_file_and_sees_its_errors_by_line(desktop_page, demo, shots) -> None:  # noqa: ANN001
    page = desktop_page
    account = demo.account("operator", "yunxi-bus")
    _login(page, demo, account)
    page.wait_for_url("**/app/operator")
    expect(page.get_by_role("heading", level=1)).to_contain_text("yunxi-bus")
    # its gate devices (the demo's roaming gate)
    expect(page.get_by_text(demo.gate("yunxi-bus")["gate_id"])).to_be_visible()

    page.get_by_label("验票记录文件（CSV）").set_input_files(
        {"name": "records.csv", "mimeType": "text/csv", "buffer": RECORDS.encode()})
    page.get_by_role("button", name="上传并对账").click()
    table = page.locator("#rec-errors")
    table.wait_for()
    page.screenshot(path=str(shots / "operator-reconciliation.png"), full_page=True)
    assert_accessible(page, "the operator console")
    shown = [(int(r.locator("td").nth(0).inner_text()), r.locator("td").nth(1).inner_text())
             for r in table.locator("tbody tr").all()]

    # exactly what the API reports for the same file
    token = httpx.post(f"{demo.base}/v1/auth/token", json={"phone": account["phone"], "password": demo.password}).json()
    api = httpx.post(f"{demo.base}/v1/reconciliations", content=RECORDS.encode(), timeout=30,
                     headers={"Authorization": f"Bearer {token['access_token']}", "Content-Type": "text/csv"}).json()
    assert shown == [(m["line"], m["error"]) for m in api["malformed"]]
    assert [line for line, _ in shown] == [3, 4, 5]
    expect(page.locator("#rec-report")).to_contain_text(f"共 {api['rows']} 行")

    # a real-time TripUpdates snapshot of its feed: applied, its status shown
    page.get_by_label("数据源编号（feed id）").fill("yx-bus")
    page.get_by_label("TripUpdates 文件（protobuf）").set_input_files(
        {"name": "trip-updates.pb", "mimeType": "application/x-protobuf", "buffer": _trip_updates()})
    page.get_by_role("button", name="上传实时数据").click()
    expect(page.locator("#rt-result")).to_contain_text("yx-bus 的实时快照")
    expect(page.locator("#rt-result")).to_contain_text("未匹配车次 1")


def _trip_updates() -> bytes:
    import time

    from google.transit import gtfs_realtime_pb2

    msg = gtfs_realtime_pb2.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.timestamp = int(time.time())
    entity = msg.entity.add()
    entity.id = "1"
    entity.trip_update.trip.trip_id = "no-such-trip"
    stu = entity.trip_update.stop_time_update.add()
    stu.stop_sequence = 1
    stu.departure.delay = 60
    return msg.SerializeToString()


def test_regulator_coverage_page_shows_the_api_numbers_and_verifies_the_audit_log(desktop_page, demo, shots) -> None:  # noqa: ANN001
    page = desktop_page
    account = demo.account("regulator")
    _login(page, demo, account)
    page.wait_for_url("**/app/regulator")
    token = httpx.post(f"{demo.base}/v1/auth/token", json={"phone": account["phone"], "password": demo.password}).json()
    api = httpx.get(f"{demo.base}/v1/audit/coverage", timeout=60,
                    headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert api["targets"], "the demo city has national targets to show"
    page.locator("#targets tbody tr").first.wait_for()
    for target in api["targets"]:
        row = page.locator(f"#targets tr[data-target='{target['target_id']}']")
        shown = row.locator("td.actual").inner_text()
        expected = "—" if target["actual"] is None else f"{round(target['actual'] * 1000) / 10:.1f}%"
        assert shown == expected, (target, shown)
        assert row.locator("td.threshold").inner_text() == f"{round(target['threshold'] * 1000) / 10:.1f}%"
    expect(page.locator("#by-grade tbody tr")).to_have_count(len(api["by_grade"]))
    expect(page.locator("#maturity-level")).to_contain_text("等级")
    page.locator("#metrics tbody tr").first.wait_for()
    # metrics over time: six months, a Chart.js chart drawn, suppressed cells marked in the table
    expect(page.locator("#trend-table thead th")).to_have_count(7)
    page.wait_for_function("document.getElementById('trend-chart').width > 0 && typeof Chart !== 'undefined'"
                           " && Chart.getChart('trend-chart') !== undefined")
    month = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m")  # the browser runs in UTC+8
    users = httpx.get(f"{demo.base}/v1/audit/metrics", params={"period": month}, timeout=60,
                      headers={"Authorization": f"Bearer {token['access_token']}"}).json()["users"]["total"]
    last = page.locator("#trend-table tbody tr", has_text="users.total").locator("td").last
    assert last.inner_text() == ("已隐藏" if users["suppressed"] else str(users["value"]))
    assert users["suppressed"], "the demo's handful of accounts is below k: a suppressed cell is shown as such"
    page.screenshot(path=str(shots / "regulator-console.png"), full_page=True)
    assert_accessible(page, "the regulator console")
    page.get_by_role("button", name="校验审计日志").click()
    expect(page.locator("#verify-result")).to_contain_text("审计日志完整")


# ---------------------------------------------------------------- settlements, disputes and charts (issue 15)

def _travel_day() -> dt.date:
    """Tomorrow in the city (UTC+8), or the day after when tomorrow is the demo feeds' holiday (no service)."""
    from maas.demo import demo_holiday

    day = (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=1)).date()
    return day + dt.timedelta(days=1) if day == demo_holiday(dt.date.today()) else day


def _shift_clock(demo, at: dt.datetime) -> None:  # noqa: ANN001
    """The server's clock runs on from ``at``."""
    started = dt.datetime.now(dt.UTC)
    demo.app.state.clock = lambda: at + (dt.datetime.now(dt.UTC) - started)


@pytest.fixture
def real_clock(demo):  # noqa: ANN001, ANN201
    yield
    demo.app.state.clock = None


def _token(demo, account: dict) -> dict[str, str]:  # noqa: ANN001
    tok = httpx.post(f"{demo.base}/v1/auth/token", json={"phone": account["phone"], "password": demo.password},
                     timeout=30).json()
    return {"Authorization": f"Bearer {tok['access_token']}"}


def _yuan(amount: int) -> str:
    return ("-" if amount < 0 else "") + f"¥{abs(amount) // 100}.{abs(amount) % 100:02d}"


def _sell_ride_and_settle(demo) -> dict:  # noqa: ANN001
    """Over the API: the demo passenger buys a bus + metro + coach journey for the travel day, the bus gate admits
    its bus leg, then (two days later on the server's clock) an admin closes the travel day's settlement run."""
    c = httpx.Client(base_url=demo.base, timeout=60)
    passenger = _token(demo, demo.account("passenger"))
    day = _travel_day()
    its = c.get("/v1/plan", params={"from": "yx-bus:YXYZ", "to": "yx-coach:QSX",
                                    "depart_at": f"{day.isoformat()}T07:00:00+08:00"}).json()["itineraries"]
    it = next(i for i in its if [x["operator_id"] for x in i["legs"] if x["mode"] != "WALK"][0] == "yunxi-bus")
    offer = c.post("/v1/offers", headers=passenger, json={"itinerary": it, "travelers": [{"rider_category": "adult"}]})
    assert offer.status_code == 201, offer.text
    order = c.post("/v1/orders", headers=passenger, json={"offer_id": offer.json()["offer_id"], "travelers": [
        {"name": "赵六", "id_type": "cn_resident_id", "id_number": "11010519491231002X", "rider_category": "adult"}]})
    assert order.status_code == 201, order.text
    assert c.post(order.json()["payment"]["confirm_url"], headers=passenger).json()["status"] == "ticketed"
    (ticket,) = c.get(f"/v1/orders/{order.json()['order_id']}", headers=passenger).json()["tickets"]
    leg = next(x for x in ticket["legs"] if x["operator_id"] == "yunxi-bus")
    _shift_clock(demo, dt.datetime.fromisoformat(leg["departure"]) - dt.timedelta(minutes=10))
    payload = c.get(f"/v1/tickets/{ticket['ticket_id']}/qr", headers=passenger).json()["payload"]
    gate = demo.gate("yunxi-bus")
    r = c.post("/v1/gates/validate", headers={"Authorization": f"Bearer {gate['token']}"},
               json={"gate_id": gate["gate_id"], "stop_id": leg["from_stop_id"], "payload": payload})
    assert r.json()["result"] == "accepted", r.text
    _shift_clock(demo, dt.datetime.combine(day + dt.timedelta(days=2), dt.time(10),
                                           dt.timezone(dt.timedelta(hours=8))))
    admin = _token(demo, demo.account("admin"))
    run = c.post("/v1/settlements/runs", headers=admin, json={
        "period_start": day.isoformat(), "period_end": (day + dt.timedelta(days=1)).isoformat()})
    assert run.status_code == 201, run.text
    return {"day": day, "run": run.json(), "leg": leg, "admin": admin}


def _chart(page, chart_id: str) -> dict:  # noqa: ANN001
    return page.evaluate("""id => { const c = Chart.getChart(id);
        return {labels: c.data.labels, data: Object.fromEntries(c.data.datasets.map(d => [d.key, d.data]))}; }""",
                         chart_id)


def test_operator_sees_runs_downloads_csv_disputes_and_charts_the_api_numbers(desktop_page, demo, shots,
                                                                              real_clock) -> None:  # noqa: ANN001
    sale = _sell_ride_and_settle(demo)
    page = desktop_page
    account = demo.account("operator", "yunxi-bus")
    _login(page, demo, account)
    page.wait_for_url("**/app/operator")
    headers = _token(demo, account)
    api_runs = httpx.get(f"{demo.base}/v1/operators/yunxi-bus/settlements", headers=headers, timeout=30).json()
    assert [r["run_id"] for r in api_runs] == [sale["run"]["run_id"]]
    totals = api_runs[0]["totals"]
    assert totals["gross"] > 0 and totals["lines"] == 1  # the bus leg ridden
    row = page.locator(f"#runs tr[data-run='{sale['run']['run_id']}']")
    row.wait_for()
    for cls, key in (("gross", "gross"), ("refunds", "refunds"), ("commission", "commission"),
                     ("adjustments", "adjustments"), ("net", "net_payable")):
        assert row.locator(f"td.{cls}").inner_text() == _yuan(totals[key]), cls
    assert row.locator("td.lines").inner_text() == "1"

    # the CSV statement downloads, byte for byte what the API serves
    last = (sale["day"]).isoformat()
    with page.expect_download() as download:
        page.get_by_role("button", name=f"下载 {sale['day'].isoformat()} 至 {last} 的对账单 CSV").click()
    api_csv = httpx.get(f"{demo.base}/v1/settlements/runs/{sale['run']['run_id']}/statements/yunxi-bus",
                        params={"format": "csv"}, headers=headers, timeout=30).text
    with open(download.value.path(), encoding="utf-8") as fh:
        assert fh.read() == api_csv
    assert download.value.suggested_filename == f"statement-{sale['run']['run_id']}-yunxi-bus.csv"

    # the statement, a line disputed, followed until the platform's decision
    row.get_by_role("button", name=f"查看 {sale['day'].isoformat()} 至 {last} 的对账单").click()
    expect(page.locator("#statement-totals")).to_contain_text(_yuan(totals["net_payable"]))
    page.get_by_role("button", name=f"对行程段 {sale['leg']['leg_id']} 提出争议").click()
    assert page.get_by_label("行程段", exact=True).input_value() == sale["leg"]["leg_id"]
    page.get_by_label("主张金额（元，可选）").fill("1.5x")
    expect(page.get_by_text("请输入金额，例如 12.50（最多两位小数）。")).to_be_visible()
    page.get_by_label("主张金额（元，可选）").fill("1.50")
    page.get_by_label("理由", exact=True).fill("闸机记录显示该乘客为儿童票")
    page.get_by_role("button", name="提交争议").click()
    expect(page.locator("#dispute-raised")).to_contain_text(sale["leg"]["leg_id"])
    (api_dispute,) = httpx.get(f"{demo.base}/v1/disputes", headers=headers, timeout=30).json()
    assert (api_dispute["claimed_amount"], api_dispute["status"]) == (150, "open")
    disputed = page.locator(f"#disputes tr[data-dispute='{api_dispute['dispute_id']}']")
    expect(disputed).to_contain_text("处理中")
    _admin_accepts_in_the_console(desktop_page.context.browser, demo, api_dispute)
    page.get_by_role("button", name="刷新").click()
    expect(disputed).to_contain_text("已接受")
    expect(disputed.locator("td.resolution")).to_contain_text("¥1.50")
    expect(disputed.locator("td.resolution")).to_contain_text("核实无误")

    # the charts draw the API's numbers: by day (the default period), then by line
    page.wait_for_function("typeof Chart !== 'undefined' && Chart.getChart('chart-validations') !== undefined")
    api = httpx.get(f"{demo.base}/v1/operators/yunxi-bus/stats", headers=headers, timeout=30).json()
    by_day = _chart(page, "chart-validations")
    assert by_day["labels"] == [r["key"] for r in api["rows"]]
    assert by_day["data"] == {"validations": [r["validations"] for r in api["rows"]],
                              "rejected": [r["rejected"] for r in api["rows"]]}
    assert _chart(page, "chart-revenue")["data"] == {"revenue": [r["revenue"] for r in api["rows"]]}
    travel = next(r for r in api["rows"] if r["key"] == sale["day"].isoformat())
    assert travel["validations"] == 1 and travel["revenue"] == travel["gross"] > 0
    expect(page.locator("#stats-totals")).to_contain_text(f"收入 {_yuan(api['totals']['revenue'])}")
    page.locator("#stats-h").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "operator-console.png"), full_page=True)
    assert_accessible(page, "the operator console with its runs, disputes and charts")

    page.get_by_label("统计方式").select_option("line")
    page.wait_for_function("Chart.getChart('chart-validations').data.labels.length > 0"
                           " && !/^\\d{4}-/.test(Chart.getChart('chart-validations').data.labels[0])")
    lines = httpx.get(f"{demo.base}/v1/operators/yunxi-bus/stats", headers=headers, params={"group": "line"},
                      timeout=30).json()
    by_line = _chart(page, "chart-validations")
    assert by_line["labels"] == [f"{r['route_name']} ({r['route_id']})" for r in lines["rows"]]
    assert by_line["data"]["validations"] == [r["validations"] for r in lines["rows"]]
    assert _chart(page, "chart-revenue")["data"]["revenue"] == [r["revenue"] for r in lines["rows"]]
    assert sum(r["validations"] for r in lines["rows"]) == 1
    page.locator("section[aria-labelledby='stats-h']").screenshot(path=str(shots / "operator-charts.png"))


def _admin_accepts_in_the_console(browser, demo, dispute: dict) -> None:  # noqa: ANN001
    """An admin opens the operator console (every operator's disputes), accepts this one with the amount claimed."""
    context = browser.new_context(base_url=demo.base, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        _login(page, demo, demo.account("admin"))
        page.wait_for_url("**/app/operator")
        page.get_by_role("button", name=f"处理 {dispute['operator_id']} 对行程段 {dispute['leg_id']} 的争议").click()
        amount = page.get_by_label("调整金额（元）")
        assert amount.input_value() == "1.50"  # the amount claimed, to start from
        amount.fill("abc")
        expect(page.get_by_role("button", name="接受", exact=True)).to_be_disabled()
        amount.fill("1.50")
        page.get_by_label("给运营方的说明").fill("核实无误")
        assert_accessible(page, "the dispute decision")
        page.get_by_role("button", name="接受", exact=True).click()
        row = page.locator(f"#disputes tr[data-dispute='{dispute['dispute_id']}']")
        expect(row).to_contain_text("已接受")
        # an admin charts any operator's figures
        page.get_by_label("运营方", exact=True).select_option("yunxi-bus")
        api = httpx.get(f"{demo.base}/v1/operators/yunxi-bus/stats", headers=_token(demo, demo.account("admin")),
                        timeout=30).json()
        page.wait_for_function("""n => { const c = typeof Chart !== 'undefined' && Chart.getChart('chart-validations');
            return c && c.data.datasets[0].data.reduce((a, b) => a + b, 0) === n; }""", arg=api["totals"]["validations"])
        assert _chart(page, "chart-revenue")["data"]["revenue"] == [r["revenue"] for r in api["rows"]]
    finally:
        context.close()
    api = httpx.get(f"{demo.base}/v1/disputes/{dispute['dispute_id']}", headers=_token(demo, demo.account("admin")),
                    timeout=30).json()
    assert (api["status"], api["resolution_amount"], api["resolution_note"]) == ("accepted", 150, "核实无误")
    assert api["adjustment_entry_id"] is not None  # the ledger posted the adjustment


def test_regulator_map_shows_a_marker_per_station_coloured_by_coverage(desktop_page, demo, shots) -> None:  # noqa: ANN001
    # a gate standing at the county coach station: that station is covered (an e-ticket route serves it)
    gate = httpx.post(f"{demo.base}/v1/admin/gates", headers=_token(demo, demo.account("admin")), timeout=30,
                      json={"operator_id": "yunxi-coach", "stop_id": "yx-coach:QSX"})
    assert gate.status_code == 201, gate.text
    page = desktop_page
    account = demo.account("regulator")
    _login(page, demo, account)
    page.wait_for_url("**/app/regulator")
    api = httpx.get(f"{demo.base}/v1/audit/coverage/stations", headers=_token(demo, account), timeout=60).json()
    stations = api["stations"]
    assert {s["station_id"] for s in stations if s["covered"]} >= {"yx-coach:QSX"}
    assert not all(s["covered"] for s in stations), "both colours are on the map"
    markers = page.locator("#coverage-map path.station")
    expect(markers).to_have_count(len(stations))
    shown = page.evaluate("""() => Array.from(document.querySelectorAll('#coverage-map path.station')).map(p =>
        [p.getAttribute('data-station'), p.classList.contains('st-covered'), p.getAttribute('fill')])""")
    expected = {s["station_id"]: s["covered"] for s in stations}
    assert sorted(sid for sid, _, _ in shown) == sorted(expected)
    for sid, covered, fill in shown:
        assert covered == expected[sid], sid
        assert fill == ("#15803d" if expected[sid] else "#b42318"), (sid, fill)
    n_cov = sum(expected.values())
    assert page.locator("#n-covered").inner_text() == str(n_cov)
    assert page.locator("#n-uncovered").inner_text() == str(len(stations) - n_cov)
    # the same rows as the coverage report's counts by grade
    cov = httpx.get(f"{demo.base}/v1/audit/coverage", headers=_token(demo, account), timeout=60).json()
    assert sum(g["stations"] for g in cov["by_grade"]) == len(stations)
    assert sum(g["covered"] for g in cov["by_grade"]) == n_cov
    page.locator("section[aria-labelledby='map-h']").screenshot(path=str(shots / "regulator-map.png"))
    page.locator("summary", has_text="站点列表").click()
    expect(page.locator("#station-table tbody tr")).to_have_count(len(stations))
    expect(page.locator("#station-table tr[data-station='yx-coach:QSX'] td").last).to_have_text("是")
    assert_accessible(page, "the regulator console with its coverage map")
