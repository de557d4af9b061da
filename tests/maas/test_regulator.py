"""Regulator views on the demo city (both backends): coverage, metrics, maturity, masked exports.

Tickets are bought through the API (plan -> offer -> order -> sandbox confirm) as in
test_ticketing_e2e_demo.py; station grades are seeded as `maas demo` seeds them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from maas.db import session_scope
from maas.stations import seed_demo_stations
from tests.ticketing_support import (  # noqa: F401
    buy, city, demo, gate_headers, journey, pick, plan, resident_id, traveler,
)

NAMES = ["张三", "李四", "王小明", "赵六", "孙七"]


def _regulator(login):  # noqa: ANN001, ANN202
    return login("regulator")[1]


def _seed(engine, city):  # noqa: ANN001, ANN202
    with session_scope(engine) as s:
        return seed_demo_stations(s, city[1])


def _buy_group(client, login, clock, names=NAMES, categories=None):  # noqa: ANN001, ANN202
    """One paid order of several travellers on the bus + metro + coach journey; returns (order, ids, phone)."""
    uid, h = login("passenger")
    it = journey(client, clock)
    cats = categories or ["adult"] * len(names)
    ids = [resident_id(birth=f"{clock.now.year - 8}0601" if c == "child" else f"19{70 + i}0101", seq=f"{100 + i}")
           for i, c in enumerate(cats)]
    _offer, order = buy(client, h, it, [traveler(n, c, id_number=x) for n, c, x in zip(names, cats, ids)])
    r = client.post(order["payment"]["confirm_url"], headers=h)
    assert r.json()["status"] == "ticketed", r.text
    return order, ids, h, uid


def test_coverage_by_operator_and_grade_follows_gates_and_validations(client, login, engine, demo, city) -> None:
    reg = _regulator(login)
    assert _seed(engine, city) > 30
    r = client.get("/v1/audit/coverage", headers=reg)
    assert r.status_code == 200, r.text
    cov = r.json()
    ops = {o["operator_id"]: o for o in cov["operators"]}
    assert set(ops) == {"yunxi-bus", "yunxi-metro", "yunxi-coach", "yunxi-ferry"}
    coach = ops["yunxi-coach"]
    assert coach["stations"] == 4 and coach["covered"] == 0  # priced routes, but no gate anywhere yet
    assert {(g["grade"], g["stations"]) for g in coach["by_grade"]} == {(1, 1), (2, 2), (3, 1)}
    assert all(g["with_eticket_route"] == g["stations"] for g in coach["by_grade"])
    assert ops["yunxi-ferry"]["trips_ticketable_share"] == 1.0  # priced by the operator fare table
    assert coach["trips_ticketable"] == coach["trips"] > 0
    # demo coach trips alternate wheelchair-accessible (1) and not (2)
    assert 0 < coach["trips_wheelchair"] < coach["trips"]
    assert ops["yunxi-metro"]["stations"] >= 10  # parent stations, not one row per platform
    targets = {t["target_id"]: t for t in cov["targets"]}
    assert targets["coach_stations_grade2plus"]["denominator"] == 3
    assert targets["coach_stations_grade2plus"]["met"] is False
    assert targets["intercity_lines"]["denominator"] == 2 and targets["intercity_lines"]["actual"] == 0.0

    for stop in ("YXZZ", "QSX", "BSX"):
        gate_headers(engine, "yunxi-coach", f"yx-coach:{stop}")
    cov = client.get("/v1/audit/coverage", headers=reg).json()
    targets = {t["target_id"]: t for t in cov["targets"]}
    assert targets["coach_stations_grade2plus"] | {"actual": 1.0, "met": True} == targets["coach_stations_grade2plus"]
    # 云梅线 also serves 梅岭县 (grade 3, no gate yet): one of the two lines is e-ticketed end to end
    assert (targets["intercity_lines"]["numerator"], targets["intercity_lines"]["met"]) == (1, False)
    gate_headers(engine, "yunxi-coach", "yx-coach:MLX")
    targets = {t["target_id"]: t for t in client.get("/v1/audit/coverage", headers=reg).json()["targets"]}
    assert targets["intercity_lines"]["met"] is True

    # a validation at the metro station (gate registered without a stop) covers the station
    order, ids, h, _ = _buy_group(client, login, demo, names=["周八"])
    gate, gh = gate_headers(engine, "yunxi-metro")
    tickets = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()["tickets"]
    assert tickets[0]["legs"][1]["from_stop_id"] == "yx-metro:RMGC_L1"
    r = client.post("/v1/gates/validate", headers=gh, json={"gate_id": gate, "stop_id": "yx-metro:RMGC_L1",
                                                             "id_number": ids[0]})
    assert r.json()["result"] == "accepted"
    cov = client.get("/v1/audit/coverage", headers=reg, params={"operator_id": "yunxi-metro"}).json()
    assert [o["operator_id"] for o in cov["operators"]] == ["yunxi-metro"] and cov["operators"][0]["covered"] == 1
    stats = {s["feed_id"]: s for s in cov["feed_stats"]}
    assert set(stats) == {"yx-metro"} and stats["yx-metro"]["trips_on_day"] > 0
    assert stats["yx-metro"]["service_hours"] > 0 and stats["yx-metro"]["routes_by_mode"] == {"SUBWAY": 2}

    r = client.get("/v1/audit/coverage", headers=reg, params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    coach_g1 = [x for x in rows if x["section"] == "operator_grade" and x["operator_id"] == "yunxi-coach"
                and x["grade"] == "1"]
    assert coach_g1 and coach_g1[0]["covered"] == "1"
    assert any(x["section"] == "target:coach_stations_grade2plus" and x["with_validator"] == "met" for x in rows)


def test_station_grades_are_configurable_by_admins_only(client, login, demo) -> None:
    _, admin = login("admin")
    body = {"station_type": "coach_station", "grade": 2}
    r = client.put("/v1/admin/stations/yx-bus:QCDZ", headers=admin, json=body)
    assert r.status_code == 200 and r.json() == {"stop_id": "yx-bus:QCDZ", **body}
    assert client.put("/v1/admin/stations/yx-bus:QCDZ", headers=_regulator(login), json=body).status_code == 403
    assert client.put("/v1/admin/stations/yx-bus:QCDZ", headers=admin,
                      json={"station_type": "coach_station", "grade": 9}).status_code == 422
    cov = client.get("/v1/audit/coverage", headers=admin, params={"operator_id": "yunxi-bus"}).json()
    graded = [g for g in cov["operators"][0]["by_grade"] if g["station_type"] == "coach_station"]
    assert graded == [{"station_type": "coach_station", "grade": 2, "stations": 1, "covered": 0, "share": 0.0,
                       "with_eticket_route": 1, "with_validator": 0}]
    log = client.get("/v1/audit/log", headers=admin, params={"action": "station.set"}).json()
    assert [e["target"] for e in log["entries"]] == ["yx-bus:QCDZ"]


def test_metrics_are_aggregates_with_small_cells_suppressed(client, login, engine, demo, app) -> None:
    reg = _regulator(login)
    order, ids, h, _ = _buy_group(client, login, demo)
    tickets = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()["tickets"]
    coach_leg = tickets[0]["legs"][2]["leg_id"]
    assert client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h,
                       json={"leg_ids": [coach_leg]}).status_code == 201
    gate, gh = gate_headers(engine, "yunxi-bus")
    for number in ids[:2]:
        assert client.post("/v1/gates/validate", headers=gh, json={"gate_id": gate, "stop_id": "yx-bus:YXYZ",
                                                                   "id_number": number}).json()["result"] == "accepted"
    assert client.post("/v1/gates/validate", headers=gh, json={"gate_id": gate, "stop_id": "yx-bus:YXYZ",
                                                               "id_number": ids[0]}).json()["reason"] == "already_used"
    m = client.get("/v1/audit/metrics", headers=reg).json()
    assert m["k"] == 5
    j = m["journeys"]
    assert j["total"] == {"value": 5, "suppressed": False}
    assert j["multi_operator"]["value"] == 5 and j["multi_operator_share"] == {"value": 1.0, "suppressed": False}
    assert {x["mode"]: x["count"]["value"] for x in j["legs_by_mode"]} == {"BUS": 5, "SUBWAY": 5, "COACH": 5}
    # one order, one buyer, one refunded leg, three validations: each below k, so suppressed
    assert m["orders"]["total"] == {"value": None, "suppressed": True}
    assert m["users"]["active"] == {"value": None, "suppressed": True}
    assert m["refunds"]["legs_refunded"]["suppressed"] and m["refunds"]["refund_rate"]["suppressed"]
    assert m["validations"]["total"]["suppressed"] and m["validations"]["rejection_rate"]["value"] is None
    revenue = {x["operator_id"]: x for x in m["revenue"]}
    assert revenue["yunxi-coach"]["legs"]["value"] == 5 and revenue["yunxi-coach"]["gross"]["value"] > 0
    assert m["face"]["verifications"] == {"value": 0, "suppressed": False}

    # with k = 2 the small cells appear, and the numbers are the real ones
    app.state.settings = app.state.settings.model_copy(update={"regulator_k_anonymity": 2})
    m = client.get("/v1/audit/metrics", headers=reg).json()
    assert m["k"] == 2 and m["validations"]["total"]["value"] == 3
    assert m["validations"]["rejections_by_reason"] == [
        {"reason": "already_used", "count": {"value": None, "suppressed": True},
         "rate": {"value": None, "suppressed": True}}]
    assert m["validations"]["rejected"]["suppressed"] and m["orders"]["total"]["suppressed"]
    gate_leg_count = sum(1 for x in m["journeys"]["legs_by_mode"])
    assert gate_leg_count == 3

    # a month without activity: zeros are shown, not suppressed
    empty = client.get("/v1/audit/metrics", headers=reg, params={"period": "2001-02"}).json()
    assert (empty["period_start"], empty["period_end"]) == ("2001-02-01", "2001-03-01")
    assert empty["journeys"]["total"] == {"value": 0, "suppressed": False} and empty["revenue"] == []
    r = client.get("/v1/audit/metrics", headers=reg, params={"period": "2024-13"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_period"
    r = client.get("/v1/audit/metrics", headers=reg, params={"period_start": "2024-02-01",
                                                             "period_end": "2024-01-01"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_period"


def test_maturity_levels_rise_with_what_the_system_sees(client, login, engine, demo, city) -> None:
    reg = _regulator(login)
    _seed(engine, city)
    m = client.get("/v1/audit/maturity", headers=reg).json()
    assert m["level"] == 1 and m["levels"][0]["met"] and not m["levels"][1]["met"]
    assert m["operator_ids"] == ["yunxi-bus", "yunxi-coach", "yunxi-ferry", "yunxi-metro"]
    assert m["levels"][2]["evidence"]["cross_operator_fare_agreements"] == ["yx-bus-metro-2024",
                                                                           "yx-metro-bus-2024"]

    _buy_group(client, login, demo, names=["张三", "李小明"], categories=["adult", "child"])
    m = client.get("/v1/audit/maturity", headers=reg).json()
    # bus -> metro within an hour with the QR medium: the transfer discount applies on the metro leg
    assert m["levels"][2]["evidence"]["multi_operator_tickets_discounted"] == 2
    assert m["level"] == 3 and m["levels"][3]["evidence"]["concession_tickets_by_category"] == {"child": 1}
    assert m["levels"][3]["evidence"]["targets_met"] is False  # no gates at the coach stations yet

    for stop in ("YXZZ", "QSX", "BSX", "MLX"):
        gate_headers(engine, "yunxi-coach", f"yx-coach:{stop}")
    m = client.get("/v1/audit/maturity", headers=reg).json()
    assert m["level"] == 4 and m["level_name"] == "policy_goals"

    # the ferry alone has a feed but no sales: information only
    ferry = client.get("/v1/audit/maturity", headers=reg, params={"operators": "yunxi-ferry"}).json()
    assert ferry["level"] == 1 and ferry["levels"][1]["evidence"]["tickets_by_operator"] == {}
    assert client.get("/v1/audit/maturity", headers=login("passenger")[1]).status_code == 403


def test_exports_are_masked_pseudonymous_and_k_anonymous(client, login, engine, demo) -> None:
    reg = _regulator(login)
    order, ids, h, uid = _buy_group(client, login, demo)
    # a journey of one on another OD pair: its group is below k
    _, h1 = login("passenger")
    bus_only = pick(plan(client, "yx-bus:BC", "yx-bus:SFDX", demo.now + dt.timedelta(minutes=30)), ["BUS"])
    _offer, single = buy(client, h1, bus_only, [traveler("钱九", id_number=resident_id(seq="999"))])
    assert client.post(single["payment"]["confirm_url"], headers=h1).json()["status"] == "ticketed"
    r = client.get("/v1/audit/exports/orders", headers=reg)
    assert r.status_code == 200, r.text
    body = r.json()
    rows = [x for x in body["rows"] if len(x["operators"]) == 3 and x["legs"] == 15]
    assert sorted(x["traveler_name"] for x in rows) == sorted(n[0] + "*" * (len(n) - 1) for n in NAMES)
    assert sorted(x["id_number"] for x in rows) == sorted(n[:3] + "*" * 11 + n[-4:] for n in ids)
    assert {x["user_ref"] for x in rows} == {rows[0]["user_ref"]} and re.fullmatch(r"[0-9a-f]{16}",
                                                                                     rows[0]["user_ref"])
    assert re.fullmatch(r"\d{3}\*{4}\d{4}", rows[0]["buyer_phone"])
    assert rows[0]["operators"] == ["yunxi-bus", "yunxi-coach", "yunxi-metro"]
    csv_body = client.get("/v1/audit/exports/orders", headers=reg, params={"format": "csv"}).text
    journeys = client.get("/v1/audit/exports/journeys", headers=reg).json()
    journeys_csv = client.get("/v1/audit/exports/journeys", headers=reg, params={"format": "csv"}).text
    phones = [u.phone for u in _users(engine)]
    for text in (r.text, csv_body, journeys_csv, str(journeys)):
        for secret in [*NAMES, "钱九", *ids, *phones, uid, order["order_id"]]:
            assert secret not in text, secret
        assert "tkt_" not in text and "usr_" not in text and "leg_" not in text
    assert len(list(csv.DictReader(io.StringIO(csv_body)))) == len(body["rows"])
    # the same pseudonym in a later export (stable), none of the raw ids
    again = client.get("/v1/audit/exports/orders", headers=reg).json()
    assert {x["user_ref"] for x in again["rows"]} == {x["user_ref"] for x in body["rows"]}

    assert journeys["k"] == 5
    assert [(x["from_stop_id"], x["to_stop_id"], x["journeys"]) for x in journeys["rows"]] == [
        ("yx-bus:YXYZ", "yx-coach:QSX", 5)]
    assert journeys["rows"][0]["to_name"] == "青石县汽车站"
    assert (journeys["suppressed_groups"], journeys["suppressed_journeys"]) == (1, 1)
    log = client.get("/v1/audit/log", headers=reg, params={"action": "audit.export"}).json()["entries"]
    assert {e["target"] for e in log} == {"orders", "journeys"} and all(e["actor_role"] == "regulator" for e in log)


def _users(engine):  # noqa: ANN001, ANN202
    from sqlmodel import Session, select

    from maas.models import User

    with Session(engine) as s:
        return list(s.exec(select(User)).all())


def test_gate_endpoints_are_rate_limited_per_device(settings, engine) -> None:
    from fastapi.testclient import TestClient

    from maas.app import create_app

    from maas import accounts

    app = create_app(settings.model_copy(update={"rate_limits": "gates=2/3600"}), load_timetable=False)
    with session_scope(engine) as s:
        accounts.ensure_operator(s, operator_id="yunxi-bus", name="云溪公交集团")
    _gate, gh = gate_headers(engine, "yunxi-bus")
    _other, oh = gate_headers(engine, "yunxi-bus")
    with TestClient(app, raise_server_exceptions=False) as c:
        assert [c.get("/v1/gates/keys", headers=gh).status_code for _ in range(2)] == [200, 200]
        r = c.get("/v1/gates/keys", headers=gh)
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 3601
        assert c.get("/v1/gates/keys", headers=oh).status_code == 200  # another device has its own budget


def test_periods_are_months_or_bounded_date_ranges() -> None:
    import datetime as dt

    import pytest

    from maas.audit_views.common import InvalidPeriod, resolve_period

    today = dt.date(2026, 11, 21)
    p = resolve_period(period="2026-12", period_start=None, period_end=None, today=today)
    assert (p.start, p.end) == (dt.date(2026, 12, 1), dt.date(2027, 1, 1))
    assert p.start_utc == dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC)  # midnight in Asia/Shanghai
    p = resolve_period(period=None, period_start=None, period_end=None, today=today, default_days=30)
    assert (p.start, p.end) == (dt.date(2026, 10, 23), dt.date(2026, 11, 22))
    p = resolve_period(period=None, period_start=None, period_end=None, today=today)
    assert (p.start, p.end) == (dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    for bad in ({"period": "2026-00"}, {"period": "0000-01"}, {"period_end": dt.date(1, 1, 1)},
                {"period_start": dt.date(2026, 2, 1), "period_end": dt.date(2026, 2, 1)},
                {"period": "2026-01", "period_start": dt.date(2026, 1, 1)},
                {"period_start": dt.date(1990, 1, 1), "period_end": dt.date(2026, 1, 1)}):
        with pytest.raises(InvalidPeriod):
            resolve_period(**{"period": None, "period_start": None, "period_end": None, **bad}, today=today)
