"""Regulator coverage and service statistics on a real feed: the NYC subway (both backends).

The feed has no fare files: its routes become e-ticket enabled only once an operator fare table
prices them. The timetable compiles once per module (shared cache directory).
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.ticketing_support import gate_headers, load_feeds

FEED, OPERATOR = "nyc-subway", "mta-nyct"


@pytest.fixture(scope="module")
def nyc_cache(tmp_path_factory):  # noqa: ANN001, ANN201
    return tmp_path_factory.mktemp("nyc") / "timetables"


@pytest.fixture
def nyc(app, engine, shared_data, nyc_cache):  # noqa: ANN001, ANN201
    load_feeds(app, engine, [(shared_data / "nyc-mta" / "subway.zip", FEED, OPERATOR)], nyc_cache)
    return app


def test_subway_coverage_ticketable_trips_wheelchair_and_stats(client, login, engine, nyc, monkeypatch) -> None:
    _, reg = login("regulator")
    params = {"date": "2026-09-15", "period_start": "2026-09-01", "period_end": "2026-10-01"}
    cov = client.get("/v1/audit/coverage", headers=reg, params=params).json()
    (op,) = cov["operators"]
    assert op["operator_id"] == OPERATOR
    # 496 parent stations in the feed (platforms roll up into their station)
    assert 450 <= op["stations"] <= 500 and op["covered"] == 0
    assert op["trips"] > 15_000 and op["trips_ticketable"] == 0  # no fares anywhere yet
    assert op["stops"] > 900 and 0 <= op["stops_wheelchair"] <= op["stops"]
    assert [(g["station_type"], g["grade"]) for g in op["by_grade"]] == [("metro_station", None),
                                                                        ("rail_station", None)]
    (stats,) = cov["feed_stats"]
    assert stats["date"] == "2026-09-15" and stats["routes"] == 29 and stats["trips_on_day"] > 5_000
    assert stats["routes_by_mode"]["SUBWAY"] == 28 and stats["service_km"] > 10_000
    assert stats["first_departure"] < "01:00:00" and stats["last_arrival"] > "24:00:00"
    assert {t["target_id"]: t["denominator"] for t in cov["targets"]} == {"coach_stations_grade2plus": 0,
                                                                          "intercity_lines": 0}
    assert all(t["met"] is None for t in cov["targets"])  # nothing to measure: no coach in the subway

    # an operator fare table (flat fare) makes every route e-ticket enabled; a gate at Times Sq covers it
    platform = nyc.state.settings.platform_dir
    platform.mkdir(parents=True, exist_ok=True)
    (platform / "operator_fare_tables.json").write_text(json.dumps({"version": 1, "tables": [
        {"feed_id": FEED, "operator_id": OPERATOR, "kind": "distance_bands", "currency": "USD", "route_ids": None,
         "bands": [{"up_to_m": None, "amount": 290}]}]}))
    nyc.state.planner.refresh()
    gate_headers(engine, OPERATOR, f"{FEED}:127N")  # a platform of Times Sq-42 St (station 127)
    cov = client.get("/v1/audit/coverage", headers=reg, params=params).json()
    (op,) = cov["operators"]
    assert op["trips_ticketable"] == op["trips"] and op["covered"] == 1
    assert sum(g["with_eticket_route"] for g in op["by_grade"]) == op["stations"]
    # the static part is cached per snapshot: a repeated audit costs only the gate/validation queries
    from maas.audit_views import coverage

    rebuilt: list[str] = []
    monkeypatch.setattr(coverage, "_build_static", lambda *a, **k: rebuilt.append("static"))
    monkeypatch.setattr(coverage, "feed_service_stats", lambda *a, **k: rebuilt.append("stats"))
    r = client.get("/v1/audit/coverage", headers=reg, params={**params, "format": "csv"})
    assert r.status_code == 200 and rebuilt == []
    rows = list(csv.DictReader(io.StringIO(r.text)))
    metro = next(x for x in rows if x["section"] == "operator_grade" and x["station_type"] == "metro_station")
    assert metro["covered"] == "1" and int(metro["stations"]) > 400


def test_subway_maturity_is_information_only_without_sales(client, login, nyc) -> None:
    _, reg = login("regulator")
    m = client.get("/v1/audit/maturity", headers=reg).json()
    assert m["operator_ids"] == [OPERATOR] and m["level"] == 1
    assert m["levels"][0]["evidence"]["feeds"] == [FEED]
    metrics = client.get("/v1/audit/metrics", headers=reg, params={"period": "2026-09"}).json()
    assert metrics["journeys"]["total"] == {"value": 0, "suppressed": False}
