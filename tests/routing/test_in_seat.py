"""In-seat transfers (transfers.txt type 4, linked trips) through compiled *combined trips*.

The compiler appends one trip per path of type-4 links (``routing.compile._add_linked_trips``); the
kernels ride it as one ride, the itinerary shows one leg per real trip (``in_seat`` after the first).
Arrivals are compared with the rule-aware connection-scan oracle (``reference.earliest_arrivals_rules``,
which reads transfers.txt itself and rides linked trips without counting a ride).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from google.transit import gtfs_realtime_pb2 as rt
from gtfs_text import stop_times, write_gtfs
from reference import (RefNetwork, TransferRules, check_feasible, earliest_arrivals_rules, walking_graph,
                       with_trip_updates)

import routing.compile as compile_mod
from routing.cache import load_timetable, save_timetable
from routing.compile import _linked_paths, compile_timetable
from routing.feeds import FeedSource
from routing.realtime import apply_trip_updates
from routing.search import PlanRequest, earliest_arrival, plan

TZ = ZoneInfo("Europe/Berlin")
WED = date(2025, 3, 5)  # the default calendar (service WK) runs every day of 2025
MON = date(2025, 3, 3)
HEADER = "from_stop_id,to_stop_id,from_route_id,to_route_id,from_trip_id,to_trip_id,transfer_type,min_transfer_time"
NO_CHANGE = "X1,X1,,,,,3,\nZ,Z,,,,,3,\nY1,Y1,,,,,3,\n"  # no ordinary change at the junctions


def linked_feed(tmp_path, name: str, rules: str, trips: dict[str, tuple[str, str]], times: dict[str, str],
                calendar: str | None = None):
    """Stops A, X1 (platform of XS), Y1 (100 m from X1), Z, B, C, km apart otherwise; one route per trip."""
    files = {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
            XS,X station,0.05,0.05,1,
            X1,X platform,0.05,0.05,0,XS
            Y1,Y platform,0.05,0.0509,0,
            A,Alpha,0.00,0.00,0,
            Z,Zeta,0.08,0.00,0,
            B,Beta,0.10,0.10,0,
            C,Gamma,0.00,0.10,0,
        """,
        "routes.txt": "route_id,route_short_name,route_type\n" + "".join(
            f"R{t},{t},3\n" for t in trips),
        "trips.txt": "route_id,service_id,trip_id,trip_headsign\n" + "".join(
            f"R{t},{svc},{t},{head}\n" for t, (svc, head) in trips.items()),
        "stop_times.txt": stop_times(times),
        "transfers.txt": HEADER + "\n" + rules,
    }
    if calendar is not None:
        files["calendar.txt"] = calendar
    return write_gtfs(tmp_path / name, files)


def chain_feed(tmp_path, name="chain", rules=None, calendar=None, w2_service="WK"):
    """T1 A 08:00 -> X1 08:10; W1 X1 08:10 -> Z 08:20; W2 Z 08:20 -> B 08:45 (T1 -> W1 -> W2 linked)."""
    rules = NO_CHANGE + ",,,,T1,W1,4,\n,,,,W1,W2,4,\n" if rules is None else rules
    return linked_feed(tmp_path, name, rules, {"T1": ("WK", "X"), "W1": ("WK", "Zeta"), "W2": (w2_service, "Beta")},
                       {"T1": "A 08:00  X1 08:10", "W1": "X1 08:10  Z 08:20", "W2": "Z 08:20  B 08:45"}, calendar)


def _t(d: date, h: int, m: int) -> int:
    return int(datetime(d.year, d.month, d.day, h, m, tzinfo=TZ).timestamp())


def _compare(feed, origin, dest, day, max_transfers, net=None, realtime=None):
    tt = compile_timetable([FeedSource("f", feed, "f")])
    net = net or RefNetwork.from_gtfs([("f", feed)], day)
    fp, change = walking_graph(tt)
    t0 = datetime(day.year, day.month, day.day, 7, 55, tzinfo=TZ)
    req = PlanRequest(f"f:{origin}", f"f:{dest}", depart_at=t0, max_transfers=max_transfers)
    got = earliest_arrival(tt, req, realtime=realtime)
    want = earliest_arrivals_rules(net, f"f:{origin}", f"f:{dest}", int(t0.timestamp()), max_transfers + 1, fp,
                                   change, TransferRules.from_gtfs([("f", feed)]))
    return tt, req, got, want


def _legs_ok(it: dict, feed, day: date, tt) -> list[dict]:
    """Every ride leg is a real trip travelled as GTFS has it; legs follow each other; returns ride legs."""
    net = RefNetwork.from_gtfs([("f", feed)], day)
    fp, change = walking_graph(tt)
    rides = [lg for lg in it["legs"] if lg["mode"] != "WALK"]
    for lg in rides:
        one = {"legs": [lg], "transfers": 0, "departure": lg["departure"], "arrival": lg["arrival"],
               "duration_s": int((datetime.fromisoformat(lg["arrival"]) - datetime.fromisoformat(lg["departure"]))
                                 .total_seconds()), "walk_m": 0}
        check_feasible(one, net, fp, change)
    for a, b in zip(it["legs"], it["legs"][1:]):
        assert datetime.fromisoformat(b["departure"]) >= datetime.fromisoformat(a["arrival"])
        if b.get("in_seat"):  # stays aboard: no walk in between
            assert a["mode"] != "WALK"
    assert it["transfers"] == sum(1 for lg in rides if not lg.get("in_seat")) - 1
    return rides


def _no_synthetic_ids(tt, its) -> None:
    text = json.dumps(its)
    combined = tt.trip_ids[tt.trip_is_combined].tolist()
    assert combined, "the feed has combined trips"
    for tid in combined:
        assert tid not in text
    assert "in-seat~" not in text
    real = set(tt.trip_ids[~tt.trip_is_combined].tolist())
    for it in its:
        for lg in it["legs"]:
            assert lg["trip_id"] is None or lg["trip_id"] in real


def test_in_seat_pair_equals_oracle_and_shows_two_legs(tmp_path):
    """T1 -> W1 at X1 (no ordinary change allowed there): one ride, legs T1 then W1 (in_seat), 0 transfers."""
    feed = linked_feed(tmp_path, "pair", "X1,X1,,,,,3,\n,,,,T1,W1,4,\n", {"T1": ("WK", "X"), "W1": ("WK", "Beta")},
                       {"T1": "A 08:00  X1 08:10", "W1": "X1 08:10  B 08:31"})
    tt, req, got, want = _compare(feed, "A", "B", WED, 0)
    assert got[1:] == want[1:]
    assert got[-1] == _t(WED, 8, 31)
    its = plan(tt, req)
    it = [i for i in its if i["departure"].startswith(WED.isoformat())][0]
    rides = _legs_ok(it, feed, WED, tt)
    assert [(lg["trip_id"], lg["from"]["stop_id"], lg["to"]["stop_id"]) for lg in rides] == [
        ("f:T1", "f:A", "f:X1"), ("f:W1", "f:X1", "f:B")]
    assert "in_seat" not in rides[0] and rides[1]["in_seat"] is True
    assert rides[0]["route_id"] == "f:RT1" and rides[1]["route_id"] == "f:RW1"
    assert it["transfers"] == 0
    assert rides[0]["arrival"] == rides[1]["departure"]
    _no_synthetic_ids(tt, its)
    # with a transfer allowed the in-seat ride stays the only way (X1 forbids changing)
    _tt, _req, got1, want1 = _compare(feed, "A", "B", WED, 1)
    assert got1[1:] == want1[1:]


def test_chain_of_three_equals_oracle(tmp_path):
    feed = chain_feed(tmp_path)
    tt, req, got, want = _compare(feed, "A", "B", WED, 0)
    assert got[1:] == want[1:] and got[-1] == _t(WED, 8, 45)
    its = plan(tt, req)
    it = [i for i in its if i["departure"].startswith(WED.isoformat())][0]
    rides = _legs_ok(it, feed, WED, tt)
    assert [(lg["trip_id"], lg.get("in_seat", False)) for lg in rides] == [
        ("f:T1", False), ("f:W1", True), ("f:W2", True)]
    assert it["transfers"] == 0
    # arrive-by and a departure window find the same in-seat ride
    for r in (PlanRequest("f:A", "f:B", arrive_by=datetime(2025, 3, 5, 9, 0, tzinfo=TZ), max_transfers=0),
              PlanRequest("f:A", "f:B", depart_at=datetime(2025, 3, 5, 7, 0, tzinfo=TZ), window_s=7200,
                          max_transfers=0)):
        its = [i for i in plan(tt, r) if i["departure"].startswith(WED.isoformat())]
        assert [[(lg["trip_id"], lg.get("in_seat", False)) for lg in i["legs"]] for i in its] == [
            [("f:T1", False), ("f:W1", True), ("f:W2", True)]]
        assert its[0]["transfers"] == 0
    # boarding in the middle of the chain: W1 then W2, still in seat
    tt, req, got, want = _compare(feed, "X1", "B", WED, 0)
    assert got[1:] == want[1:] and got[-1] == _t(WED, 8, 45)
    it = [i for i in plan(tt, req) if i["departure"].startswith(WED.isoformat())][0]
    assert [(lg["trip_id"], lg.get("in_seat", False)) for lg in _legs_ok(it, feed, WED, tt)] == [
        ("f:W1", False), ("f:W2", True)]
    # alighting inside the chain (at W1's end) on a combined trip
    tt, req, got, want = _compare(feed, "A", "Z", WED, 0)
    assert got[1:] == want[1:] and got[-1] == _t(WED, 8, 20)
    it = [i for i in plan(tt, req) if i["departure"].startswith(WED.isoformat())][0]
    assert [lg["trip_id"] for lg in _legs_ok(it, feed, WED, tt)] == ["f:T1", "f:W1"]
    _no_synthetic_ids(tt, plan(tt, req))


def test_branching_links(tmp_path):
    """T1 -> W1 (to B) and T1 -> W3 (to C): one combined trip per path, both found."""
    rules = NO_CHANGE + ",,,,T1,W1,4,\n,,,,T1,W3,4,\n"
    feed = linked_feed(tmp_path, "branch", rules, {"T1": ("WK", "X"), "W1": ("WK", "B"), "W3": ("WK", "C")},
                       {"T1": "A 08:00  X1 08:10", "W1": "X1 08:10  B 08:31", "W3": "X1 08:12  C 08:40"})
    tt = compile_timetable([FeedSource("f", feed, "f")])
    combined = sorted(tuple(str(tt.trip_ids[q]) for q, _ in tt.trip_parts(t))
                      for t in np.flatnonzero(tt.trip_is_combined).tolist())
    assert combined == [("f:T1", "f:W1"), ("f:T1", "f:W3")]
    for dest, hm, last in (("B", (8, 31), "f:W1"), ("C", (8, 40), "f:W3")):
        tt, req, got, want = _compare(feed, "A", dest, WED, 0)
        assert got[1:] == want[1:] and got[-1] == _t(WED, *hm)
        its = plan(tt, req)
        it = [i for i in its if i["departure"].startswith(WED.isoformat())][0]
        assert [lg["trip_id"] for lg in _legs_ok(it, feed, WED, tt)] == ["f:T1", last]
        _no_synthetic_ids(tt, its)


def test_linked_paths_cycles_and_cap():
    days = np.ones((5, 3), dtype=bool)
    paths, rows, capped, cut = _linked_paths({0: [1], 1: [0]}, days, 100)  # a cycle ends
    assert sorted(paths) == [(0, 1), (1, 0)] and not capped and not cut
    paths, _, _, _ = _linked_paths({0: [1], 1: [2], 2: [0]}, days, 100)
    assert sorted(paths) == [(0, 1, 2), (1, 2, 0), (2, 0, 1)]
    paths, _, capped, _ = _linked_paths({0: [1, 2], 1: [3], 2: [3]}, days, 2)
    assert len(paths) == 2 and capped
    # a prefix runs on the days its extension does not
    d = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=bool)
    paths, rows, _, _ = _linked_paths({0: [1], 1: [2]}, d, 100)
    got = {p: r.tolist() for p, r in zip(paths, rows)}
    assert got == {(0, 1, 2): [True, False, False], (0, 1): [False, True, False], (1, 2): [True, False, False]}
    # a long chain (a vehicle's day) is cut at max_parts trips per combined trip
    paths, _, capped, cut = _linked_paths({0: [1], 1: [2], 2: [3], 3: [4]}, days, 100, max_parts=3)
    assert sorted(paths) == [(0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4)] and cut and not capped


def test_cap_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_mod, "MAX_LINKED_TRIPS", 1)
    rules = NO_CHANGE + ",,,,T1,W1,4,\n,,,,T1,W3,4,\n"
    feed = linked_feed(tmp_path, "cap", rules, {"T1": ("WK", "X"), "W1": ("WK", "B"), "W3": ("WK", "C")},
                       {"T1": "A 08:00  X1 08:10", "W1": "X1 08:10  B 08:31", "W3": "X1 08:12  C 08:40"})
    tt = compile_timetable([FeedSource("f", feed, "f")])
    assert int(tt.trip_is_combined.sum()) == 1
    assert any("only the first 1" in w for w in tt.meta["feeds"][0]["warnings"])


def test_long_chains_are_cut_and_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_mod, "MAX_LINKED_PARTS", 2)
    feed = chain_feed(tmp_path)
    tt = compile_timetable([FeedSource("f", feed, "f")])
    parts = sorted(tuple(str(tt.trip_ids[q]) for q, _ in tt.trip_parts(t))
                   for t in np.flatnonzero(tt.trip_is_combined).tolist())
    assert parts == [("f:T1", "f:W1"), ("f:W1", "f:W2")]
    assert any("at most 1 links" in w for w in tt.meta["feeds"][0]["warnings"])
    _tt, _req, got, _want = _compare(feed, "A", "B", WED, 0)
    assert got[-1] is None  # T1 -> W1 -> W2 would take two links


CAL_W2_MONDAYS = ("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                  "WK,1,1,1,1,1,1,1,20250101,20251231\nMO,1,0,0,0,0,0,0,20250101,20251231\n")


def test_part_not_running_that_day(tmp_path):
    """W2 runs on Mondays only: on a Wednesday there is no in-seat ride to B, but T1 -> W1 (to Z) still is."""
    feed = chain_feed(tmp_path, calendar=CAL_W2_MONDAYS, w2_service="MO")
    tt, req, got, want = _compare(feed, "A", "B", WED, 0)
    assert got[1:] == want[1:] and got[-1] is None
    tt, req, got, want = _compare(feed, "A", "B", MON, 0)
    assert got[1:] == want[1:] and got[-1] == _t(MON, 8, 45)
    tt, req, got, want = _compare(feed, "A", "Z", WED, 0)
    assert got[1:] == want[1:] and got[-1] == _t(WED, 8, 20)
    it = [i for i in plan(tt, req) if i["departure"].startswith(WED.isoformat())][0]
    assert [lg["trip_id"] for lg in _legs_ok(it, feed, WED, tt)] == ["f:T1", "f:W1"]
    # combined trips run only on days all their parts run
    for t in np.flatnonzero(tt.trip_is_combined).tolist():
        runs = tt.service_days[int(tt.trip_service[t])].astype(bool)
        for q, _ in tt.trip_parts(t):
            assert not (runs & ~tt.service_days[int(tt.trip_service[q])].astype(bool)).any()


def test_parts_at_two_stops(tmp_path):
    """W1 starts at Y1, not where T1 ends (X1): the vehicle carries the rider; nobody boards at X1 or
    leaves at Y1 through the combined trip."""
    rules = NO_CHANGE + "X1,Y1,,,,,3,\n,,,,T1,W1,4,\n"
    feed = linked_feed(tmp_path, "two", rules, {"T1": ("WK", "X"), "W1": ("WK", "B")},
                       {"T1": "A 08:00  X1 08:10", "W1": "Y1 08:12  B 08:40"})
    tt, req, got, want = _compare(feed, "A", "B", WED, 0)
    assert got[1:] == want[1:] and got[-1] == _t(WED, 8, 40)
    it = [i for i in plan(tt, req) if i["departure"].startswith(WED.isoformat())][0]
    rides = _legs_ok(it, feed, WED, tt)
    assert [(lg["trip_id"], lg["from"]["stop_id"], lg["to"]["stop_id"], lg.get("in_seat", False))
            for lg in rides] == [("f:T1", "f:A", "f:X1", False), ("f:W1", "f:Y1", "f:B", True)]
    assert [lg["mode"] for lg in it["legs"]] == ["BUS", "BUS"]
    for o, d in (("X1", "B"), ("A", "Y1")):
        _tt, _req, got, want = _compare(feed, o, d, WED, 0)
        assert got[1:] == want[1:]


def test_links_dropped_with_warnings(tmp_path):
    """A link whose to_trip leaves before from_trip arrives is not compiled (and says so)."""
    feed = linked_feed(tmp_path, "bad", NO_CHANGE + ",,,,T1,W1,4,\n", {"T1": ("WK", "X"), "W1": ("WK", "B")},
                       {"T1": "A 08:00  X1 08:10", "W1": "X1 08:05  B 08:31"})
    tt = compile_timetable([FeedSource("f", feed, "f")])
    assert not tt.trip_is_combined.any()
    assert any("leaving before" in w for w in tt.meta["feeds"][0]["warnings"])


def _update(trip: str, day: date, delay: int | None = None) -> bytes:
    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = _t(day, 7, 0)
    e = m.entity.add()
    e.id = "1"
    e.trip_update.trip.trip_id = trip
    e.trip_update.trip.start_date = day.strftime("%Y%m%d")
    if delay is None:
        e.trip_update.trip.schedule_relationship = rt.TripDescriptor.CANCELED
    else:
        u = e.trip_update.stop_time_update.add()
        u.stop_id = "X1"
        u.departure.delay = delay
    return m.SerializeToString()


def test_realtime_delay_of_a_part_moves_the_combined_trip(tmp_path):
    feed = linked_feed(tmp_path, "rt", "X1,X1,,,,,3,\n,,,,T1,W1,4,\n", {"T1": ("WK", "X"), "W1": ("WK", "Beta")},
                       {"T1": "A 08:00  X1 08:10", "W1": "X1 08:10  B 08:31"})
    tt = compile_timetable([FeedSource("f", feed, "f")])
    data = _update("W1", WED, 300)
    ov = apply_trip_updates(tt, data, "f")
    net, _info = with_trip_updates(RefNetwork.from_gtfs([("f", feed)], WED), "f", data)
    _tt, req, got, want = _compare(feed, "A", "B", WED, 0, net=net, realtime=ov)
    assert got[1:] == want[1:] and got[-1] == _t(WED, 8, 36)
    its = plan(tt, req, realtime=ov)
    it = [i for i in its if i["departure"].startswith(WED.isoformat())][0]
    w1 = [lg for lg in it["legs"] if lg["trip_id"] == "f:W1"][0]
    assert w1["in_seat"] and w1["realtime"] and w1["delay_s"] == 300
    assert datetime.fromisoformat(w1["departure"]) == datetime(2025, 3, 5, 8, 15, tzinfo=TZ)
    assert datetime.fromisoformat(w1["arrival"]) == datetime(2025, 3, 5, 8, 36, tzinfo=TZ)
    assert it["transfers"] == 0
    _no_synthetic_ids(tt, its)
    # the next day keeps the schedule
    nxt = WED + timedelta(days=1)
    req2 = PlanRequest("f:A", "f:B", depart_at=datetime(2025, 3, 6, 7, 55, tzinfo=TZ), max_transfers=0)
    assert earliest_arrival(tt, req2, realtime=ov)[-1] == _t(nxt, 8, 31)


@pytest.mark.parametrize("cancelled", ["T1", "W1"])
def test_realtime_cancelled_part_cancels_the_combined_trip(tmp_path, cancelled):
    feed = chain_feed(tmp_path, name=f"cx{cancelled}")
    tt = compile_timetable([FeedSource("f", feed, "f")])
    data = _update(cancelled, WED)
    ov = apply_trip_updates(tt, data, "f")
    assert ov.counts["cancelled"] == 1 and not ov.counts["unmatched"]
    net, _info = with_trip_updates(RefNetwork.from_gtfs([("f", feed)], WED), "f", data)
    _tt, req, got, want = _compare(feed, "A", "B", WED, 2, net=net, realtime=ov)
    # nothing to B that day (the oracle's network has that day only; the router finds the next morning)
    assert want[1:] == [None, None, None]
    assert got[1:] == [_t(WED + timedelta(days=1), 8, 45)] * 3
    if cancelled == "T1":  # W1 -> W2 (boarding at X1) still runs in seat
        _tt, req, got, want = _compare(feed, "X1", "B", WED, 0, net=net, realtime=ov)
        assert got[1:] == want[1:] and got[-1] == _t(WED, 8, 45)


def test_combined_trips_survive_the_cache(tmp_path):
    feed = chain_feed(tmp_path)
    tt = compile_timetable([FeedSource("f", feed, "f")])
    save_timetable(tt, tmp_path / "cache")
    back = load_timetable(tmp_path / "cache")
    for name in ("trip_link_offsets", "trip_link_parts", "trip_link_first_pos"):
        assert np.array_equal(np.asarray(getattr(back, name)), np.asarray(getattr(tt, name))), name
    assert int(back.trip_is_combined.sum()) == 2
    t0 = datetime(2025, 3, 5, 7, 55, tzinfo=TZ)
    req = PlanRequest("f:A", "f:B", depart_at=t0, max_transfers=0)
    assert earliest_arrival(back, req) == earliest_arrival(tt, req)


# ---------------------------------------------------------------------------------------------
# random networks with random linked trips, against the rule-aware oracle

RANDOM_NETWORKS = 30


def _random_links(rng, tables: dict[str, str]) -> dict[str, str]:
    """Add linked trips to a random network: new trips leaving (or near) where a trip ends, after it
    arrives, on services of their own (so some links run on some days only), sometimes chained; links
    between existing trips where valid; transfers.txt rewritten with trip columns."""
    from reference import _hms, _seconds

    stops = [r.split(",")[0] for r in tables["stops.txt"].splitlines()[1:]]
    rows = [r.split(",") for r in tables["stop_times.txt"].splitlines()[1:]]
    by_trip: dict[str, list[list[str]]] = {}
    for r in rows:
        by_trip.setdefault(r[0], []).append(r)
    ends = {t: (rs[0][3], _seconds(rs[0][1]), _seconds(rs[0][2]), rs[-1][3], _seconds(rs[-1][1]),
                _seconds(rs[-1][2])) for t, rs in by_trip.items()}
    trips = tables["trips.txt"].splitlines()
    routes = tables["routes.txt"].splitlines()
    st = tables["stop_times.txt"].splitlines()
    links: list[tuple[str, str]] = []
    froms = list(ends)
    for i in range(int(rng.integers(2, 6))):
        a = froms[int(rng.integers(0, len(froms)))]
        _s0, _a0, _d0, last, arr_l, dep_l = ends[a]
        merged = rng.random() < 0.7
        first = last if merged else stops[int(rng.integers(0, len(stops)))]
        t = (arr_l if merged else dep_l) + int(rng.integers(0, 6)) * 60
        seq = [first] + [s for s in rng.permutation(stops).tolist() if s != first][:int(rng.integers(1, 4))]
        w = f"L{i}"
        routes.append(f"RL{i},L{i},3")
        trips.append(f"RL{i},{rng.choice(['WK', 'WE', 'WK'])},{w}")
        out = []
        for k, s in enumerate(seq):
            dep = t + (60 if rng.random() < 0.2 else 0)
            pu, do = int(rng.random() < 0.1), int(rng.random() < 0.1)
            out.append([w, _hms(t), _hms(dep), s, str(k + 1), str(pu), str(do)])
            t = dep + int(rng.integers(1, 12)) * 60
        st.extend(",".join(r) for r in out)
        ends[w] = (out[0][3], _seconds(out[0][1]), _seconds(out[0][2]), out[-1][3], _seconds(out[-1][1]),
                   _seconds(out[-1][2]))
        links.append((a, w))
        froms.append(w)  # later new trips may continue this one (chains)
    for a in ends:  # links between existing trips where the times allow
        for b in ends:
            if a != b and rng.random() < 0.05:
                la, aa, da = ends[a][3], ends[a][4], ends[a][5]
                fb, ab, db = ends[b][0], ends[b][1], ends[b][2]
                if (fb == la and db >= aa) or (fb != la and ab >= da):
                    links.append((a, b))
    tr = ["from_stop_id,to_stop_id,from_route_id,to_route_id,from_trip_id,to_trip_id,transfer_type,min_transfer_time"]
    for r in tables["transfers.txt"].splitlines()[1:]:
        f = r.split(",")
        tr.append(f"{f[0]},{f[1]},,,,,{f[2]},{f[3]}")
    tr.extend(f",,,,{a},{b},4," for a, b in links)
    return {**tables, "routes.txt": "\n".join(routes), "trips.txt": "\n".join(trips),
            "stop_times.txt": "\n".join(st), "transfers.txt": "\n".join(tr)}


@pytest.mark.parametrize("seed", range(RANDOM_NETWORKS))
def test_random_linked_trips_equal_oracle(tmp_path, seed):
    from reference import random_feed_tables
    from test_oracle_random import _net, _queries

    from routing.compile import CompileOptions

    rng = np.random.default_rng(1000 + seed)
    tables = _random_links(rng, random_feed_tables(rng))
    path = write_gtfs(tmp_path / "feed", tables, timezone="Europe/Berlin")
    tt = compile_timetable([FeedSource("x", path, "op")], CompileOptions(walk_radius_m=float(rng.choice([0.0, 300.0]))))
    assert tt.trip_is_combined.any()
    day = date(2025, 3, 5) + timedelta(days=int(rng.integers(0, 3)))
    rules = TransferRules.from_gtfs([("x", path)])
    nets: dict = {}
    combined_ids = set(tt.trip_ids[tt.trip_is_combined].tolist())
    # the queries of test_oracle_random plus ones from the start of every linked trip's first part
    qs = list(_queries(rng, tt, day))
    for t in np.flatnonzero(tt.trip_is_combined).tolist()[:6]:
        q0 = tt.trip_parts(t)[0][0]
        p = int(tt.trip_pattern[q0])
        o = str(tt.stop_ids[tt.pattern_stops[int(tt.pattern_stop_offsets[p])]])
        d = str(tt.stop_ids[tt.pattern_stops[int(tt.pattern_stop_offsets[int(tt.trip_pattern[t]) + 1]) - 1]])
        if o != d:
            t0 = datetime.combine(day, datetime.min.time(), tzinfo=TZ) + timedelta(
                seconds=int(tt.trip_start_s[q0]) - 600)
            qs.append(dict(origin=o, destination=d, t0=t0, max_transfers=int(rng.integers(0, 2)), min_change_s=0,
                           walk_speed_m_s=1.3, max_walk_m=1000.0))
    found = 0
    for q in qs:
        req = PlanRequest(q["origin"], q["destination"], depart_at=q["t0"], max_transfers=q["max_transfers"],
                          min_change_s=q["min_change_s"], walk_speed_m_s=q["walk_speed_m_s"],
                          max_walk_m=q["max_walk_m"])
        fp, change = walking_graph(tt, q["walk_speed_m_s"], q["max_walk_m"])
        if any(v == q["destination"] for v, _w in fp.get(q["origin"], [])):
            continue  # the router also walks all the way; the rules oracle counts journeys with rides only
        got = earliest_arrival(tt, req)
        net = _net(nets, path, q["t0"])
        want = earliest_arrivals_rules(net, q["origin"], q["destination"], int(q["t0"].timestamp()),
                                       q["max_transfers"] + 1, fp, change, rules, min_change_s=q["min_change_s"],
                                       walk_speed_m_s=q["walk_speed_m_s"], horizon_s=3 * 86400)
        assert got[1:] == want[1:], (seed, q)
        found += want[-1] is not None
        for it in plan(tt, req):
            for lg in it["legs"]:
                assert lg["trip_id"] is None or lg["trip_id"] not in combined_ids
            assert it["transfers"] == sum(1 for lg in it["legs"] if lg["mode"] != "WALK" and not lg.get("in_seat")) - 1
    assert found


def test_filters_hold_for_every_part(tmp_path):
    """A combined trip rides on each of its parts: a mode (or operator, or wheelchair) filter that removes one
    part removes the in-seat ride, not only a filter on the first part's route."""
    feed = linked_feed(tmp_path, "modes", "X1,X1,,,,,3,\n,,,,T1,W1,4,\n", {"T1": ("WK", "X"), "W1": ("WK", "Beta")},
                       {"T1": "A 08:00  X1 08:10", "W1": "X1 08:10  B 08:31"})
    routes = (feed / "routes.txt").read_text().replace("RW1,W1,3", "RW1,W1,2")  # W1 is a train
    (feed / "routes.txt").write_text(routes)
    tt = compile_timetable([FeedSource("f", feed, "f")])
    t0 = datetime(WED.year, WED.month, WED.day, 7, 55, tzinfo=TZ)
    req = PlanRequest("f:A", "f:B", depart_at=t0, max_transfers=1)
    assert earliest_arrival(tt, req)[-1] == _t(WED, 8, 31)
    assert earliest_arrival(tt, dataclasses.replace(req, modes=frozenset({"BUS", "RAIL"})))[-1] == _t(WED, 8, 31)
    assert earliest_arrival(tt, dataclasses.replace(req, modes=frozenset({"BUS"})))[-1] is None
    assert plan(tt, dataclasses.replace(req, modes=frozenset({"BUS"}))) == []
    assert earliest_arrival(tt, dataclasses.replace(req, modes=frozenset({"RAIL"})))[-1] is None


@pytest.mark.parametrize("rule, want_hm", [
    ("Z,Z,RW1,RU1,,,3,\n", (8, 50)),  # leaving W1 (the part arriving at Z) for U1's route: forbidden
    ("Z,Z,RT1,RU1,,,3,\n", (8, 40)),  # names the first part's route: not what arrives at Z
    ("Z,Z,,,W1,U1,2,600\n", (8, 50)),  # ten minutes from W1 to U1: U1 at 08:25 is missed
    ("Z,Z,,,T1,U1,3,\n", (8, 40)),  # names the first part's trip: not what arrives at Z
], ids=["part_route_forbidden", "first_route_named", "part_trip_min_time", "first_trip_named"])
def test_rules_judge_the_part_riding_there(tmp_path, rule, want_hm):
    """Route/trip transfer rules apply to the part of a combined trip that arrives (or leaves) at the stop:
    T1 -> W1 in seat to Z, then U1 (08:25) or U2 (08:35) to B."""
    name = "rp_" + str(abs(hash(rule)))
    feed = linked_feed(tmp_path, name, "X1,X1,,,,,3,\n,,,,T1,W1,4,\n" + rule,
                       {"T1": ("WK", "X"), "W1": ("WK", "Zeta"), "U1": ("WK", "Beta"), "U2": ("WK", "Beta")},
                       {"T1": "A 08:00  X1 08:10", "W1": "X1 08:10  Z 08:20", "U1": "Z 08:25  B 08:40",
                        "U2": "Z 08:35  B 08:50"})
    tt, req, got, want = _compare(feed, "A", "B", WED, 1)
    assert got[1:] == want[1:]
    assert got[-1] == _t(WED, *want_hm)
    its = plan(tt, req)
    assert min(int(datetime.fromisoformat(it["arrival"]).timestamp()) for it in its) == _t(WED, *want_hm)
    for it in its:
        _legs_ok(it, feed, WED, tt)
