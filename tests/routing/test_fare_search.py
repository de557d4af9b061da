"""Fare as a search criterion on a hand-written network with hand-written fare tables.

::

    A ======== X (express, network "exp") ========> C      08:00 -> 08:20, 6.00
    A --1--> B 08:00 -> 08:10    B --2--> C 08:15 -> 08:30  (network "loc", 2.00 a ride)

Areas: A and B in area 1, C in area 2 (prices below are per (from, to) area).
Journeys read as in test_search.py.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from gtfs_text import stop_times, write_gtfs

from routing.compile import CompileOptions, compile_timetable
from routing.errors import InvalidQuery
from routing.fares import XFER_DISCOUNT, XFER_FEE_PLUS, XFER_REPLACE, FareTables, empty_tables
from routing.feeds import FeedSource
from routing.search import PlanRequest, plan

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2025, 3, 5, 7, 55, tzinfo=BERLIN)


def describe(it: dict) -> str:
    parts = []
    for leg in it["legs"]:
        if leg["mode"] != "WALK":
            dep = datetime.fromisoformat(leg["departure"]).strftime("%H:%M")
            arr = datetime.fromisoformat(leg["arrival"]).strftime("%H:%M")
            frm, to = leg["from"]["stop_id"].split(":")[-1], leg["to"]["stop_id"].split(":")[-1]
            parts.append(f"{dep} {frm} -{leg['route_name']}-> {to} {arr}")
    fare = it["fare"]["amount"] if it["fare"] else None
    return f"[{it['label']} {fare}] " + " | ".join(parts)


@pytest.fixture(scope="module")
def tt(tmp_path_factory):
    path = write_gtfs(tmp_path_factory.mktemp("fares") / "f", {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon
            A,Alpha,52.5000,13.3000
            B,Beta,52.5000,13.3200
            C,Gamma,52.5000,13.3400
        """,
        "routes.txt": """
            route_id,route_short_name,route_type
            X,X,3
            L1,1,3
            L2,2,3
        """,
        "trips.txt": """
            route_id,service_id,trip_id
            X,WK,TX
            L1,WK,T1
            L2,WK,T2
        """,
        "stop_times.txt": stop_times({"TX": "A 08:00 C 08:20", "T1": "A 08:00 B 08:10", "T2": "B 08:15 C 08:30"}),
    })
    return compile_timetable([FeedSource("f", path, "op")], CompileOptions(walk_radius_m=0.0))


def tables(tt, **xfer) -> FareTables:
    """Networks exp (0) and loc (1); area sets 0 (none), 1 (A, B), 2 (C); one leg group per network."""
    base = empty_tables(tt.route_ids.shape[0], tt.n_stops, currency="EUR")
    route_network = np.array([{"f:X": 0, "f:L1": 1, "f:L2": 1}[r] for r in tt.route_ids.tolist()], dtype=np.int32)
    stop_area = np.array([{"f:A": 1, "f:B": 1, "f:C": 2}[s] for s in tt.stop_ids.tolist()], dtype=np.int32)
    price = np.full((2, 3, 3), -1, dtype=np.int64)
    price[0, 1, 2] = 600
    price[1, 1, 1] = price[1, 1, 2] = 200
    group = np.full((2, 3, 3), -1, dtype=np.int32)
    group[0] = 0
    group[1] = 1
    G = 2
    kind = np.zeros((G, G), dtype=np.int8)
    amount = np.zeros((G, G), dtype=np.int64)
    limit = np.full((G, G), -1, dtype=np.int64)
    limit_type = np.ones((G, G), dtype=np.int8)
    count = np.full((G, G), -1, dtype=np.int32)
    if "kind" in xfer:
        kind[1, 1], amount[1, 1] = xfer["kind"], xfer["amount"]
        limit[1, 1], limit_type[1, 1] = xfer.get("limit", -1), xfer.get("limit_type", 1)
    return dataclasses.replace(
        base, route_network=route_network, network_feed=np.zeros(2, dtype=np.int32),
        network_kind=np.zeros(2, dtype=np.int8), network_group=np.full(2, -1, dtype=np.int32), stop_area=stop_area,
        leg_price=price, leg_group=group, band_offsets=np.zeros(3, dtype=np.int64),
        join=np.array([[False, False], [False, bool(xfer.get("join", False))]]), xfer_kind=kind, xfer_amount=amount,
        xfer_limit_s=limit, xfer_limit_type=limit_type, xfer_count=count, meta={})


def fare_plan(tt, ft, **kw) -> list[str]:
    req = PlanRequest("f:A", "f:C", depart_at=T0, optimize="fare", **kw)
    return [describe(it) for it in plan(tt, req, fares=ft)]


def test_time_search_takes_the_express(tt):
    its = plan(tt, PlanRequest("f:A", "f:C", depart_at=T0))
    assert [describe(it) for it in its if it["label"] == "fastest"] == ["[fastest None] 08:00 A -X-> C 08:20"]


def test_fare_search_returns_the_pareto_set_over_arrival_transfers_and_fare(tt):
    """Express 6.00 at 08:20 with no transfer; the local 2.00 + 2.00 = 4.00 at 08:30 with one."""
    assert sorted(fare_plan(tt, tables(tt))) == [
        "[cheapest 400] 08:00 A -1-> B 08:10 | 08:15 B -2-> C 08:30",
        "[fastest 600] 08:00 A -X-> C 08:20",
    ]


def test_a_free_transfer_within_its_time_limit_makes_the_local_cheaper(tt):
    """Transfer rule loc -> loc: the second ride costs 0.00 (GTFS type 0) within 20 min dep -> dep (15 min)."""
    its = fare_plan(tt, tables(tt, kind=XFER_REPLACE, amount=0, limit=1200, limit_type=1))
    assert "[cheapest 200] 08:00 A -1-> B 08:10 | 08:15 B -2-> C 08:30" in its


def test_an_expired_transfer_allowance_is_not_applied(tt):
    """Limit 10 min dep -> dep: 08:00 -> 08:15 is 15 min, so both rides pay; arr -> dep (5 min) would be free."""
    assert "[cheapest 400] 08:00 A -1-> B 08:10 | 08:15 B -2-> C 08:30" in \
        fare_plan(tt, tables(tt, kind=XFER_REPLACE, amount=0, limit=600, limit_type=1))
    assert "[cheapest 200] 08:00 A -1-> B 08:10 | 08:15 B -2-> C 08:30" in \
        fare_plan(tt, tables(tt, kind=XFER_REPLACE, amount=0, limit=600, limit_type=2))


def test_fee_plus_and_agreement_discounts(tt):
    """Type 1: a 0.50 fee on top of the second 2.00 ride gives 4.50; a discount of 1.50 off it gives 2.50."""
    assert "[cheapest 450] 08:00 A -1-> B 08:10 | 08:15 B -2-> C 08:30" in \
        fare_plan(tt, tables(tt, kind=XFER_FEE_PLUS, amount=50))
    assert "[cheapest 250] 08:00 A -1-> B 08:10 | 08:15 B -2-> C 08:30" in \
        fare_plan(tt, tables(tt, kind=XFER_DISCOUNT, amount=150))


def test_joined_rides_are_one_fare_leg_priced_end_to_end(tt):
    """join[loc, loc]: A -> B -> C is one effective leg from area 1 to area 2 = 2.00."""
    assert "[cheapest 200] 08:00 A -1-> B 08:10 | 08:15 B -2-> C 08:30" in fare_plan(tt, tables(tt, join=True))


def test_max_fare_prunes_and_implies_a_fare_search(tt):
    req = PlanRequest("f:A", "f:C", depart_at=T0, max_fare=500)
    assert [describe(it) for it in plan(tt, req, fares=tables(tt))] == [
        "[cheapest 400] 08:00 A -1-> B 08:10 | 08:15 B -2-> C 08:30"]
    assert plan(tt, dataclasses.replace(req, max_fare=399), fares=tables(tt)) == []


def test_unpriced_rides_come_back_with_a_null_fare(tt):
    """Without the express's price it is still the fastest journey, with fare null (priced ones sort first)."""
    ft = tables(tt)
    price = ft.leg_price.copy()
    price[0] = -1
    its = fare_plan(tt, dataclasses.replace(ft, leg_price=price, meta={}))
    assert "[fastest None] 08:00 A -X-> C 08:20" in its


@pytest.mark.parametrize("kw, code", [
    (dict(optimize="cheap"), "invalid_query"),
    (dict(optimize="fare", max_fare=-1), "invalid_query"),
])
def test_bad_fare_requests_are_refused(tt, kw, code):
    with pytest.raises(InvalidQuery) as e:
        plan(tt, PlanRequest("f:A", "f:C", depart_at=T0, **kw), fares=tables(tt))
    assert e.value.code == code


def test_fare_search_needs_a_departure_time_and_fare_tables(tt):
    with pytest.raises(InvalidQuery):
        plan(tt, PlanRequest("f:A", "f:C", arrive_by=T0 + timedelta(hours=1), optimize="fare"), fares=tables(tt))
    with pytest.raises(InvalidQuery) as e:
        plan(tt, PlanRequest("f:A", "f:C", depart_at=T0, optimize="fare"))
    assert e.value.code == "fares_unavailable"


def test_tables_of_another_timetable_are_refused(tt):
    ft = empty_tables(tt.route_ids.shape[0] + 1, tt.n_stops)
    with pytest.raises(ValueError, match="do not fit"):
        plan(tt, PlanRequest("f:A", "f:C", depart_at=T0, optimize="fare"), fares=ft)
