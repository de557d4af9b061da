"""Fare as a routing criterion on real feeds: the kernel's fares equal the fare engine's, and cheaper journeys.

* Demo city 云溪市 and Transcollines: for random queries, every itinerary of
  an ``optimize="fare"`` search carries the fare the kernel computed from the
  compiled `FareTables`; re-pricing it with the full `FareEngine` gives the
  same amount (adult and concession categories).
* Transcollines: a real query where the earliest-arrival search returns a
  20.00 CAD journey and the fare search finds one at 10.00 CAD (docstring of
  the test).
* ``GET /v1/plan?optimize=fare&max_fare=...`` end to end on the demo city.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maas.demo.city import FARE_AGREEMENTS_FILE, OPERATOR_FARE_TABLES_FILE
from maas.planner import Snapshot
from routing.compile import CompileOptions, compile_timetable
from routing.feeds import FeedSource
from routing.search import PlanRequest, plan
from ticketing.fares import FareEngine
from tests.ticketing_support import city, demo, plan as http_plan  # noqa: F401

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTREAL = ZoneInfo("America/Toronto")
TC_ZIP = "transcollines-fares-v2/transcollines-qc-ca-fares.zip"


@pytest.fixture(scope="module")
def demo_snap(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    from maas.demo import write_demo_city

    out: Path = tmp_path_factory.mktemp("yunxi-fare-routing")
    feeds = write_demo_city(out, dt.date(2026, 11, 21))
    eng = FareEngine.from_feeds([(f.feed_id, f.path) for f in feeds], agreements=out / FARE_AGREEMENTS_FILE,
                                operator_tables=out / OPERATOR_FARE_TABLES_FILE,
                                operators={f.feed_id: f.operator_id for f in feeds})
    tt = compile_timetable([FeedSource(f.feed_id, f.path, f.operator_id) for f in feeds], CompileOptions())
    return Snapshot(timetable=tt, sources=(), loaded_at=0.0, from_cache=False, fares=eng)


@pytest.fixture(scope="module")
def tc_snap(shared_data: Path) -> Snapshot:
    path = shared_data / TC_ZIP
    eng = FareEngine.from_feeds([("tc", path)])
    tt = compile_timetable([FeedSource("tc", path, "transcollines")], CompileOptions())
    return Snapshot(timetable=tt, sources=(), loaded_at=0.0, from_cache=False, fares=eng)


def _kernel_vs_engine(snap: Snapshot, depart0: dt.datetime, category: str, n_queries: int, seed: int) -> int:
    """Runs fare searches between random served stops; asserts kernel fare == engine fare; returns #checked."""
    tt = snap.timetable
    served = [s for s in range(tt.n_stops) if tt.stop_pattern_offsets[s + 1] > tt.stop_pattern_offsets[s]]
    rng = random.Random(seed)
    checked = 0
    for _ in range(n_queries):
        a, b = rng.sample(served, 2)
        pa, pb = tt.stop_parent[a], tt.stop_parent[b]
        if pa == b or pb == a or (pa >= 0 and pa == pb):
            continue  # a station and its platform are one place
        req = PlanRequest(str(tt.stop_ids[a]), str(tt.stop_ids[b]),
                          depart_at=depart0 + dt.timedelta(minutes=rng.randrange(0, 12 * 60)), optimize="fare",
                          rider_category=category)
        tables = snap.fare_tables(category, req.depart_at)
        for it in plan(tt, req, fares=tables):
            if all(leg["mode"] == "WALK" for leg in it["legs"]):
                continue  # walking is free for the kernel; the engine prices no journey without transit
            quote = snap.fares.price_itinerary(it, rider_category=category)
            engine_fare = {"amount": quote.total.amount, "currency": quote.total.currency} if quote.total else None
            assert it["fare"] == engine_fare, (req, it["label"], quote.to_dict())
            checked += 1
    return checked


@pytest.mark.parametrize("category", ["adult", "child", "senior"])
def test_kernel_fare_equals_engine_price_on_the_demo_city(demo_snap, category):
    """Bus flat fare with a free bus->bus transfer (QR/card, 60 min, once), metro ring zones with the line-change
    join, coach OD fares, the ferry's distance bands and the bus<->metro 联程优惠: all priced alike."""
    depart0 = dt.datetime(2026, 11, 23, 6, 30, tzinfo=SHANGHAI)  # a Monday of the demo service window
    assert _kernel_vs_engine(demo_snap, depart0, category, 60, seed=7) >= 40


def test_kernel_fare_equals_engine_price_on_transcollines(tc_snap):
    """Zone fares Gatineau / Collines / Pontiac (5.00 or 20.00 CAD per ride, timeframe GT-2026)."""
    depart0 = dt.datetime(2026, 3, 4, 5, 0, tzinfo=MONTREAL)
    assert _kernel_vs_engine(tc_snap, depart0, "adult", 80, seed=3) >= 30


def _rides(it: dict) -> list[tuple[str, str, str]]:
    return [(leg["route_id"], leg["from"]["stop_id"], leg["to"]["stop_id"])
            for leg in it["legs"] if leg["mode"] != "WALK"]


def test_transcollines_fare_search_finds_the_split_ticket_that_earliest_arrival_misses(tc_snap):
    """Pontiac -> Gatineau on bus 910, Wednesday 2026-03-04 (real Transcollines feed, Fares v2).

    Earliest arrival: board 910 at Route 148 | de Bristol (F111-01, stop_areas PNT) at 06:13:37, ride to
    du Plateau | d'Europe (F912-52, GAT) at 07:10:53 and walk to F912-45 (GAT): one ride PNT -> GAT,
    fare_leg_rules REG-PNT-GAT -> PS-2000 = 20.00 CAD.

    Fare search: the same bus, but two fare legs split at Route 148 | Gold Mine Sud (F103-04, COL, 06:25:03):
    REG-PNT-COL -> PS-500 (5.00) + REG-COL-GAT -> PS-500 (5.00) = 10.00 CAD, arriving at the same time with
    one transfer more (Transcollines has no fare_transfer_rules, so every ride is its own fare leg and
    stepping off at the Collines boundary halves the price). RAPTOR's (arrival, transfers) set cannot contain
    it: the direct ride arrives as early with fewer transfers.
    """
    depart = dt.datetime(2026, 3, 4, 5, 30, tzinfo=MONTREAL)
    req = PlanRequest("tc:F111-01", "tc:F912-45", depart_at=depart, max_transfers=3)
    fastest = [it for it in tc_snap.plan(req) if it["label"] == "fastest"][0]
    assert fastest["fare"] == {"amount": 2000, "currency": "CAD"}
    assert fastest["transfers"] == 0

    fare_its = tc_snap.plan(PlanRequest("tc:F111-01", "tc:F912-45", depart_at=depart, max_transfers=3,
                                        optimize="fare"))
    cheapest = [it for it in fare_its if it["label"] == "cheapest"][0]
    assert cheapest["fare"] == {"amount": 1000, "currency": "CAD"}
    assert cheapest["arrival"] == fastest["arrival"]
    rides = _rides(cheapest)
    assert [r[0] for r in rides] == ["tc:910", "tc:910"]
    assert rides[0][2] == rides[1][1] == "tc:F103-04"
    assert {it["fare"]["amount"] for it in fare_its} == {1000, 2000}
    # every earliest-arrival alternative costs more than the fare search's cheapest
    assert min(it["fare"]["amount"] for it in tc_snap.plan(req) if it["fare"]) > 1000


def test_max_fare_keeps_only_journeys_within_the_budget(tc_snap):
    """With max_fare=1000 the 20.00 CAD direct ride is left out; with max_fare=900 nothing is left."""
    depart = dt.datetime(2026, 3, 4, 5, 30, tzinfo=MONTREAL)
    its = tc_snap.plan(PlanRequest("tc:F111-01", "tc:F912-45", depart_at=depart, max_fare=1000))
    assert its and all(it["fare"]["amount"] <= 1000 for it in its)
    assert tc_snap.plan(PlanRequest("tc:F111-01", "tc:F912-45", depart_at=depart, max_fare=900)) == []


def test_demo_city_fare_search_prefers_the_flat_bus_fare_to_the_metro(demo_snap):
    """西湖公园 (XHGY) -> 人民广场 metro platform L2, Monday 08:00.

    Fastest: metro L1 XHGY (Z3) -> RMGC, joined with the L2 change (one fare leg Z3 -> Z1 = 4.00 CNY) or a
    bus to the metro; cheapest: bus 1 to 人民广场 (flat 2.00 CNY) and a walk to the platform.
    """
    depart = dt.datetime(2026, 11, 23, 8, 0, tzinfo=SHANGHAI)
    its = demo_snap.plan(PlanRequest("yx-bus:XHGY", "yx-metro:RMGC_L2", depart_at=depart, optimize="fare"))
    by_label = {it["label"]: it for it in its}
    assert by_label["cheapest"]["fare"] == {"amount": 200, "currency": "CNY"}
    assert [leg["mode"] for leg in by_label["cheapest"]["legs"] if leg["mode"] != "WALK"] == ["BUS"]
    assert by_label["fastest"]["fare"]["amount"] > 200
    assert by_label["fastest"]["arrival"] < by_label["cheapest"]["arrival"]


def test_fare_search_needs_fare_data(tc_snap):
    from routing.errors import InvalidQuery

    req = PlanRequest("tc:F111-01", "tc:F912-45", depart_at=dt.datetime(2026, 3, 4, 5, 30, tzinfo=MONTREAL),
                      optimize="fare")
    with pytest.raises(InvalidQuery) as e:
        plan(tc_snap.timetable, req)
    assert e.value.code == "fares_unavailable"


def test_plan_endpoint_optimizes_fare_within_max_fare(client, demo):
    """GET /v1/plan?optimize=fare: labels include `cheapest`; max_fare bounds every fare; bad values are 4xx."""
    depart = dt.datetime.combine(demo.now.date(), dt.time(8, 0), SHANGHAI)
    its = http_plan(client, "yx-bus:XHGY", "yx-metro:RMGC_L2", depart, optimize="fare")
    labels = {it["label"] for it in its}
    assert "cheapest" in labels and "fastest" in labels
    cheapest = min(it["fare"]["amount"] for it in its)
    assert cheapest == 200
    capped = http_plan(client, "yx-bus:XHGY", "yx-metro:RMGC_L2", depart, max_fare=cheapest)
    assert capped and all(it["fare"]["amount"] <= cheapest for it in capped)
    child = http_plan(client, "yx-bus:XHGY", "yx-metro:RMGC_L2", depart, optimize="fare", rider_category="child")
    assert min(it["fare"]["amount"] for it in child) == 100
    r = client.get("/v1/plan", params={"from": "yx-bus:XHGY", "to": "yx-metro:RMGC_L2",
                                       "depart_at": depart.isoformat(), "optimize": "cheap"})
    assert 400 <= r.status_code < 500 and "error" in r.json()
    r = client.get("/v1/plan", params={"from": "yx-bus:XHGY", "to": "yx-metro:RMGC_L2",
                                       "arrive_by": depart.isoformat(), "optimize": "fare"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_query"
