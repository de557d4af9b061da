"""Compiling feeds into the Timetable: patterns, times, services, transfers, footpaths."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gtfs_text import stop_times, write_gtfs

from routing.compile import CompileOptions, compile_timetable
from routing.feeds import FeedSource, parse_time_strings
from routing.timetable import Timetable

REPO = Path(__file__).resolve().parents[2]

#   A ----1km---- B ----1km---- C ----1km---- D       (one street, stops ~700 m apart)
LINE_STOPS = """
    stop_id,stop_name,stop_lat,stop_lon
    A,Alpha,52.5000,13.4000
    B,Beta,52.5000,13.4100
    C,Gamma,52.5000,13.4200
    D,Delta,52.5000,13.4300
"""
ROUTE = """
    route_id,route_short_name,route_long_name,route_type
    R1,1,One,3
"""


def _compile(tmp_path: Path, files: dict[str, str], feed_id: str = "f", **kw) -> Timetable:
    return compile_timetable([FeedSource(feed_id, write_gtfs(tmp_path / feed_id, files, **kw))])


def _trips_of(tt: Timetable, p: int) -> list[str]:
    a, b = tt.pattern_trip_offsets[p], tt.pattern_trip_offsets[p + 1]
    return [t.split(":", 1)[1] for t in tt.trip_ids[a:b].tolist()]


def _pattern_of(tt: Timetable, trip: str) -> int:
    return int(tt.trip_pattern[tt.trip_ids.tolist().index(f"f:{trip}")])


def _times(tt: Timetable, trip: str) -> tuple[list[int], list[int]]:
    t = tt.trip_ids.tolist().index(f"f:{trip}")
    p = int(tt.trip_pattern[t])
    a, d = tt.pattern_times(p)
    c = t - int(tt.pattern_trip_offsets[p])
    return a[:, c].tolist(), d[:, c].tolist()


def _hm(h: int, m: int = 0) -> int:
    return h * 3600 + m * 60


def test_overtaking_trips_are_split_into_fifo_patterns(tmp_path: Path) -> None:
    #  time ->   08:00      08:10      08:20      08:30
    #  T1 local  A -------- B -------- C -------- D          (A 08:00 .. D 08:30)
    #  T2 expr.     A --B--C--D                               (A 08:05 .. D 08:20): overtakes T1
    #  T3 local                         A ------ ... ------ D (A 08:30 .. D 09:00): behind T1
    tt = _compile(tmp_path, {
        "stops.txt": LINE_STOPS, "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T2\nR1,WK,T3\n",
        "stop_times.txt": stop_times({
            "T1": "A 08:00 B 08:10 C 08:20 D 08:30",
            "T2": "A 08:05 B 08:10 C 08:15 D 08:20",
            "T3": "A 08:30 B 08:40 C 08:50 D 09:00",
        }),
    })
    assert tt.n_patterns == 2
    assert sorted(_trips_of(tt, p) for p in range(2)) == [["T1", "T3"], ["T2"]]
    for p in range(tt.n_patterns):
        a, d = tt.pattern_times(p)
        assert (np.diff(a, axis=1) >= 0).all() and (np.diff(d, axis=1) >= 0).all()
    assert _times(tt, "T2")[0] == [_hm(8, 5), _hm(8, 10), _hm(8, 15), _hm(8, 20)]


def test_equal_departures_are_ordered_by_arrival_not_split(tmp_path: Path) -> None:
    # both leave A at 08:00; SLOW is listed first but FAST is ahead everywhere after A
    tt = _compile(tmp_path, {
        "stops.txt": LINE_STOPS, "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,SLOW\nR1,WK,FAST\n",
        "stop_times.txt": stop_times({"SLOW": "A 08:00 B 08:12 C 08:24", "FAST": "A 08:00 B 08:10 C 08:20"}),
    })
    assert tt.n_patterns == 1 and _trips_of(tt, 0) == ["FAST", "SLOW"]


def test_pickup_dropoff_pattern_splits_and_same_pattern_merges(tmp_path: Path) -> None:
    # T1 and T2 stop identically; T3 does not let anyone off at B -> its own pattern
    tt = _compile(tmp_path, {
        "stops.txt": LINE_STOPS, "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T2\nR1,WK,T3\n",
        "stop_times.txt": """
            trip_id,arrival_time,departure_time,stop_id,stop_sequence,pickup_type,drop_off_type
            T2,09:00:00,09:00:00,A,1,0,0
            T2,09:10:00,09:10:00,B,2,0,0
            T1,08:00:00,08:00:00,A,1,0,0
            T1,08:10:00,08:10:00,B,2,0,0
            T3,10:00:00,10:00:00,A,1,0,0
            T3,10:10:00,10:10:00,B,2,0,1
        """,
    })
    assert tt.n_patterns == 2
    p12 = _pattern_of(tt, "T1")
    assert _trips_of(tt, p12) == ["T1", "T2"]  # sorted by departure
    p3 = _pattern_of(tt, "T3")
    assert tt.pattern_dropoff[tt.pattern_stop_slice(p3)].tolist() == [0, 1]
    assert tt.trip_start_s[tt.pattern_trip_offsets[p12]:tt.pattern_trip_offsets[p12 + 1]].tolist() == [
        _hm(8), _hm(9)]
    # stop -> patterns index: A and B are on both patterns at positions 0 and 1
    a = tt.find_stop("f:A")
    k = slice(tt.stop_pattern_offsets[a], tt.stop_pattern_offsets[a + 1])
    assert sorted(tt.stop_patterns[k].tolist()) == [0, 1] and tt.stop_pattern_pos[k].tolist() == [0, 0]


def test_loop_route_visits_a_stop_twice(tmp_path: Path) -> None:
    #  A -> B -> C -> A  (circle line)
    tt = _compile(tmp_path, {
        "stops.txt": LINE_STOPS, "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\n",
        "stop_times.txt": stop_times({"T1": "A 08:00 B 08:10 C 08:20 A 08:30"}),
    })
    a = tt.find_stop("f:A")
    k = slice(tt.stop_pattern_offsets[a], tt.stop_pattern_offsets[a + 1])
    assert tt.stop_pattern_pos[k].tolist() == [0, 3]


def test_frequencies_expand_into_trips(tmp_path: Path) -> None:
    # F1: every 20 min 06:00-07:00 (exact), F2: every 30 min 10:00-11:00 (not exact); template times ignored
    tt = _compile(tmp_path, {
        "stops.txt": LINE_STOPS, "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,F1\nR1,WK,F2\n",
        "stop_times.txt": stop_times({"F1": "A 00:00 B 00:10/00:11 C 00:20", "F2": "A 05:00 B 05:07"}),
        "frequencies.txt": """
            trip_id,start_time,end_time,headway_secs,exact_times
            F1,06:00:00,07:00:00,1200,1
            F2,10:00:00,11:00:00,1800,0
        """,
    })
    ids = tt.trip_ids.tolist()
    assert ids.count("f:F1") == 3 and ids.count("f:F2") == 2
    f1 = [i for i, t in enumerate(ids) if t == "f:F1"]
    assert tt.trip_start_s[f1].tolist() == [_hm(6), _hm(6, 20), _hm(6, 40)]
    assert set(tt.trip_frequency[f1].tolist()) == {1}
    f2 = [i for i, t in enumerate(ids) if t == "f:F2"]
    assert set(tt.trip_frequency[f2].tolist()) == {2}
    p = int(tt.trip_pattern[f1[1]])
    a, d = tt.pattern_times(p)
    col = f1[1] - int(tt.pattern_trip_offsets[p])
    assert a[:, col].tolist() == [_hm(6, 20), _hm(6, 30), _hm(6, 40)]
    assert d[:, col].tolist() == [_hm(6, 20), _hm(6, 31), _hm(6, 40)]


def test_calendar_dates_only_and_exceptions(tmp_path: Path) -> None:
    tt = _compile(tmp_path, {
        "stops.txt": LINE_STOPS, "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id\nR1,XMAS,T1\nR1,WEEKDAY,T2\n",
        "stop_times.txt": stop_times({"T1": "A 08:00 B 08:10", "T2": "A 09:00 B 09:10"}),
        "calendar.txt": """
            service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date
            WEEKDAY,1,1,1,1,1,0,0,20251222,20251228
        """,
        "calendar_dates.txt": """
            service_id,date,exception_type
            XMAS,20251225,1
            XMAS,20251226,1
            WEEKDAY,20251225,2
        """,
    })
    assert tt.first_day == date(2025, 12, 22) and tt.n_days == 7
    runs = {t: [tt.first_day.fromordinal(tt.first_day_ordinal + d).day for d in range(tt.n_days)
                if tt.trips_running(d)[tt.trip_ids.tolist().index(f"f:{t}")]] for t in ("T1", "T2")}
    assert runs == {"T1": [25, 26], "T2": [22, 23, 24, 26]}
    assert not tt.trips_running(-1).any() and not tt.trips_running(99).any()


def test_times_past_midnight_and_day_start_across_dst(tmp_path: Path) -> None:
    tt = _compile(tmp_path, {
        "stops.txt": LINE_STOPS, "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,NIGHT\n",
        "stop_times.txt": stop_times({"NIGHT": "A 23:50 B 24:10 C 28:05:30"}),
    }, timezone="Europe/Berlin")
    assert _times(tt, "NIGHT")[0] == [_hm(23, 50), _hm(24, 10), _hm(28, 5) + 30]
    # 2025-03-30: Berlin switches to CEST; "noon minus 12 h" is 23:00 CET of the 29th = 22:00 UTC
    d = tt.day_index(date(2025, 3, 30))
    assert tt.day_start_utc(0, d) == datetime(2025, 3, 29, 22, 0, tzinfo=timezone.utc)
    assert tt.day_start_utc(0, d + 1) == datetime(2025, 3, 30, 22, 0, tzinfo=timezone.utc)


def test_blank_times_interpolated_by_distance_and_by_shape_dist(tmp_path: Path) -> None:
    # B is halfway between A and C on the map; the shape distances put it at 3/4
    tt = _compile(tmp_path, {
        "stops.txt": LINE_STOPS, "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,GEO\nR1,WK,SHP\n",
        "stop_times.txt": """
            trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled
            GEO,08:00:00,08:00:00,A,1,
            GEO,,,B,2,
            GEO,,,C,3,
            GEO,08:30:00,08:31:00,D,4,
            SHP,09:00:00,09:00:00,A,1,0
            SHP,,,B,2,3.0
            SHP,09:20:00,09:20:00,C,3,4.0
        """,
    })
    assert _times(tt, "GEO") == ([_hm(8), _hm(8, 10), _hm(8, 20), _hm(8, 30)],
                                 [_hm(8), _hm(8, 10), _hm(8, 20), _hm(8, 31)])
    assert _times(tt, "SHP")[0] == [_hm(9), _hm(9, 15), _hm(9, 20)]


#   station S  (platforms P1, P2; entrance E)        Q (a bus stop 60 m from P1)
#   transfers.txt: S->S min 180 s (applies to P1/P2), P2->P2 forbidden (more specific),
#                  P1->Q forbidden (removes the generated walk), T1 -> T2 timed at P1/P2
STATION_STOPS = """
    stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station,wheelchair_boarding
    S,Station,52.5000,13.4000,1,,1
    P1,Station platform 1,52.5000,13.4001,0,S,
    P2,Station platform 2,52.5001,13.4001,0,S,2
    E,Station entrance,52.5002,13.4000,2,S,
    Q,Bus stop,52.5000,13.4010,,,
    R,Far stop,52.6000,13.4000,,,
"""


def test_station_transfer_rules_apply_to_children(tmp_path: Path) -> None:
    tt = _compile(tmp_path, {
        "stops.txt": STATION_STOPS, "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T2\nR1,WK,T3\n",
        "stop_times.txt": stop_times({"T1": "R 07:00 P1 08:00", "T2": "P2 08:05 R 09:00", "T3": "Q 08:00 R 08:30"}),
        "transfers.txt": """
            from_stop_id,to_stop_id,transfer_type,min_transfer_time,from_trip_id,to_trip_id
            S,S,2,180,,
            P2,P2,3,,,
            P1,Q,3,,,
            P1,P2,1,,T1,T2
        """,
    })
    i = tt.stop_index
    assert tt.stop_min_change_s[i["f:P1"]] == 180
    assert tt.stop_no_transfer[i["f:P2"]] and not tt.stop_no_transfer[i["f:P1"]]

    def fp(a: str) -> dict[str, int]:
        s = i[f"f:{a}"]
        sl = slice(tt.footpath_offsets[s], tt.footpath_offsets[s + 1])
        return {tt.stop_ids[t].split(":")[1]: int(x) for t, x in zip(tt.footpath_to[sl], tt.footpath_s[sl])}

    assert fp("P1") == {"P2": 180}  # station rule beats the 9 s walk; P1 -> Q forbidden
    p2 = fp("P2")
    assert set(p2) == {"P1", "Q"} and p2["P1"] == 180 and 40 < p2["Q"] < 80  # Q: a generated ~66 m walk
    assert "P1" in fp("Q")  # rules are directed: only P1 -> Q is forbidden
    # trip-to-trip rule kept separately, on global trip / stop indices
    assert tt.trip_transfer_type.tolist() == [1]
    ids = tt.trip_ids.tolist()
    assert ids[tt.trip_transfer_from_trip[0]] == "f:T1" and ids[tt.trip_transfer_to_trip[0]] == "f:T2"
    assert tt.trip_transfer_from_stop[0] == i["f:P1"] and tt.trip_transfer_to_stop[0] == i["f:P2"]
    # parents, location types, wheelchair inheritance
    assert tt.stop_parent[i["f:P1"]] == i["f:S"] and tt.stop_parent[i["f:Q"]] == -1
    assert tt.stop_location_type[i["f:E"]] == 2
    assert tt.stop_wheelchair_boarding[i["f:P1"]] == 1 and tt.stop_wheelchair_boarding[i["f:P2"]] == 2


def test_generated_footpaths_and_footpaths_file(tmp_path: Path) -> None:
    files = {
        "stops.txt": STATION_STOPS, "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T3\n",
        "stop_times.txt": stop_times({"T1": "R 07:00 P1 08:00", "T3": "Q 08:00 R 08:30"}),
    }
    tt = _compile(tmp_path, files)
    i = tt.stop_index
    s = i["f:P1"]
    sl = slice(tt.footpath_offsets[s], tt.footpath_offsets[s + 1])
    assert tt.stop_ids[tt.footpath_to[sl]].tolist() == ["f:Q"]  # R is 11 km away; S/E are not served
    m = float(tt.footpath_m[sl][0])
    assert 55 < m < 65 and tt.footpath_s[sl][0] == int(np.ceil(m / 1.3))
    # a footpaths file replaces generated links
    csv = tmp_path / "fp.csv"
    csv.write_text("from_stop_id,to_stop_id,walk_seconds\nf:P1,f:R,600\nf:NOPE,f:R,1\n")
    tt2 = compile_timetable([FeedSource("f", tmp_path / "f")], CompileOptions(footpaths_file=csv))
    s = tt2.stop_index["f:P1"]
    sl = slice(tt2.footpath_offsets[s], tt2.footpath_offsets[s + 1])
    assert tt2.stop_ids[tt2.footpath_to[sl]].tolist() == ["f:R"] and tt2.footpath_s[sl].tolist() == [600]
    assert len(tt2.footpath_to) == 1
    # radius 0: no generated links at all
    assert len(compile_timetable([FeedSource("f", tmp_path / "f")], CompileOptions(walk_radius_m=0)).footpath_to) == 0


def test_two_feeds_are_namespaced_and_keep_their_time_zones(tmp_path: Path) -> None:
    trips = "route_id,service_id,trip_id\nR1,WK,T1\n"
    st = stop_times({"T1": "A 08:00 B 08:10"})
    f1 = write_gtfs(tmp_path / "bus", {"stops.txt": LINE_STOPS, "routes.txt": ROUTE, "trips.txt": trips,
                                       "stop_times.txt": st}, timezone="Europe/Berlin")
    f2 = write_gtfs(tmp_path / "metro", {"stops.txt": LINE_STOPS, "routes.txt": ROUTE, "trips.txt": trips,
                                         "stop_times.txt": st}, timezone="Asia/Shanghai", as_zip=True)
    tt = compile_timetable([FeedSource("bus", f1, "op_bus"), FeedSource("metro", f2, "op_metro")])
    assert tt.feed_ids.tolist() == ["bus", "metro"]
    assert tt.feed_operator_ids.tolist() == ["op_bus", "op_metro"]
    assert tt.feed_timezones.tolist() == ["Europe/Berlin", "Asia/Shanghai"]
    assert tt.stop_ids.tolist()[:5] == ["bus:A", "bus:B", "bus:C", "bus:D", "metro:A"]
    assert tt.route_ids.tolist() == ["bus:R1", "metro:R1"] and tt.route_feed.tolist() == [0, 1]
    # same coordinates in both feeds: a zero-length walking link joins them
    a = tt.stop_index["bus:A"]
    sl = slice(tt.footpath_offsets[a], tt.footpath_offsets[a + 1])
    assert tt.stop_ids[tt.footpath_to[sl]].tolist()[0] == "metro:A" and tt.footpath_s[sl][0] == 0
    day = tt.day_index(date(2025, 6, 1))
    assert tt.day_start_utc(1, day) == datetime(2025, 5, 31, 16, 0, tzinfo=timezone.utc)


def test_stop_timezone_kept_for_display(shared_data: Path) -> None:
    tt = compile_timetable([FeedSource("xrl", shared_data / "hk-xrl/hk_xrl.zip")])
    assert tt.feed_timezones.tolist() == ["Asia/Hong_Kong"]
    assert {"Asia/Shanghai", "Asia/Hong_Kong"} <= set(tt.stop_timezones.tolist())
    assert tt.route_modes.tolist() == [3]  # RAIL


def _assert_matches_source(tt: Timetable, feed: Path, feed_id: str) -> None:
    """Every compiled trip has exactly its stop_times.txt stops and times (vectorised check)."""
    with zipfile.ZipFile(feed) as zf:
        st = pd.read_csv(zf.open("stop_times.txt"), dtype=str, keep_default_na=False)
    st = st.apply(lambda c: c.str.strip())
    st["seq"] = st.stop_sequence.astype(int)
    st = st.sort_values(["trip_id", "seq"], kind="stable")
    assert tt.n_trips == st.trip_id.nunique()
    # unroll the stop-major pattern blocks back into per-trip rows, trips ordered by id
    tids = np.array([t.split(":", 1)[1] for t in tt.trip_ids.tolist()], dtype=object)
    order = np.argsort(tids, kind="stable")
    p = tt.trip_pattern[order].astype(np.int64)
    col = order - tt.pattern_trip_offsets[p]
    length = np.diff(tt.pattern_stop_offsets)[p]
    rep = np.repeat(np.arange(len(order)), length)
    pos = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    cell = tt.pattern_time_offsets[p][rep] + pos * tt.pattern_n_trips[p][rep] + col[rep]
    assert np.array_equal(np.repeat(tids[order], length), st.trip_id.to_numpy(object))
    assert np.array_equal(tt.stop_ids[tt.pattern_stops[tt.pattern_stop_offsets[p][rep] + pos]],
                          (feed_id + ":" + st.stop_id).to_numpy(str))
    assert np.array_equal(tt.pattern_arr[cell], parse_time_strings(st.arrival_time.to_numpy(object)))
    assert np.array_equal(tt.pattern_dep[cell], parse_time_strings(st.departure_time.to_numpy(object)))
    for q in range(tt.n_patterns):  # FIFO inside every pattern, sorted by first departure
        a, d = tt.pattern_times(q)
        assert (np.diff(a, axis=1) >= 0).all() and (np.diff(d, axis=1) >= 0).all()
    k = np.arange(len(tt.stop_patterns))
    owner = np.repeat(np.arange(tt.n_stops), np.diff(tt.stop_pattern_offsets))
    assert np.array_equal(tt.pattern_stops[tt.pattern_stop_offsets[tt.stop_patterns[k]] + tt.stop_pattern_pos[k]],
                          owner)


def test_caltrain_compiles_exactly(shared_data: Path) -> None:
    feed = shared_data / "caltrain-rt/caltrain.zip"
    tt = compile_timetable([FeedSource("ct", feed)])
    _assert_matches_source(tt, feed, "ct")
    assert tt.trips_running(tt.day_index(date(2023, 11, 7))).sum() == 104
    assert all(a.flags.writeable is False for a in (tt.pattern_arr, tt.stop_ids, tt.footpath_to))


@pytest.mark.parametrize("rel", [
    "hk-xrl/hk_xrl.zip", "zakroczym-fares-v2/zakroczym.zip", "transcollines-fares-v2/transcollines-qc-ca-fares.zip",
    "nyc-mta/lirr.zip",
    pytest.param("wmata-rail/wmata_rail.zip", marks=pytest.mark.slow),
    pytest.param("nyc-mta/metro_north.zip", marks=pytest.mark.slow),
])
def test_real_feed_compiles_exactly(shared_data: Path, rel: str) -> None:
    tt = compile_timetable([FeedSource("x", shared_data / rel)])
    _assert_matches_source(tt, shared_data / rel, "x")


@pytest.mark.slow
def test_subway_compiles_exactly(shared_data: Path) -> None:
    feed = shared_data / "nyc-mta/subway.zip"
    tt = compile_timetable([FeedSource("subway", feed)])
    _assert_matches_source(tt, feed, "subway")
    assert tt.trips_running(tt.day_index(date(2026, 10, 7))).sum() == 8497
    # transfers.txt: station 101 -> 101 (180 s) applies between its platforms 101N / 101S
    i = tt.stop_index
    assert tt.stop_min_change_s[i["subway:101N"]] == 180


_MEASURE = r"""
import datetime, json, sys, time
from pathlib import Path
from routing.feeds import FeedSource
from routing.cache import load_or_compile


def hwm_mb():
    # VmHWM: peak RSS of this process image (ru_maxrss would include the parent's peak before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


t = time.perf_counter()
tt, loaded = load_or_compile([FeedSource(Path(p).stem, Path(p)) for p in sys.argv[2:]], Path(sys.argv[1]))
s = time.perf_counter() - t
day = tt.day_index(datetime.date(2026, 10, 7))
running = tt.trips_running(day)
trip_feed = tt.route_feed[tt.trip_route]
print(json.dumps({"loaded": loaded, "s": s, "rss_mb": hwm_mb(), "stop_times": int(tt.pattern_arr.shape[0]),
                  "days": {f: int(running[trip_feed == i].sum()) for i, f in enumerate(tt.feed_ids.tolist())}}))
"""


@pytest.mark.slow
def test_new_york_city_compiles_and_loads_within_budget(shared_data: Path, tmp_path: Path) -> None:
    """Subway + six bus feeds (8.0 M stop times): compile in <= 1.5 GB peak RSS, load the cache in a
    fresh process in <= 400 MB. Times are printed, not asserted: `make bench-nyc` measures them."""
    d = shared_data / "nyc-mta"
    feeds = [d / f"{n}.zip" for n in ("subway", "bus_brooklyn", "bus_bronx", "bus_manhattan", "bus_queens",
                                      "bus_staten_island", "bus_mta_bus_company")]
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _MEASURE, str(tmp_path / "cache"), *map(str, feeds)], cwd=REPO,
                             capture_output=True, text=True, check=True, timeout=300)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    built, loaded = runs
    print(f"NYC city: compile+save {built['s']:.1f} s, peak RSS {built['rss_mb']:.0f} MB; "
          f"cache load {loaded['s']:.3f} s, RSS {loaded['rss_mb']:.0f} MB")
    assert (built["loaded"], loaded["loaded"]) == (False, True)
    for r in runs:
        assert r["stop_times"] == 8_000_304
        assert r["days"] == {"subway": 8497, "bus_brooklyn": 13371, "bus_bronx": 9709, "bus_manhattan": 8575,
                             "bus_queens": 7603, "bus_staten_island": 4523, "bus_mta_bus_company": 11378}
    assert built["rss_mb"] <= 1536
    assert loaded["rss_mb"] <= 400


def test_pattern_distances_follow_the_shape(tmp_path: Path) -> None:
    #   C . . . . B        the bus runs A -> (north) -> corner -> (east) -> B, 1 km each;
    #   |                  the straight line A-B is only 1.41 km.
    #   A                  Stop Z lies 5 km off its shape: that pattern keeps straight lines.
    tt = _compile(tmp_path, {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon
            A,A,52.0000,13.0000
            M,Mid,52.0090,13.0000
            B,B,52.0090,13.0146
            Z,Z,52.0500,13.0146
        """,
        "routes.txt": ROUTE,
        "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,WK,T1,SH\nR1,WK,T2,SH\n",
        "shapes.txt": """
            shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence
            SH,52.0000,13.0000,1
            SH,52.0045,13.0000,2
            SH,52.0090,13.0000,3
            SH,52.0090,13.0073,4
            SH,52.0090,13.0146,5
        """,
        "stop_times.txt": stop_times({"T1": "A 08:00 B 08:10", "T2": "A 09:00 Z 09:10"}),
    })
    d1 = tt.pattern_stop_dist_m[tt.pattern_stop_slice(_pattern_of(tt, "T1"))].tolist()
    assert d1[0] == 0 and 1980 < d1[1] < 2020
    d2 = tt.pattern_stop_dist_m[tt.pattern_stop_slice(_pattern_of(tt, "T2"))].tolist()
    assert 5500 < d2[1] < 5800  # straight line A -> Z
    assert tt.shape_ids.tolist() == ["f:SH"] and 1980 < tt.shape_dist_m[-1] < 2020


def test_routing_core_imports_no_application_packages() -> None:
    code = (
        "import sys, routing, routing.feeds, routing.compile, routing.cache, routing.realtime, routing.footpaths\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlmodel', 'maas', 'ticketing', 'clearing')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cache_hit_path_is_light() -> None:
    """Serving a cached timetable imports neither pandas, gtfs-kit nor scipy."""
    code = "import sys, routing.cache, routing.timetable\nprint(sorted({'pandas', 'gtfs_kit', 'scipy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_several_agencies_and_recommended_transfer_beyond_radius(tmp_path: Path) -> None:
    #  A (bus, agency BUS) ............ 2 km ............ D (tram, agency TRAM)
    #  transfers.txt recommends A -> D (type 0) although it is beyond the 500 m radius
    tt = _compile(tmp_path, {
        "agency.txt": """
            agency_id,agency_name,agency_url,agency_timezone
            BUS,Bus Co,https://bus.example,Europe/Berlin
            TRAM,Tram Co,https://tram.example,Europe/Berlin
        """,
        "stops.txt": LINE_STOPS,
        "routes.txt": """
            route_id,agency_id,route_short_name,route_type
            R1,BUS,1,3
            R2,TRAM,T,0
        """,
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\nR2,WK,T2\n",
        "stop_times.txt": stop_times({"T1": "A 08:00 B 08:10", "T2": "D 08:20 C 08:30"}),
        "transfers.txt": "from_stop_id,to_stop_id,transfer_type\nA,D,0\n",
    })
    assert tt.route_agency_names.tolist() == ["Bus Co", "Tram Co"]
    assert [m for m in tt.route_modes.tolist()] == [0, 1]  # BUS, TRAM
    a, d = tt.stop_index["f:A"], tt.stop_index["f:D"]
    sl = slice(tt.footpath_offsets[a], tt.footpath_offsets[a + 1])
    to = tt.footpath_to[sl].tolist()
    assert d in to
    m = float(tt.footpath_m[sl][to.index(d)])
    assert 1900 < m < 2100 and tt.footpath_s[sl][to.index(d)] == int(np.ceil(m / 1.3))
