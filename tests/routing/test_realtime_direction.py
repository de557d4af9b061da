"""trips.txt direction_id kept in the compiled timetable (``trip_direction``) and compared when a
GTFS-RT TripUpdate names its trip by route + start time + direction (issue 13 item 6)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
from google.transit import gtfs_realtime_pb2 as rt
from gtfs_text import stop_times, write_gtfs

from routing.cache import load_timetable, save_timetable
from routing.compile import compile_timetable
from routing.feeds import FeedSource, parse_feed
from routing.realtime import apply_trip_updates, realtime_view

TZ = ZoneInfo("Europe/Berlin")
DAY = date(2025, 6, 4)
STOPS = """
    stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
    S1,S1,52.50,13.40,1,
    S1N,S1 north,52.50,13.40,0,S1
    S1S,S1 south,52.50,13.40,0,S1
    S2,S2,52.50,13.42,1,
    S2N,S2 north,52.50,13.42,0,S2
    S2S,S2 south,52.50,13.42,0,S2
"""


def _feed(tmp_path, trips: str, name: str = "g", extra: dict | None = None):
    files = {
        "stops.txt": STOPS,
        "routes.txt": "route_id,route_short_name,route_type\nR,R,1\n",
        "trips.txt": trips,
        "stop_times.txt": stop_times({"NB": "S1N 08:00 S2N 08:10", "SB": "S2S 08:00 S1S 08:10",
                                      **(extra or {})}),
    }
    return write_gtfs(tmp_path / name, files, timezone="Europe/Berlin")


def _tt(tmp_path, trips: str, name: str = "g"):
    return compile_timetable([FeedSource("f", _feed(tmp_path, trips, name))])


def _msg(*updates) -> bytes:
    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int(datetime(2025, 6, 4, 7, 55, tzinfo=TZ).timestamp())
    for i, fill in enumerate(updates):
        e = m.entity.add()
        e.id = str(i)
        fill(e.trip_update)
    return m.SerializeToString()


def _trip(tt, trip_id: str) -> int:
    return tt.trip_ids.tolist().index(f"f:{trip_id}")


def _by_route_start(direction: int | None = None, stop: str | None = None):
    def upd(tu):
        tu.trip.route_id, tu.trip.start_time, tu.trip.start_date = "R", "08:00:00", "20250604"
        if direction is not None:
            tu.trip.direction_id = direction
        if stop is None:
            tu.delay = 120  # trip-level delay: no stop ids to narrow by
        else:
            s = tu.stop_time_update.add()
            s.stop_id = stop
            s.arrival.delay = 120
    return upd


TRIPS_DIR = "route_id,service_id,trip_id,direction_id\nR,WK,NB,0\nR,WK,SB,1\n"


def test_direction_id_is_compiled(tmp_path) -> None:
    tt = _tt(tmp_path, TRIPS_DIR)
    assert tt.trip_direction.dtype == np.int8
    assert int(tt.trip_direction[_trip(tt, "NB")]) == 0 and int(tt.trip_direction[_trip(tt, "SB")]) == 1
    tt2 = _tt(tmp_path, "route_id,service_id,trip_id\nR,WK,NB\nR,WK,SB\n", "h")
    assert tt2.trip_direction.tolist() == [-1, -1]
    tt3 = _tt(tmp_path, "route_id,service_id,trip_id,direction_id\nR,WK,NB,\nR,WK,SB,1\n", "k")
    assert int(tt3.trip_direction[_trip(tt3, "NB")]) == -1 and int(tt3.trip_direction[_trip(tt3, "SB")]) == 1


def test_route_start_and_direction_pick_the_trip_without_stop_ids(tmp_path) -> None:
    tt = _tt(tmp_path, TRIPS_DIR)
    for direction, want in ((1, "SB"), (0, "NB")):
        ov = apply_trip_updates(tt, _msg(_by_route_start(direction)), "f")
        assert ov.counts["matched_by_route_start"] == 1 and ov.counts["matched"] == 1, ov.counts
        assert ov.counts["unmatched"] == 0
        assert ov.updated_trips.tolist() == [_trip(tt, want)]
    # without direction_id in the update: still ambiguous (no stops named)
    ov = apply_trip_updates(tt, _msg(_by_route_start(None)), "f")
    assert ov.counts["unmatched_by_cause"] == {"ambiguous_trip": 1}
    # the stops still narrow when the direction is not given
    ov = apply_trip_updates(tt, _msg(_by_route_start(None, "S1S")), "f")
    assert ov.updated_trips.tolist() == [_trip(tt, "SB")]


def test_unknown_direction_in_trips_txt_stays_ambiguous_unless_stops_narrow(tmp_path) -> None:
    tt = _tt(tmp_path, "route_id,service_id,trip_id\nR,WK,NB\nR,WK,SB\n")
    ov = apply_trip_updates(tt, _msg(_by_route_start(1)), "f")
    assert ov.counts["unmatched_by_cause"] == {"ambiguous_trip": 1} and ov.counts["matched_by_route_start"] == 0
    ov = apply_trip_updates(tt, _msg(_by_route_start(1, "S2S")), "f")
    assert ov.counts["matched_by_route_start"] == 1 and ov.updated_trips.tolist() == [_trip(tt, "SB")]


def test_a_trip_of_unknown_direction_stays_a_candidate(tmp_path) -> None:
    """direction 1 asked; NB has direction 0, SB unknown: SB is the one left."""
    tt = _tt(tmp_path, "route_id,service_id,trip_id,direction_id\nR,WK,NB,0\nR,WK,SB,\n")
    ov = apply_trip_updates(tt, _msg(_by_route_start(1)), "f")
    assert ov.counts["matched_by_route_start"] == 1 and ov.updated_trips.tolist() == [_trip(tt, "SB")]


def test_invalid_direction_id_is_warned_and_unknown(tmp_path) -> None:
    """Numeric values other than 0/1 are warned and read as unknown (a non-numeric one is refused by the
    gtfs_kit reader with a located problem, as before)."""
    path = _feed(tmp_path, "route_id,service_id,trip_id,direction_id\nR,WK,NB,2\nR,WK,SB,-1\n")
    pf, report = parse_feed(FeedSource("f", path))
    assert pf is not None and not report.problems
    warned = [w for w in report.warnings if "direction_id" in w]
    assert len(warned) == 1 and "2 trip(s)" in warned[0], report.warnings
    tt = compile_timetable([FeedSource("f", path)])
    assert tt.trip_direction.tolist() == [-1, -1]
    assert any("direction_id" in w for w in tt.meta["feeds"][0]["warnings"])


def test_cache_round_trip_keeps_trip_direction(tmp_path) -> None:
    tt = _tt(tmp_path, TRIPS_DIR)
    save_timetable(tt, tmp_path / "cache" / "x")
    back = load_timetable(tmp_path / "cache" / "x")
    assert back.trip_direction.dtype == np.int8
    assert back.trip_direction.tolist() == tt.trip_direction.tolist()


def test_realtime_view_keeps_trip_arrays_aligned(tmp_path) -> None:
    tt = _tt(tmp_path, TRIPS_DIR)

    def added(tu):
        tu.trip.trip_id, tu.trip.route_id, tu.trip.start_date = "X1", "R", "20250604"
        tu.trip.direction_id = 1
        tu.trip.schedule_relationship = rt.TripDescriptor.NEW
        for stop, hm in (("S2S", (8, 30)), ("S1S", (8, 40))):
            u = tu.stop_time_update.add()
            u.stop_id = stop
            u.arrival.time = u.departure.time = int(datetime(2025, 6, 4, *hm, tzinfo=TZ).timestamp())

    def added_no_dir(tu):
        tu.trip.trip_id, tu.trip.route_id, tu.trip.start_date = "X2", "R", "20250604"
        tu.trip.schedule_relationship = rt.TripDescriptor.NEW
        for stop, hm in (("S1N", (9, 30)), ("S2N", (9, 40))):
            u = tu.stop_time_update.add()
            u.stop_id = stop
            u.arrival.time = u.departure.time = int(datetime(2025, 6, 4, *hm, tzinfo=TZ).timestamp())

    def duplicated(tu):
        tu.trip.trip_id, tu.trip.start_date = "NB", "20250604"
        tu.trip.schedule_relationship = rt.TripDescriptor.DUPLICATED
        tu.trip_properties.trip_id, tu.trip_properties.start_time = "NB2", "10:00:00"
        tu.trip_properties.start_date = "20250604"

    ov = apply_trip_updates(tt, _msg(_by_route_start(1), added, added_no_dir, duplicated), "f")
    assert ov.counts["matched"] == 4 and ov.counts["added"] == 2, ov.counts
    view = realtime_view(tt, [ov])
    n = view.n_trips
    assert n > tt.n_trips
    for name in ("trip_ids", "trip_route", "trip_service", "trip_pattern", "trip_headsigns",
                 "trip_wheelchair_accessible", "trip_shape", "trip_frequency", "trip_start_s", "trip_direction"):
        assert len(getattr(view, name)) == n, name
    assert view.trip_direction.dtype == np.int8
    ids = view.trip_ids.tolist()
    d = {tid: int(view.trip_direction[i]) for i, tid in enumerate(ids) if i >= tt.n_trips}
    assert d["f:X1"] == 1 and d["f:X2"] == -1 and d["f:NB2"] == 0 and d["f:SB"] == 1
    assert view.trip_direction[: tt.n_trips].tolist() == tt.trip_direction.tolist()


def test_combined_in_seat_trip_takes_its_first_parts_direction(tmp_path) -> None:
    files = {
        "stops.txt": STOPS,
        "routes.txt": "route_id,route_short_name,route_type\nR,R,1\nQ,Q,1\n",
        "trips.txt": "route_id,service_id,trip_id,direction_id\nR,WK,NB,1\nQ,WK,ON,0\n",
        "stop_times.txt": stop_times({"NB": "S1N 08:00 S2N 08:10", "ON": "S2N 08:12 S1S 08:20"}),
        "transfers.txt": "from_stop_id,to_stop_id,from_trip_id,to_trip_id,transfer_type\nS2N,S2N,NB,ON,4\n",
    }
    tt = compile_timetable([FeedSource("f", write_gtfs(tmp_path / "c", files, timezone="Europe/Berlin"))])
    combined = np.flatnonzero(np.diff(np.asarray(tt.trip_link_offsets)) > 0)
    assert len(combined) == 1 and len(tt.trip_direction) == tt.n_trips
    assert int(tt.trip_direction[combined[0]]) == 1
    assert int(tt.trip_direction[_trip(tt, "NB")]) == 1 and int(tt.trip_direction[_trip(tt, "ON")]) == 0
