"""The demo city writes real, internally consistent GTFS feeds."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import gtfs_kit as gk
import pandas as pd
import pytest

from maas.demo import demo_holiday, read_seat_capacity, service_window, write_demo_city

TODAY = date(2026, 11, 21)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("yunxi")
    return out, write_demo_city(out, TODAY)


def _read(feed_path: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(feed_path / f"{name}.txt", dtype=str, keep_default_na=False)


def _secs(hms: str) -> int:
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def test_writes_one_feed_per_operator_with_distinct_ids(city):
    _out, feeds = city
    assert [f.kind for f in feeds] == ["bus", "metro", "coach", "ferry"]
    assert len({f.feed_id for f in feeds}) == len({f.operator_id for f in feeds}) == 4
    for f in feeds:
        assert f.path.is_dir() and (f.path / "stop_times.txt").is_file()


def test_every_feed_loads_with_gtfs_kit_and_has_service_on_today(city):
    _out, feeds = city
    for f in feeds:
        feed = gk.read_feed(f.path, dist_units="m")
        assert feed.agency["agency_timezone"].tolist() == ["Asia/Shanghai"]
        assert len(feed.trips) > 0
        active = feed.get_trips(TODAY.strftime("%Y%m%d"))
        assert len(active) > 0, f.feed_id


def test_referential_integrity_of_every_feed(city):
    _out, feeds = city
    for f in feeds:
        stops = _read(f.path, "stops")
        routes = _read(f.path, "routes")
        trips = _read(f.path, "trips")
        st = _read(f.path, "stop_times")
        shapes = _read(f.path, "shapes")
        cal = _read(f.path, "calendar")
        assert stops["stop_id"].is_unique and trips["trip_id"].is_unique and routes["route_id"].is_unique
        assert set(trips["route_id"]) <= set(routes["route_id"])
        assert set(trips["service_id"]) <= set(cal["service_id"])
        assert set(st["trip_id"]) == set(trips["trip_id"]), "no trip without stop_times"
        assert set(st["stop_id"]) <= set(stops["stop_id"])
        assert set(trips["shape_id"]) <= set(shapes["shape_id"]) and (trips["shape_id"] != "").all()
        if "parent_station" in stops:
            parents = stops.loc[stops["parent_station"] != "", "parent_station"]
            assert set(parents) <= set(stops.loc[stops["location_type"] == "1", "stop_id"])
        # times never go backwards within a trip and stop_sequence increases
        st = st.assign(arr=st["arrival_time"].map(_secs), dep=st["departure_time"].map(_secs),
                       seq=st["stop_sequence"].astype(int))
        for _tid, g in st.groupby("trip_id"):
            assert g["seq"].is_monotonic_increasing
            assert (g["dep"] >= g["arr"]).all()
            assert (g["arr"].to_numpy()[1:] >= g["dep"].to_numpy()[:-1]).all()
        assert set(stops["wheelchair_boarding"]) <= {"0", "1", "2"}
        assert set(trips["wheelchair_accessible"]) <= {"0", "1", "2"}


def test_fares_v2_references_resolve(city):
    _out, feeds = city
    for f in feeds:
        if not (f.path / "fare_products.txt").exists():
            continue
        products = _read(f.path, "fare_products")
        media = set(_read(f.path, "fare_media")["fare_media_id"])
        cats = _read(f.path, "rider_categories")
        assert (cats["is_default_fare_category"] == "1").sum() == 1
        assert set(products["rider_category_id"]) <= set(cats["rider_category_id"])
        assert set(products["fare_media_id"]) <= media
        assert set(products["currency"]) == {"CNY"}
        rules = _read(f.path, "fare_leg_rules")
        assert set(rules["fare_product_id"]) <= set(products["fare_product_id"])
        if (f.path / "areas.txt").exists():
            areas = set(_read(f.path, "areas")["area_id"])
            used = set(rules["from_area_id"]) | set(rules["to_area_id"])
            assert used - {""} <= areas
            assert set(_read(f.path, "stop_areas")["stop_id"]) <= set(_read(f.path, "stops")["stop_id"])


def test_service_window_and_holiday_exception(city):
    _out, feeds = city
    start, end = service_window(TODAY)
    hol = demo_holiday(TODAY)
    assert start <= TODAY <= end and hol.weekday() == 2 and hol > TODAY
    bus = gk.read_feed(feeds[0].path, dist_units="m")
    on_holiday = set(bus.get_trips(hol.strftime("%Y%m%d"))["service_id"])
    ordinary_wednesday = hol + timedelta(days=7)
    assert on_holiday == {"WKND"}
    assert set(bus.get_trips(ordinary_wednesday.strftime("%Y%m%d"))["service_id"]) == {"WKDY"}


def test_deterministic_output(tmp_path: Path, city):
    out, _ = city
    write_demo_city(tmp_path, TODAY)
    for rel in ["yx-bus/stop_times.txt", "yx-metro/stops.txt", "yx-coach/fare_products.txt",
                "platform/fare_agreements.json"]:
        assert (tmp_path / rel).read_bytes() == (out / rel).read_bytes()


def test_late_service_runs_past_midnight(city):
    _out, feeds = city
    for f in feeds[:2]:
        st = _read(f.path, "stop_times")
        assert st["arrival_time"].map(_secs).max() > 24 * 3600, f.feed_id


def test_metro_interchange_has_parent_station_platforms_and_min_transfer_time(city):
    _out, feeds = city
    metro = feeds[1].path
    stops = _read(metro, "stops").set_index("stop_id")
    assert stops.loc["RMGC", "location_type"] == "1"
    assert stops.loc["RMGC_L1", "parent_station"] == stops.loc["RMGC_L2", "parent_station"] == "RMGC"
    tr = _read(metro, "transfers")
    row = tr[(tr["from_stop_id"] == "RMGC_L1") & (tr["to_stop_id"] == "RMGC_L2")]
    assert row["transfer_type"].tolist() == ["2"] and int(row["min_transfer_time"].iloc[0]) >= 60


def test_bus_stops_near_metro_stations_are_within_walking_range(city):
    _out, feeds = city
    bus = _read(feeds[0].path, "stops")
    metro = _read(feeds[1].path, "stops")
    stations = metro[metro["location_type"] == "1"]
    pairs = 0
    for _, s in stations.iterrows():
        d = min(_haversine_m(float(s.stop_lat), float(s.stop_lon), float(b.stop_lat), float(b.stop_lon))
                for b in bus.itertuples())
        if d < 400:
            pairs += 1
            assert 50 <= d <= 200, (s.stop_name, d)
    assert pairs >= 8


def test_coach_feed_has_station_codes_coach_route_type_and_seats(city):
    _out, feeds = city
    coach = feeds[2].path
    stops = _read(coach, "stops")
    assert (stops["stop_code"] != "").all()
    assert set(_read(coach, "routes")["route_type"].astype(int)) <= set(range(200, 210))
    seats = read_seat_capacity(coach)
    assert set(seats) == set(_read(coach, "trips")["trip_id"]) and min(seats.values()) > 0


def test_platform_files_name_namespaced_leg_groups_that_exist(city):
    out, feeds = city
    agreements = json.loads((out / "platform" / "fare_agreements.json").read_text(encoding="utf-8"))
    by_id = {f.feed_id: f.path for f in feeds}
    for rule in agreements["transfer_rules"]:
        assert isinstance(rule["discount"]["amount"], int)
        for ref in rule["from_leg_group_ids"] + rule["to_leg_group_ids"]:
            feed_id, group = ref.split(":", 1)
            assert group in set(_read(by_id[feed_id], "fare_leg_rules")["leg_group_id"])
    tables = json.loads((out / "platform" / "operator_fare_tables.json").read_text(encoding="utf-8"))
    ferry = [t for t in tables["tables"] if t["feed_id"] == "yx-ferry"]
    assert ferry and not (by_id["yx-ferry"] / "fare_products.txt").exists()


def test_routing_validator_accepts_every_feed(city):
    """routing.feeds.validate_feed (written concurrently) refuses nothing and finds no problems."""
    feeds_mod = pytest.importorskip("routing.feeds")
    _out, feeds = city
    for f in feeds:
        report = feeds_mod.validate_feed(feeds_mod.FeedSource(f.feed_id, f.path, f.operator_id))
        assert report.ok and not report.problems, report.to_text()
        assert report.start_date <= TODAY <= report.end_date, report.to_text()
        assert report.timezone == "Asia/Shanghai"
