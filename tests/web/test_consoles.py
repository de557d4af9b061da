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
