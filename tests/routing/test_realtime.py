"""GTFS-Realtime TripUpdates as a copy-on-write overlay."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from google.transit import gtfs_realtime_pb2 as rt
from gtfs_text import stop_times, write_gtfs

from routing.compile import compile_timetable
from routing.errors import RealtimeError
from routing.feeds import FeedSource
from routing.realtime import apply_trip_updates

#   A --- B --- C --- D --- E      route R1; T1 08:00 .. 08:40, T2 09:00 .. 09:40, F (every 30 min 10:00-11:00)
FILES = {
    "stops.txt": """
        stop_id,stop_name,stop_lat,stop_lon
        A,A,52.50,13.40
        B,B,52.50,13.41
        C,C,52.50,13.42
        D,D,52.50,13.43
        E,E,52.50,13.44
    """,
    "routes.txt": "route_id,route_short_name,route_type\nR1,1,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T2\nR1,WK,F\n",
    "stop_times.txt": stop_times({
        "T1": "A 08:00 B 08:10 C 08:20 D 08:30 E 08:40",
        "T2": "A 09:00 B 09:10 C 09:20 D 09:30 E 09:40",
        "F": "A 00:00 B 00:10 C 00:20 D 00:30 E 00:40",
    }),
    "frequencies.txt": "trip_id,start_time,end_time,headway_secs,exact_times\nF,10:00:00,11:00:00,1800,1\n",
}
TZ = ZoneInfo("Europe/Berlin")
DAY = date(2025, 6, 4)


@pytest.fixture(scope="module")
def tt(tmp_path_factory):
    path = write_gtfs(tmp_path_factory.mktemp("rt") / "f", FILES, timezone="Europe/Berlin")
    return compile_timetable([FeedSource("f", path)])


def _msg(*updates) -> bytes:
    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int(datetime(2025, 6, 4, 8, 5, tzinfo=TZ).timestamp())
    for i, fill in enumerate(updates):
        e = m.entity.add()
        e.id = str(i)
        fill(e.trip_update)
    return m.SerializeToString()


def _col(tt, trip: str, nth: int = 0):
    t = [i for i, x in enumerate(tt.trip_ids.tolist()) if x == f"f:{trip}"][nth]
    p = int(tt.trip_pattern[t])
    return t, p, t - int(tt.pattern_trip_offsets[p])


def _mins(values, start: int) -> list[int]:
    return [(int(v) - start) // 60 for v in values]


def test_delay_propagates_until_the_next_update(tt) -> None:
    def upd(tu):
        tu.trip.trip_id = "T1"
        tu.trip.start_date = "20250604"
        s = tu.stop_time_update.add()
        s.stop_id = "B"
        s.arrival.delay = 120  # +2 min from B on ...
        s = tu.stop_time_update.add()
        s.stop_sequence = 4  # ... until D (matched by stop_sequence): +5 min from D on
        s.departure.delay = 300

    ov = apply_trip_updates(tt, _msg(upd), "f")
    t, p, c = _col(tt, "T1")
    a, d, sk = ov.pattern_times(tt, p)
    assert _mins(a[:, c], 8 * 3600) == [0, 12, 22, 35, 45]
    assert _mins(d[:, c], 8 * 3600) == [0, 12, 22, 35, 45]
    assert not sk.any()
    # the other trips of the pattern and the timetable itself are untouched
    sa, sd = tt.pattern_times(p)
    assert np.array_equal(np.delete(a, c, axis=1), np.delete(sa, c, axis=1))
    assert _mins(sa[:, c], 8 * 3600) == [0, 10, 20, 30, 40]
    assert ov.updated_trips.tolist() == [t] and ov.updated_column.tolist() == [c]
    assert ov.trip_day.tolist() == [tt.day_index(DAY)]
    assert ov.pattern_fifo.tolist() == [True]
    full_a, _ = ov.merged_times(tt)
    assert np.array_equal(full_a[tt.pattern_time_offsets[p]:tt.pattern_time_offsets[p + 1]], a.ravel())


def test_absolute_times_skipped_stops_and_cancellations(tt) -> None:
    def t1(tu):
        tu.trip.trip_id = "T1"
        tu.trip.start_date = "20250604"
        s = tu.stop_time_update.add()
        s.stop_id = "B"
        s.arrival.time = int(datetime(2025, 6, 4, 8, 13, tzinfo=TZ).timestamp())
        s.departure.time = int(datetime(2025, 6, 4, 8, 14, tzinfo=TZ).timestamp())
        s = tu.stop_time_update.add()
        s.stop_id = "C"
        s.schedule_relationship = rt.TripUpdate.StopTimeUpdate.SKIPPED

    def t2(tu):
        tu.trip.trip_id = "T2"
        tu.trip.start_date = "20250604"
        tu.trip.schedule_relationship = rt.TripDescriptor.CANCELED

    def ghost(tu):
        tu.trip.trip_id = "NOT_A_TRIP"

    ov = apply_trip_updates(tt, _msg(t1, t2, ghost), "f")
    _, p, c = _col(tt, "T1")
    a, d, sk = ov.pattern_times(tt, p)
    assert _mins(a[:, c], 8 * 3600) == [0, 13, 24, 34, 44]
    assert _mins(d[:, c], 8 * 3600) == [0, 14, 24, 34, 44]
    assert sk[:, c].tolist() == [False, False, True, False, False]
    t2_idx, _, _ = _col(tt, "T2")
    assert ov.trip_cancelled[t2_idx] and ov.trip_cancelled.sum() == 1
    assert ov.unmatched_trip_ids == ("NOT_A_TRIP",)
    assert ov.counts["matched"] == 2 and ov.counts["cancelled"] == 1 and ov.counts["skipped_stops"] == 1
    assert any("NOT_A_TRIP" not in w and "match no trip" in w for w in ov.warnings)


def test_frequency_trip_matched_by_start_time(tt) -> None:
    def upd(tu):
        tu.trip.trip_id = "F"
        tu.trip.start_time = "10:30:00"
        tu.trip.start_date = "20250604"
        s = tu.stop_time_update.add()
        s.stop_id = "A"
        s.departure.delay = 60

    ov = apply_trip_updates(tt, _msg(upd), "f")
    _, p, c = _col(tt, "F", 1)
    a, d, _ = ov.pattern_times(tt, p)
    assert _mins(d[:, c], 10 * 3600) == [31, 41, 51, 61, 71]
    _, _, c0 = _col(tt, "F", 0)
    assert _mins(d[:, c0], 10 * 3600) == [0, 10, 20, 30, 40]


def test_a_big_delay_can_break_fifo_and_says_so(tt) -> None:
    def upd(tu):
        tu.trip.trip_id = "T1"
        tu.trip.start_date = "20250604"
        s = tu.stop_time_update.add()
        s.stop_id = "A"
        s.departure.delay = 3600 + 120  # now behind T2

    ov = apply_trip_updates(tt, _msg(upd), "f")
    assert ov.pattern_fifo.tolist() == [False]


def test_bad_input_raises_domain_errors(tt) -> None:
    with pytest.raises(RealtimeError) as ei:
        apply_trip_updates(tt, b"\xff\x00 definitely not protobuf", "f")
    assert ei.value.code == "invalid_realtime_feed"
    with pytest.raises(RealtimeError):
        apply_trip_updates(tt, _msg(), "nope")


def test_caltrain_trip_updates_match_the_static_feed(shared_data: Path) -> None:
    tt = compile_timetable([FeedSource("ct", shared_data / "caltrain-rt/caltrain.zip")])
    data = (shared_data / "caltrain-rt/ct-trip-updates.pb").read_bytes()
    ov = apply_trip_updates(tt, data, "ct")
    assert ov.counts["trip_updates"] == 19 and ov.counts["matched"] == 19 and not ov.unmatched_trip_ids
    assert ov.counts["stop_updates_unmatched"] == 0
    day = tt.day_index(date(2023, 11, 7))
    assert set(ov.trip_day.tolist()) == {day}
    base = int(tt.day_start_utc(0, day).timestamp())
    msg = rt.FeedMessage()
    msg.ParseFromString(data)
    checked = 0
    for e in msg.entity:
        t = tt.trip_ids.tolist().index(f"ct:{e.trip_update.trip.trip_id}")
        p = int(tt.trip_pattern[t])
        c = t - int(tt.pattern_trip_offsets[p])
        a, d, _ = ov.pattern_times(tt, p)
        seqs = tt.pattern_stop_sequence[tt.pattern_stop_slice(p)].tolist()
        for s in e.trip_update.stop_time_update:
            pos = seqs.index(s.stop_sequence)
            if s.HasField("arrival"):
                assert a[pos, c] == s.arrival.time - base
                checked += 1
            if s.HasField("departure") and s.departure.time >= s.arrival.time:
                assert d[pos, c] == s.departure.time - base
    assert checked > 100


@pytest.mark.slow
def test_nyc_subway_realtime_does_not_crash(shared_data: Path) -> None:
    tt = compile_timetable([FeedSource("subway", shared_data / "nyc-mta/subway.zip")])
    for name, n in (("a_division", 285), ("b_division", 156)):
        ov = apply_trip_updates(tt, (shared_data / f"nyc-subway-gtfsrt-2021/{name}.nyct.gtfsrt").read_bytes(),
                                "subway")
        assert ov.counts["trip_updates"] == n
        assert ov.counts["matched"] + ov.counts["unmatched"] == n
        assert len(ov.unmatched_trip_ids) == ov.counts["unmatched"] > 0
        assert not ov.trip_cancelled.any() or ov.counts["cancelled"] > 0


def test_absurd_or_unmatched_stop_updates_are_counted_not_applied(tt) -> None:
    def upd(tu):
        tu.trip.trip_id = "T1"
        tu.trip.start_date = "20250604"
        s = tu.stop_time_update.add()
        s.stop_id = "NO_SUCH_STOP"
        s.arrival.delay = 60
        s = tu.stop_time_update.add()
        s.stop_id = "C"
        s.arrival.time = 10**10  # the year 2286
        s = tu.stop_time_update.add()
        s.stop_sequence = 99
        s.arrival.delay = 60

    ov = apply_trip_updates(tt, _msg(upd), "f")
    assert ov.counts["stop_updates_unmatched"] == 2 and ov.counts["stop_updates_rejected"] == 1
    _, p, c = _col(tt, "T1")
    a, _, _ = ov.pattern_times(tt, p)
    assert _mins(a[:, c], 8 * 3600) == [0, 10, 20, 30, 40]


def test_trip_level_delay_shifts_the_whole_trip(tt) -> None:
    def upd(tu):
        tu.trip.trip_id = "T2"
        tu.trip.start_date = "20250604"
        tu.delay = 180

    ov = apply_trip_updates(tt, _msg(upd), "f")
    _, p, c = _col(tt, "T2")
    a, d, _ = ov.pattern_times(tt, p)
    assert _mins(a[:, c], 9 * 3600) == [3, 13, 23, 33, 43]


def test_route_and_start_time_pick_the_direction_the_stops_name(tmp_path) -> None:
    """Two trips of one route leave their first stops at the same time in opposite directions: an update
    naming route + start time (no trip_id, as NYCT sends them) applies to the one calling at its stops;
    a platform of the other direction is not taken for the trip's own."""
    files = {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
            S1,S1,52.50,13.40,1,
            S1N,S1 north,52.50,13.40,0,S1
            S1S,S1 south,52.50,13.40,0,S1
            S2,S2,52.50,13.42,1,
            S2N,S2 north,52.50,13.42,0,S2
            S2S,S2 south,52.50,13.42,0,S2
        """,
        "routes.txt": "route_id,route_short_name,route_type\nR,R,1\n",
        "trips.txt": "route_id,service_id,trip_id\nR,WK,NB\nR,WK,SB\n",
        "stop_times.txt": stop_times({"NB": "S1N 08:00 S2N 08:10", "SB": "S2S 08:00 S1S 08:10"}),
    }
    tt = compile_timetable([FeedSource("f", write_gtfs(tmp_path / "g", files, timezone="Europe/Berlin"))])

    def upd(tu):
        tu.trip.route_id, tu.trip.start_time, tu.trip.start_date = "R", "08:00:00", "20250604"
        s = tu.stop_time_update.add()
        s.stop_id = "S1S"
        s.arrival.delay = 120

    def wrong_platform(tu):
        tu.trip.trip_id, tu.trip.start_date = "NB", "20250604"
        s = tu.stop_time_update.add()
        s.stop_id = "S2S"  # NB calls at S2N
        s.arrival.delay = 300

    ov = apply_trip_updates(tt, _msg(upd, wrong_platform), "f")
    assert ov.counts["matched_by_route_start"] == 1 and ov.counts["stop_updates_unmatched"] == 1
    sb, _, _ = _col(tt, "SB")
    assert sb in ov.updated_trips.tolist()
    nb, p, c = _col(tt, "NB")
    block = ov.pattern_times(tt, p)
    assert block is None or block[0][:, c].tolist() == tt.pattern_times(p)[0][:, c].tolist()


def test_real_time_trip_id_is_the_tail_of_the_static_one(tmp_path) -> None:
    """NYCT sends "090400_1..S03R" for the static "ASP26GEN-1038-Weekday-00_090400_1..S03R"."""
    files = {
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nA,A,52.50,13.40\nB,B,52.50,13.42\n",
        "routes.txt": "route_id,route_short_name,route_type\n1,1,1\n",
        "trips.txt": "route_id,service_id,trip_id\n1,WK,ASP-Weekday-00_090400_1..S03R\n1,WK,ASP-Weekday-00_090500_1..S03R\n",
        "stop_times.txt": stop_times({"ASP-Weekday-00_090400_1..S03R": "A 15:04 B 15:10",
                                     "ASP-Weekday-00_090500_1..S03R": "A 15:05 B 15:11"}),
    }
    tt = compile_timetable([FeedSource("f", write_gtfs(tmp_path / "n", files, timezone="America/New_York"))])

    def upd(tu):
        tu.trip.trip_id, tu.trip.start_date = "090400_1..S03R", "20250604"
        s = tu.stop_time_update.add()
        s.stop_id = "B"
        s.arrival.delay = 60

    def unknown(tu):
        tu.trip.trip_id, tu.trip.start_date = "0400_1..S03R", "20250604"  # not at an "_" boundary
        tu.delay = 60

    ov = apply_trip_updates(tt, _msg(upd, unknown), "f")
    assert ov.counts["matched_by_trip_id_suffix"] == 1 and ov.counts["matched"] == 1
    assert ov.counts["unmatched_by_cause"] == {"unknown_trip_id": 1}
    assert tt.trip_ids[ov.updated_trips[0]] == "f:ASP-Weekday-00_090400_1..S03R"
