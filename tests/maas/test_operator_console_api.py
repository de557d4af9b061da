"""The APIs behind the operator and regulator consoles (issue 15): an operator's settlement runs with its own
totals, its validations and sales by day and by line, and the coverage report's per-station rows.

Scope (attack tests): staff of one operator cannot read another's runs or statistics (403), nor can a
passenger, a regulator or a gate; dates come from the app's clock (never the calendar day).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tests.maas.test_agency_operators_e2e import BUS, TRAM, write_two_agency_feed
from tests.ticketing_support import SHANGHAI, Clock, buy, gate_headers, load_feeds, plan


@pytest.fixture
def city(app, engine, tmp_path: Path) -> Clock:  # noqa: ANN001
    clock = Clock(dt.datetime.now(SHANGHAI).replace(hour=7, minute=30, second=0, microsecond=0)
                  + dt.timedelta(days=1))
    feed = write_two_agency_feed(tmp_path / "city", clock.now.date() - dt.timedelta(days=7))
    load_feeds(app, engine, [(feed, "city", None)], tmp_path / "timetables")
    app.state.clock = clock
    return clock


@pytest.fixture
def sold(client, login, engine, city) -> dict[str, Any]:  # noqa: ANN001
    """Two travellers on A -> C (bus 2.00 + tram 3.00 CNY each); the bus gate admits one ticket's bus leg and
    refuses a second scan of it; the other ticket's tram leg is refunded."""
    its = plan(client, "city:A", "city:C", city.now + dt.timedelta(minutes=20))
    it = next(i for i in its if [leg.get("route_id") for leg in i["legs"] if leg["mode"] != "WALK"]
              == ["city:R1", "city:R2"])
    _uid, h = login("passenger")
    _offer, order = buy(client, h, it, [
        {"name": "张三", "id_type": "passport", "id_number": "E12345678", "rider_category": "adult"},
        {"name": "李四", "id_type": "passport", "id_number": "E87654321", "rider_category": "adult"}])
    assert client.post(order["payment"]["confirm_url"], headers=h).json()["status"] == "ticketed"
    tickets = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()["tickets"]
    refund = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h,
                         json={"leg_ids": [tickets[1]["legs"][1]["leg_id"]]})
    assert refund.status_code in (200, 201, 202), refund.text
    gate_id, gate = gate_headers(engine, BUS)
    city.now = city.now.replace(hour=7, minute=58)
    payload = client.get(f"/v1/tickets/{tickets[0]['ticket_id']}/qr", headers=h).json()["payload"]
    results = [client.post("/v1/gates/validate", headers=gate,
                           json={"gate_id": gate_id, "stop_id": "city:A", "payload": payload}).json()["result"]
               for _ in range(2)]
    assert results == ["accepted", "rejected"]
    return {"day": city.now.date(), "gate": gate}


def _stats(client, headers, operator_id: str, day: dt.date, group: str, days: int = 1) -> Any:  # noqa: ANN001
    return client.get(f"/v1/operators/{operator_id}/stats", headers=headers, params={
        "group": group, "period_start": day.isoformat(), "period_end": (day + dt.timedelta(days=days)).isoformat()})


def test_stats_by_day_and_by_line_count_what_happened(client, login, sold) -> None:  # noqa: ANN001
    day = sold["day"]
    _, bus = login("operator", BUS)
    r = _stats(client, bus, BUS, day - dt.timedelta(days=1), "day", days=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["operator_id"], body["group"], body["currency"]) == (BUS, "day", "CNY")
    by_day = {row["key"]: row for row in body["rows"]}
    assert list(by_day) == [(day + dt.timedelta(days=d)).isoformat() for d in (-1, 0, 1)]  # zeros included
    today = by_day[day.isoformat()]
    assert {k: today[k] for k in ("validations", "rejected", "legs_sold", "legs_refunded", "gross", "refunded",
                                  "revenue")} == {"validations": 1, "rejected": 1, "legs_sold": 2,
                                                  "legs_refunded": 0, "gross": 400, "refunded": 0, "revenue": 400}
    assert all(by_day[k]["validations"] == by_day[k]["legs_sold"] == 0 for k in by_day if k != day.isoformat())
    assert body["totals"]["revenue"] == 400 and body["totals"]["validations"] == 1

    lines = _stats(client, bus, BUS, day, "line").json()
    assert [(x["key"], x["route_name"], x["validations"], x["rejected"], x["legs_sold"], x["gross"])
            for x in lines["rows"]] == [("city:R1", "1", 1, 1, 2, 400)]

    _, tram = login("operator", TRAM)
    mine = _stats(client, tram, TRAM, day, "line").json()
    assert [(x["key"], x["validations"], x["legs_sold"], x["legs_refunded"], x["gross"], x["refunded"], x["revenue"])
            for x in mine["rows"]] == [("city:R2", 0, 2, 1, 600, 300, 300)]
    # another currency has none of these sales
    other = client.get(f"/v1/operators/{TRAM}/stats", headers=tram, params={
        "period_start": day.isoformat(), "period_end": (day + dt.timedelta(days=1)).isoformat(), "currency": "EUR"})
    assert other.json()["totals"]["gross"] == 0


def test_an_operator_cannot_read_another_operators_stats_or_runs(client, login, sold) -> None:  # noqa: ANN001
    day = sold["day"]
    _, tram = login("operator", TRAM)
    for path in (f"/v1/operators/{BUS}/stats", f"/v1/operators/{BUS}/settlements"):
        r = client.get(path, headers=tram, params={"period_start": day.isoformat()} if "stats" in path else None)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "operator_scope"
        assert "400" not in r.text  # nothing of BUS's figures leaks in the refusal
    for role in ("passenger", "regulator"):
        _, h = login(role)
        assert _stats(client, h, BUS, day, "day").status_code == 403
    assert _stats(client, sold["gate"], BUS, day, "day").status_code == 403  # a gate of BUS is no console
    assert _stats(client, {}, BUS, day, "day").status_code == 401
    _, admin = login("admin")
    assert _stats(client, admin, BUS, day, "day").json()["totals"]["gross"] == 400
    missing = _stats(client, admin, "no-such-operator", day, "day")
    assert missing.status_code == 404, missing.text


def test_stats_period_bounds(client, login, city) -> None:  # noqa: ANN001
    _, bus = login("operator", BUS)
    day = city.now.date()
    bad = _stats(client, bus, BUS, day, "day", days=0)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_period"
    assert _stats(client, bus, BUS, day, "day", days=367).status_code == 422
    assert _stats(client, bus, BUS, day, "line", days=367).status_code == 200  # by line: no row per day
    assert client.get(f"/v1/operators/{BUS}/stats", headers=bus, params={"group": "week"}).status_code == 422
    default = client.get(f"/v1/operators/{BUS}/stats", headers=bus).json()  # the last 30 days, up to today
    assert len(default["rows"]) == 30 and default["period_end"] == (day + dt.timedelta(days=1)).isoformat()


def test_operator_runs_carry_its_own_totals_equal_to_the_run_and_statement(client, login, sold, city) -> None:  # noqa: ANN001
    day = sold["day"]
    city.advance(days=2)
    _, admin = login("admin")
    run = client.post("/v1/settlements/runs", headers=admin, json={
        "period_start": day.isoformat(), "period_end": (day + dt.timedelta(days=1)).isoformat()}).json()
    before = client.post("/v1/settlements/runs", headers=admin, json={
        "period_start": (day - dt.timedelta(days=3)).isoformat(), "period_end": day.isoformat()}).json()
    per_op = {o["operator_id"]: o for o in run["operators"]}
    for op in (BUS, TRAM):
        _, h = login("operator", op)
        r = client.get(f"/v1/operators/{op}/settlements", headers=h)
        assert r.status_code == 200, r.text
        runs = r.json()
        assert [x["run_id"] for x in runs] == [run["run_id"], before["run_id"]]  # newest period first
        assert runs[0]["totals"] == per_op[op]
        statement = client.get(f"/v1/settlements/runs/{run['run_id']}/statements/{op}", headers=h).json()
        assert runs[0]["totals"] == statement["totals"]
        assert runs[1]["totals"]["lines"] == 0 and runs[1]["totals"]["net_payable"] == 0  # nothing of it then
    # the run settles the bus leg ridden (recognised); the other traveller's is not closed until used or expired,
    # whereas the statistics count both legs sold
    assert per_op[BUS]["gross"] == 200


def test_station_rows_add_up_to_the_coverage_report(client, login, city, sold) -> None:  # noqa: ANN001
    _, regulator = login("regulator")
    report = client.get("/v1/audit/coverage", headers=regulator).json()
    r = client.get("/v1/audit/coverage/stations", headers=regulator)
    assert r.status_code == 200, r.text
    rows = r.json()["stations"]
    assert [(s["station_id"], s["name"], s["lat"], s["lon"]) for s in rows] == [
        ("city:A", "Alpha", 31.2, 121.4), ("city:B", "Beta", 31.2, 121.42), ("city:C", "Gamma", 31.2, 121.44)]
    # a validation was recorded at A in the period and every route is priced: A alone is covered
    assert [(s["station_id"], s["eticket_route"], s["validator"], s["covered"]) for s in rows] == [
        ("city:A", True, True, True), ("city:B", True, False, False), ("city:C", True, False, False)]
    for g in report["by_grade"]:
        mine = [s for s in rows if (s["station_type"], s["grade"]) == (g["station_type"], g["grade"])]
        assert (len(mine), sum(s["covered"] for s in mine)) == (g["stations"], g["covered"])
    only = client.get("/v1/audit/coverage/stations", headers=regulator, params={"operator_id": BUS}).json()
    assert [s["station_id"] for s in only["stations"]] == ["city:A"] and only["operator_id"] == BUS
    csv = client.get("/v1/audit/coverage/stations", headers=regulator, params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("station_id,name,lat,lon") and len(csv.text.splitlines()) == 4
    _, op = login("operator", BUS)
    assert client.get("/v1/audit/coverage/stations", headers=op).status_code == 403
