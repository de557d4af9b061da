"""Search over a GTFS-Realtime overlay (Caltrain static feed + its TripUpdates)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from google.transit import gtfs_realtime_pb2 as rt
from gtfs_text import stop_times, write_gtfs
from reference import (RefNetwork, check_feasible, earliest_arrivals, random_feed_tables, walking_graph,
                       with_trip_updates)

from routing.compile import compile_timetable
from routing.feeds import FeedSource
from routing.realtime import apply_trip_updates
from routing.search import PlanRequest, earliest_arrival, plan


@pytest.fixture(scope="module")
def caltrain(shared_data):
    tt = compile_timetable([FeedSource("ct", shared_data / "caltrain-rt" / "caltrain.zip", "caltrain")])
    ov = apply_trip_updates(tt, (shared_data / "caltrain-rt" / "ct-trip-updates.pb").read_bytes(), "ct")
    return tt, ov


def _leg_times_match(tt, arr, dep, leg, ov=None) -> None:
    """The ride leg's times are the (merged real-time) times of its trip at its stops on an updated
    service day, the static times on any other day."""
    t = int(np.flatnonzero(tt.trip_ids == leg["trip_id"])[0])
    day = datetime.fromisoformat(leg["service_date"]).date()
    if ov is not None and (t, tt.day_index(day)) not in set(zip(ov.updated_trips.tolist(), ov.trip_day.tolist())):
        arr, dep = tt.pattern_arr, tt.pattern_dep
    p = int(tt.trip_pattern[t])
    c = t - int(tt.pattern_trip_offsets[p])
    n = int(tt.pattern_n_trips[p])
    so, tb = int(tt.pattern_stop_offsets[p]), int(tt.pattern_time_offsets[p])
    stops = tt.stop_ids[tt.pattern_stops[so:int(tt.pattern_stop_offsets[p + 1])]].tolist()
    i = stops.index(leg["from"]["stop_id"])
    j = stops.index(leg["to"]["stop_id"], i + 1)
    day = datetime.fromisoformat(leg["service_date"]).date()
    base = tt.day_start_utc(0, tt.day_index(day))
    assert datetime.fromisoformat(leg["departure"]) == base + timedelta(seconds=int(dep[tb + i * n + c]))
    assert datetime.fromisoformat(leg["arrival"]) == base + timedelta(seconds=int(arr[tb + j * n + c]))


def test_itineraries_use_real_time_predictions(caltrain):
    tt, ov = caltrain
    arr, dep = ov.merged_times(tt)
    changed = 0
    for t, day in zip(ov.updated_trips.tolist(), ov.trip_day.tolist()):
        p = int(tt.trip_pattern[t])
        c = t - int(tt.pattern_trip_offsets[p])
        n = int(tt.pattern_n_trips[p])
        so, tb = int(tt.pattern_stop_offsets[p]), int(tt.pattern_time_offsets[p])
        L = int(tt.pattern_stop_offsets[p + 1]) - so
        base = tt.day_start_utc(0, day)
        o = str(tt.stop_ids[tt.pattern_stops[so]])
        d = str(tt.stop_ids[tt.pattern_stops[so + L - 1]])
        when = base + timedelta(seconds=int(tt.pattern_dep[tb + c]) - 60)
        req = PlanRequest(o, d, depart_at=when, max_transfers=1)
        its = plan(tt, req, realtime=ov)
        assert its
        for it in its:
            for leg in it["legs"]:
                if leg["mode"] != "WALK":
                    _leg_times_match(tt, arr, dep, leg, ov)
        static = earliest_arrival(tt, req)[-1]
        live = earliest_arrival(tt, req, realtime=ov)[-1]
        changed += static != live
    assert changed > 0, "some delays change the earliest arrival"


def test_static_search_ignores_the_overlay(caltrain):
    tt, ov = caltrain
    t = int(ov.updated_trips[0])
    p = int(tt.trip_pattern[t])
    so = int(tt.pattern_stop_offsets[p])
    o = str(tt.stop_ids[tt.pattern_stops[so]])
    d = str(tt.stop_ids[tt.pattern_stops[int(tt.pattern_stop_offsets[p + 1]) - 1]])
    when = datetime(2023, 11, 7, 16, 0, tzinfo=timezone(timedelta(hours=-8)))
    its = plan(tt, PlanRequest(o, d, depart_at=when))
    assert its and any(leg["mode"] != "WALK" for it in its for leg in it["legs"]), "nothing to compare"
    for it in its:
        for leg in it["legs"]:
            if leg["mode"] != "WALK":
                _leg_times_match(tt, tt.pattern_arr, tt.pattern_dep, leg)


# --------------------------------------------------------------------------------------------
# the real-time oracle: the connection scan of tests/routing/reference.py on the timetable as the
# TripUpdates message has it (read by the oracle itself, not by routing.realtime)

DAY = date(2023, 11, 7)
TZ = ZoneInfo("America/Los_Angeles")


@pytest.fixture(scope="module")
def rt_oracle(shared_data, caltrain):
    tt, ov = caltrain
    path = shared_data / "caltrain-rt" / "caltrain.zip"
    static = RefNetwork.from_gtfs([("ct", path)], DAY)
    net, counts = with_trip_updates(static, "ct", (shared_data / "caltrain-rt" / "ct-trip-updates.pb").read_bytes())
    assert counts["applied"] == 19
    return net, walking_graph(tt)


def _queries(tt, n, seed, day, lo_h, hi_h):
    rng = np.random.default_rng(seed)
    served = np.flatnonzero(np.diff(tt.stop_pattern_offsets) > 0)
    parents = sorted({int(tt.stop_parent[s]) for s in served if tt.stop_parent[s] >= 0})
    cand = np.array(sorted(set(served.tolist()) | set(parents)))
    out = []
    while len(out) < n:
        o, d = rng.choice(cand, 2, replace=False)
        if o == tt.stop_parent[d] or d == tt.stop_parent[o] or (tt.stop_parent[o] >= 0 and tt.stop_parent[o] == d):
            continue
        t0 = datetime.combine(day, datetime.min.time(), tzinfo=TZ) + timedelta(
            seconds=int(rng.integers(lo_h * 3600, hi_h * 3600)))
        out.append(PlanRequest(str(tt.stop_ids[o]), str(tt.stop_ids[d]), depart_at=t0,
                               max_transfers=int(rng.integers(0, 3))))
    return out


def test_real_time_earliest_arrivals_equal_the_real_time_oracle(caltrain, rt_oracle):
    """Issue 13 item 2: under delays trains overtake; the search must still find the earliest arrival."""
    tt, ov = caltrain
    net, (fp, change) = rt_oracle
    changed = 0
    reqs = _queries(tt, 240, 11, DAY, 15, 20)  # the updated trains run 15:30-20:00
    for i, req in enumerate(reqs):
        t0 = int(req.depart_at.timestamp())
        want = earliest_arrivals(net, req.origin, req.destination, t0, req.max_transfers + 1, fp, change,
                                 horizon_s=14 * 3600)
        got = earliest_arrival(tt, req, realtime=ov)
        static = earliest_arrival(tt, req)
        # the oracle looks 14 h ahead: compare what it can see
        got, want, static = ([x if x is not None and x <= t0 + 14 * 3600 else None for x in v]
                             for v in (got, want, static))
        assert got == want, (i, req)
        changed += got != static
        if i < 60:
            for it in plan(tt, req, realtime=ov):
                check_feasible(it, net, fp, change)
    assert changed >= 20, "the snapshot changes many of these answers"


def test_a_snapshot_does_not_touch_other_days(caltrain):
    """Issue 13 item 1: the 2023-11-07 snapshot leaves 2023-11-14 (and 11-06, 11-08) as scheduled."""
    tt, ov = caltrain
    for day, n in ((date(2023, 11, 14), 200), (date(2023, 11, 8), 60), (date(2023, 11, 6), 60)):
        for req in _queries(tt, n, 5, day, 15, 20):
            assert earliest_arrival(tt, req, realtime=ov) == earliest_arrival(tt, req), req
            if day != date(2023, 11, 14):
                continue  # (itineraries of a neighbouring day may reach the updated trains of the 7th)
            assert [it["id"] for it in plan(tt, req, realtime=ov)] == [it["id"] for it in plan(tt, req)]


def _random_updates(rng, tt, feed_id: str, day: date, tz) -> bytes:
    """Random TripUpdates for trips running on ``day``: delays (often overtaking), early runs, skipped
    stops, cancellations; absolute times or delays."""
    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    base = int(tt.day_start_utc(0, tt.day_index(day)).timestamp())
    m.header.timestamp = base + 12 * 3600
    running = np.flatnonzero(tt.trips_running(tt.day_index(day)))
    for i, t in enumerate(rng.permutation(running)[: max(1, len(running) * 2 // 3)].tolist()):
        e = m.entity.add()
        e.id = str(i)
        tu = e.trip_update
        tu.trip.trip_id = str(tt.trip_ids[t]).split(":", 1)[1]
        tu.trip.start_date = day.strftime("%Y%m%d")
        if rng.random() < 0.1:
            tu.trip.schedule_relationship = rt.TripDescriptor.CANCELED
            continue
        p = int(tt.trip_pattern[t])
        c = t - int(tt.pattern_trip_offsets[p])
        a2, d2 = tt.pattern_times(p)
        stops = tt.stop_ids[tt.pattern_stops[tt.pattern_stop_slice(p)]].tolist()
        seqs = tt.pattern_stop_sequence[tt.pattern_stop_slice(p)].tolist()
        for pos in sorted(rng.choice(len(stops), int(rng.integers(1, len(stops) + 1)), replace=False).tolist()):
            u = tu.stop_time_update.add()
            if rng.random() < 0.5:
                u.stop_sequence = int(seqs[pos])
            u.stop_id = stops[pos].split(":", 1)[1]
            r = rng.random()
            if r < 0.1 and 0 < pos < len(stops) - 1:
                u.schedule_relationship = rt.TripUpdate.StopTimeUpdate.SKIPPED
            elif r < 0.5:
                u.departure.delay = int(rng.integers(-3, 40)) * 60
            else:
                u.arrival.time = base + int(a2[pos, c]) + int(rng.integers(-2, 40)) * 60
                if rng.random() < 0.5:
                    u.departure.time = u.arrival.time + int(rng.integers(0, 3)) * 60
    stops = [x.split(":", 1)[1] for x in tt.stop_ids.tolist()]
    for j in range(int(rng.integers(0, 3))):  # NEW trips over random stops
        e = m.entity.add()
        e.id = f"new{j}"
        tu = e.trip_update
        tu.trip.trip_id, tu.trip.start_date = f"NEW{j}", day.strftime("%Y%m%d")
        tu.trip.route_id = str(tt.route_ids[int(rng.integers(0, len(tt.route_ids)))]).split(":", 1)[1]
        tu.trip.schedule_relationship = rt.TripDescriptor.NEW
        t = base + int(rng.integers(6 * 3600, 24 * 3600)) // 60 * 60
        for s in rng.permutation(stops)[: int(rng.integers(2, 5))].tolist():
            u = tu.stop_time_update.add()
            u.stop_id = s
            u.arrival.time = t
            u.departure.time = t + int(rng.integers(0, 2)) * 60
            t = u.departure.time + int(rng.integers(1, 15)) * 60
    for j, t in enumerate(rng.permutation(running)[: int(rng.integers(0, 3))].tolist()):  # DUPLICATED trips
        e = m.entity.add()
        e.id = f"dup{j}"
        tu = e.trip_update
        tu.trip.trip_id, tu.trip.start_date = str(tt.trip_ids[t]).split(":", 1)[1], day.strftime("%Y%m%d")
        tu.trip.schedule_relationship = rt.TripDescriptor.DUPLICATED
        start = int(tt.trip_start_s[t]) + int(rng.integers(-60, 120)) * 60
        tu.trip_properties.trip_id = f"DUP{j}"
        tu.trip_properties.start_time = f"{start // 3600:02d}:{start % 3600 // 60:02d}:{start % 60:02d}"
        if rng.random() < 0.5:
            u = tu.stop_time_update.add()
            u.stop_sequence = int(tt.pattern_stop_sequence[tt.pattern_stop_slice(int(tt.trip_pattern[t]))][-1])
            u.arrival.delay = int(rng.integers(0, 20)) * 60
    return m.SerializeToString()


@pytest.mark.parametrize("seed", range(16))
def test_random_delays_equal_the_real_time_oracle(tmp_path, seed):
    """Random networks, random delays / skips / cancellations / added and duplicated trips: earliest
    arrivals equal the oracle's on the real-time timetable, every itinerary is feasible on it (issue 13
    items 1, 2, 6)."""
    rng = np.random.default_rng(1000 + seed)
    files = random_feed_tables(rng)
    path = write_gtfs(tmp_path / "f", files, defaults=True)
    tt = compile_timetable([FeedSource("f", path)])
    day = date(2025, 3, 4)
    tz = ZoneInfo("Europe/Berlin")
    data = _random_updates(rng, tt, "f", day, tz)
    ov = apply_trip_updates(tt, data, "f")
    net, _ = with_trip_updates(RefNetwork.from_gtfs([("f", path)], day), "f", data)
    fp, change = walking_graph(tt, 1.3, 1000.0)
    stops = tt.stop_ids.tolist()
    for _ in range(40):
        o, d = rng.choice(len(stops), 2, replace=False)
        t0 = datetime.combine(day, datetime.min.time(), tzinfo=tz) + timedelta(
            seconds=int(rng.integers(5 * 3600, 27 * 3600)))
        req = PlanRequest(stops[o], stops[d], depart_at=t0, max_transfers=int(rng.integers(0, 3)))
        want = earliest_arrivals(net, req.origin, req.destination, int(t0.timestamp()), req.max_transfers + 1,
                                 fp, change, horizon_s=40 * 3600)
        assert earliest_arrival(tt, req, realtime=ov) == want, req
        for it in plan(tt, req, realtime=ov):
            check_feasible(it, net, fp, change)


# --------------------------------------------------------------------------------------------
# what real feeds send: added and duplicated trips, trips named by route + start time, skipped stops,
# and the counts by cause (issue 13 item 6)

#   A --- B --- C --- D     R1: T1 08:00, T2 09:00 (10 min a hop); R2: U1 B 08:30 -> D; weekdays only
KIND_FILES = {
    "stops.txt": """
        stop_id,stop_name,stop_lat,stop_lon
        A,A,52.50,13.40
        B,B,52.50,13.42
        C,C,52.50,13.44
        D,D,52.50,13.46
    """,
    "routes.txt": "route_id,route_short_name,route_type\nR1,1,3\nR2,2,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WD,T1\nR1,WD,T2\nR2,WD,U1\n",
    "stop_times.txt": stop_times({
        "T1": "A 08:00 B 08:10 C 08:20 D 08:30",
        "T2": "A 09:00 B 09:10 C 09:20 D 09:30",
        "U1": "B 08:30 C 08:40 D 08:50",
    }),
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                    "WD,1,1,1,1,1,0,0,20250101,20251231\n",
}
BER = ZoneInfo("Europe/Berlin")
WED = date(2025, 6, 4)


def _at(hm: str, day: date = WED) -> int:
    h, m = (int(x) for x in hm.split(":"))
    return int(datetime(day.year, day.month, day.day, h, m, tzinfo=BER).timestamp())


def _kinds_message() -> bytes:
    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = _at("07:50")

    def entity():
        e = m.entity.add()
        e.id = str(len(m.entity))
        return e.trip_update

    tu = entity()  # a NEW trip on R1: A 08:20 -> C 08:35
    tu.trip.trip_id, tu.trip.route_id, tu.trip.start_date = "X1", "R1", "20250604"
    tu.trip.schedule_relationship = rt.TripDescriptor.NEW
    for stop, hm in (("A", "08:20"), ("C", "08:35")):
        u = tu.stop_time_update.add()
        u.stop_id = stop
        u.arrival.time = u.departure.time = _at(hm)
    tu = entity()  # T2 duplicated at 09:30 as T2b
    tu.trip.trip_id, tu.trip.start_date = "T2", "20250604"
    tu.trip.schedule_relationship = rt.TripDescriptor.DUPLICATED
    tu.trip_properties.trip_id, tu.trip_properties.start_time = "T2b", "09:30:00"
    tu.trip_properties.start_date = "20250604"
    tu = entity()  # U1 by route + start time, 5 min late from C
    tu.trip.route_id, tu.trip.start_time, tu.trip.start_date = "R2", "08:30:00", "20250604"
    u = tu.stop_time_update.add()
    u.stop_id = "C"
    u.departure.delay = 300
    tu = entity()  # T1 does not stop at B
    tu.trip.trip_id, tu.trip.start_date = "T1", "20250604"
    u = tu.stop_time_update.add()
    u.stop_id = "B"
    u.schedule_relationship = rt.TripUpdate.StopTimeUpdate.SKIPPED
    for trip, day in (("NOPE", "20250604"), ("T1", "20250607"), ("T1", "20300101")):
        tu = entity()
        tu.trip.trip_id, tu.trip.start_date = trip, day
        tu.delay = 60
    return m.SerializeToString()


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    path = write_gtfs(tmp_path_factory.mktemp("kinds") / "f", KIND_FILES, timezone="Europe/Berlin")
    tt = compile_timetable([FeedSource("f", path)])
    data = _kinds_message()
    return tt, apply_trip_updates(tt, data, "f"), with_trip_updates(RefNetwork.from_gtfs([("f", path)], WED), "f",
                                                                     data)[0]


def test_added_duplicated_route_start_and_causes(kinds):
    tt, ov, _ = kinds
    c = ov.counts
    assert (c["added"], c["duplicated"], c["matched_by_route_start"], c["skipped_stops"]) == (1, 1, 1, 1)
    assert c["matched"] == 4 and c["unmatched"] == 3
    assert c["unmatched_by_cause"] == {"unknown_trip_id": 1, "not_running_that_day": 1, "date_outside_timetable": 1}

    def ride(o, d, hm):
        its = plan(tt, PlanRequest(f"f:{o}", f"f:{d}", depart_at=datetime.fromtimestamp(_at(hm), BER),
                                   max_transfers=0), realtime=ov)
        return [leg for it in its for leg in it["legs"] if leg["mode"] != "WALK"][0]

    leg = ride("A", "C", "08:15")  # the added trip
    assert (leg["trip_id"], leg["departure"][11:16], leg["arrival"][11:16]) == ("f:X1", "08:20", "08:35")
    assert leg["realtime"] is True and leg["delay_s"] is None
    leg = ride("A", "D", "09:10")  # the duplicate
    assert (leg["trip_id"], leg["departure"][11:16], leg["arrival"][11:16]) == ("f:T2b", "09:30", "10:00")
    leg = ride("C", "D", "08:41")  # U1, matched by route + start time, leaves C at 08:45
    assert (leg["trip_id"], leg["departure"][11:16], leg["delay_s"]) == ("f:U1", "08:45", 300)
    leg = ride("B", "D", "07:55")  # T1 skips B: U1 at 08:30
    assert leg["trip_id"] == "f:U1"
    leg = ride("A", "D", "07:55")  # T1 itself, without B among its stops
    assert leg["trip_id"] == "f:T1" and [s["stop_id"] for s in leg["intermediate_stops"]] == ["f:C"]
    # the next Wednesday runs as scheduled
    its = plan(tt, PlanRequest("f:A", "f:C", depart_at=datetime.fromtimestamp(_at("08:15", date(2025, 6, 11)), BER),
                               max_transfers=0), realtime=ov)
    assert [leg["trip_id"] for leg in its[0]["legs"]] == ["f:T2"] and not its[0]["legs"][0]["realtime"]


def test_added_and_duplicated_trips_equal_the_oracle(kinds):
    tt, ov, net = kinds
    fp, change = walking_graph(tt, 1.3, 1000.0)
    n = 0
    for o in "ABCD":
        for d in "ABCD":
            if o == d:
                continue
            for hm in ("07:50", "08:05", "08:16", "08:25", "08:35", "08:55", "09:05", "09:25"):
                req = PlanRequest(f"f:{o}", f"f:{d}", depart_at=datetime.fromtimestamp(_at(hm), BER),
                                  max_transfers=1)
                t0 = _at(hm)
                want = earliest_arrivals(net, req.origin, req.destination, t0, 2, fp, change, horizon_s=10 * 3600)
                got = [x if x is not None and x <= t0 + 10 * 3600 else None
                       for x in earliest_arrival(tt, req, realtime=ov)]
                assert got == want, req
                for it in plan(tt, req, realtime=ov):
                    check_feasible(it, net, fp, change)
                n += 1
    assert n == 96


def test_real_time_arrive_by_and_range_match_the_oracle(caltrain, rt_oracle):
    """Arrive-by under real time: feasible on the real-time timetable, in time, and leaving a second later
    with no more rides is too late; a range search's every (departure, arrival, rides) is the oracle's."""
    from routing.search import range_profile

    tt, ov = caltrain
    net, (fp, change) = rt_oracle
    checked = 0
    for req in _queries(tt, 60, 21, DAY, 15, 19):
        deadline = req.depart_at + timedelta(hours=2)
        areq = PlanRequest(req.origin, req.destination, arrive_by=deadline, max_transfers=2)
        for it in plan(tt, areq, realtime=ov):
            check_feasible(it, net, fp, change)
            assert datetime.fromisoformat(it["arrival"]) <= deadline
            walking_only = all(lg["mode"] == "WALK" for lg in it["legs"])
            rides = 0 if walking_only else it["transfers"] + 1
            later = earliest_arrivals(net, areq.origin, areq.destination,
                                      int(datetime.fromisoformat(it["departure"]).timestamp()) + 1, rides, fp,
                                      change, horizon_s=6 * 3600, walk_only=walking_only)
            assert later[-1] is None or later[-1] > int(deadline.timestamp()), areq
            checked += 1
        rreq = PlanRequest(req.origin, req.destination, depart_at=req.depart_at, window_s=3600, max_transfers=2)
        for dep, arr, k in range_profile(tt, rreq, realtime=ov):
            want = earliest_arrivals(net, rreq.origin, rreq.destination, int(dep.timestamp()), k, fp, change,
                                     horizon_s=int((arr - dep).total_seconds()) + 60, walk_only=False)
            assert want[k] == int(arr.timestamp()), (rreq, dep, k)
            checked += 1
    assert checked > 50


@pytest.mark.slow
def test_nyc_snapshot_moved_to_2026_equals_the_oracle(shared_data):
    """NYC subway: the 2021 B-division snapshot moved onto a 2026 Friday (bench/realtime_oracle.py) — trips
    named by route + start time, hundreds of stop updates — planned equal to the real-time oracle."""
    import importlib.util
    from pathlib import Path

    # load the bench script by its path: bench/ on sys.path would shadow packages (bench/clearing.py vs clearing)
    spec = importlib.util.spec_from_file_location(
        "bench_realtime_oracle", Path(__file__).resolve().parents[2] / "bench" / "realtime_oracle.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    compare, shifted = mod.compare, mod.shifted

    sub = shared_data / "nyc-mta" / "subway.zip"
    tt = compile_timetable([FeedSource("subway", sub, "mta")])
    tz, new = ZoneInfo("America/New_York"), date(2026, 10, 2)
    data = shifted(tt, (shared_data / "nyc-subway-gtfsrt-2021" / "b_division.nyct.gtfsrt").read_bytes(), "subway",
                   tz, date(2021, 11, 26), new)
    ov = apply_trip_updates(tt, data, "subway")
    assert ov.counts["matched"] >= 30
    net, _ = with_trip_updates(RefNetwork.from_gtfs([("subway", sub)], new), "subway", data)
    res = compare(tt, ov, net, tz, new, 120, 13, 15, 18, horizon_h=6)
    assert res["equal_to_oracle"] == 120, res["differences"]
