"""RAPTOR against the naive oracle on real feeds: random queries, same answers.

For each feed: random stop-to-stop queries (platforms and parent stations)
departing 06:00-22:00 on a date with service; the earliest arrival per number
of rides must equal the oracle's, and every itinerary ``plan`` returns must be
feasible. Small feeds run by default; NYC subway and WMATA are ``slow``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from reference import RefNetwork, check_feasible, earliest_arrivals, walking_graph

from routing.compile import compile_timetable
from routing.feeds import FeedSource
from routing.search import PlanRequest, earliest_arrival, plan

FEEDS = {
    # name: (feed id, relative path, date, timezone, queries, plan-checked queries)
    "transcollines": ("tc", "transcollines-fares-v2/transcollines-qc-ca-fares.zip", date(2026, 3, 4),
                      "America/Toronto", 200, 40),
    "hk_xrl": ("xrl", "hk-xrl/hk_xrl.zip", date(2026, 1, 28), "Asia/Hong_Kong", 200, 40),
    "caltrain": ("ct", "caltrain-rt/caltrain.zip", date(2023, 11, 7), "America/Los_Angeles", 200, 40),
    "wmata": ("wmata", "wmata-rail/wmata_rail.zip", date(2026, 5, 6), "America/New_York", 200, 30),
    "nyc_subway": ("subway", "nyc-mta/subway.zip", date(2026, 10, 7), "America/New_York", 300, 30),
}
SLOW = {"wmata", "nyc_subway"}


def _params():
    for name in FEEDS:
        marks = [pytest.mark.slow] if name in SLOW else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_params()))
def test_real_feed_earliest_arrival_matches_oracle(shared_data, name):
    feed_id, rel, day, tzname, n_queries, n_plan = FEEDS[name]
    path = shared_data / rel
    tt = compile_timetable([FeedSource(feed_id, path, feed_id)])
    net = RefNetwork.from_gtfs([(feed_id, path)], day)
    fp, change = walking_graph(tt)
    tz = ZoneInfo(tzname)
    rng = np.random.default_rng(7)
    served = np.flatnonzero(np.diff(tt.stop_pattern_offsets) > 0)
    parents = sorted({int(tt.stop_parent[s]) for s in served if tt.stop_parent[s] >= 0})
    candidates = np.array(sorted(set(served.tolist()) | set(parents)))
    found = 0
    for i in range(n_queries):
        o, d = rng.choice(candidates, 2, replace=False)
        if o == tt.stop_parent[d] or d == tt.stop_parent[o] or (tt.stop_parent[o] >= 0 and tt.stop_parent[o] == d):
            continue  # a station and its own platform: the same place (InvalidQuery)
        t0 = datetime.combine(day, datetime.min.time(), tzinfo=tz) + timedelta(seconds=int(rng.integers(6 * 3600, 22 * 3600)))
        max_transfers = int(rng.integers(0, 4))
        req = PlanRequest(str(tt.stop_ids[o]), str(tt.stop_ids[d]), depart_at=t0, max_transfers=max_transfers)
        got = earliest_arrival(tt, req)
        want = earliest_arrivals(net, req.origin, req.destination, int(t0.timestamp()), max_transfers + 1, fp, change,
                                 horizon_s=14 * 3600)
        # the oracle only looks 14 h ahead: compare what it can see
        got = [g if g is not None and g <= int(t0.timestamp()) + 14 * 3600 else None for g in got]
        want = [w if w is not None and w <= int(t0.timestamp()) + 14 * 3600 else None for w in want]
        assert got == want, (name, req)
        found += want[-1] is not None
        if i < n_plan:
            for it in plan(tt, req):
                check_feasible(it, net, fp, change)
    assert found >= n_queries // 10, "the random queries should often find journeys"


@pytest.mark.parametrize("name", list(_params()))
def test_real_feed_arrive_by_and_range_match_oracle(shared_data, name):
    """Arrive-by: feasible, in time, and leaving a second later with no more rides is too late.
    Range (1 h): every listed (departure, arrival, rides) is what the oracle finds leaving then."""
    from routing.search import range_profile

    feed_id, rel, day, tzname, _n, _p = FEEDS[name]
    path = shared_data / rel
    tt = compile_timetable([FeedSource(feed_id, path, feed_id)])
    net = RefNetwork.from_gtfs([(feed_id, path)], day)
    fp, change = walking_graph(tt)
    tz = ZoneInfo(tzname)
    rng = np.random.default_rng(11)
    served = np.flatnonzero(np.diff(tt.stop_pattern_offsets) > 0)
    n_checked = 0
    for _ in range(25):
        o, d = rng.choice(served, 2, replace=False)
        if tt.stop_parent[o] >= 0 and tt.stop_parent[o] == tt.stop_parent[d]:
            continue
        t0 = datetime.combine(day, datetime.min.time(), tzinfo=tz) + timedelta(seconds=int(rng.integers(8 * 3600, 20 * 3600)))
        deadline = t0 + timedelta(hours=2)
        req = PlanRequest(str(tt.stop_ids[o]), str(tt.stop_ids[d]), arrive_by=deadline, max_transfers=2)
        for it in plan(tt, req):
            check_feasible(it, net, fp, change)
            assert datetime.fromisoformat(it["arrival"]) <= deadline
            walking_only = all(lg["mode"] == "WALK" for lg in it["legs"])
            rides = 0 if walking_only else it["transfers"] + 1
            later = earliest_arrivals(net, req.origin, req.destination,
                                      int(datetime.fromisoformat(it["departure"]).timestamp()) + 1, rides, fp, change,
                                      horizon_s=6 * 3600, walk_only=walking_only)
            assert later[-1] is None or later[-1] > int(deadline.timestamp()), (name, req, it["id"])
            n_checked += 1
        rreq = PlanRequest(req.origin, req.destination, depart_at=t0, window_s=3600, max_transfers=2)
        for dep, arr, k in range_profile(tt, rreq):
            want = earliest_arrivals(net, req.origin, req.destination, int(dep.timestamp()), k, fp, change,
                                     horizon_s=int((arr - dep).total_seconds()) + 60, walk_only=False)
            assert want[k] == int(arr.timestamp()), (name, rreq, dep, k)
            n_checked += 1
    assert n_checked > 0


def test_real_feed_coordinates_origin_and_destination_are_feasible(shared_data):
    """``lat,lon`` endpoints near Caltrain stations: walking legs at walking speed, rides as scheduled."""
    from reference import _haversine

    feed_id, rel, day, tzname, _n, _p = FEEDS["caltrain"]
    path = shared_data / rel
    tt = compile_timetable([FeedSource(feed_id, path, feed_id)])
    net = RefNetwork.from_gtfs([(feed_id, path)], day)
    fp, change = walking_graph(tt)
    tz = ZoneInfo(tzname)
    rng = np.random.default_rng(5)
    stations = np.flatnonzero(np.asarray(tt.stop_location_type) == 1)
    n_found = 0
    for _ in range(30):
        a, b = rng.choice(stations, 2, replace=False)
        # ~150 m north-east of each station
        o = f"{tt.stop_lat[a] + 0.001:.6f},{tt.stop_lon[a] + 0.001:.6f}"
        d = f"{tt.stop_lat[b] + 0.001:.6f},{tt.stop_lon[b] + 0.001:.6f}"
        t0 = datetime.combine(day, datetime.min.time(), tzinfo=tz) + timedelta(seconds=int(rng.integers(7 * 3600, 19 * 3600)))
        its = plan(tt, PlanRequest(o, d, depart_at=t0, max_walk_m=800.0))
        for it in its:
            check_feasible(it, net, fp, change)
            first, last = it["legs"][0], it["legs"][-1]
            assert first["mode"] == "WALK" and first["from"]["stop_id"] is None
            assert last["mode"] == "WALK" and last["to"]["stop_id"] is None
            assert _haversine(first["from"]["lat"], first["from"]["lon"], float(o.split(",")[0]),
                              float(o.split(",")[1])) < 1
            assert datetime.fromisoformat(it["departure"]) >= t0
        n_found += bool(its)
    assert n_found >= 10
