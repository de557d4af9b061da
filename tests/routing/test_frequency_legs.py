"""Issue 13 item 9: headway-based trips (frequencies.txt ``exact_times=0``) are planned conservatively
and shown as what they are.

Line F runs every 10 min from 08:00 to 10:00 with ``exact_times=0`` (no timetable: only the headway is
known); line E runs the same stops with ``exact_times=1`` (a real timetable every 10 min from 08:00).
Its template starts at 00:00:07, so the expanded times fall on odd seconds, as in real feeds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gtfs_text import write_gtfs

from routing.compile import CompileOptions, compile_timetable
from routing.feeds import FeedSource
from routing.search import PlanRequest, earliest_arrival, plan

BERLIN = ZoneInfo("Europe/Berlin")
WED = datetime(2025, 3, 5, tzinfo=BERLIN)


def _feed(tmp_path, exact: int):
    files = {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon
            A,Alpha,52.5000,13.3000
            B,Beta,52.5000,13.3200
            C,Gamma,52.5000,13.3400
        """,
        "routes.txt": "route_id,route_short_name,route_type\nF,F,3\n",
        "trips.txt": "route_id,service_id,trip_id\nF,WK,F1\n",
        "stop_times.txt": """
            trip_id,arrival_time,departure_time,stop_id,stop_sequence
            F1,00:00:07,00:00:07,A,1
            F1,00:05:07,00:05:37,B,2
            F1,00:12:07,00:12:07,C,3
        """,
        "frequencies.txt": f"trip_id,start_time,end_time,headway_secs,exact_times\nF1,08:00:07,10:00:07,600,{exact}\n",
    }
    path = write_gtfs(tmp_path / f"f{exact}", files)
    return compile_timetable([FeedSource("f", path, "op")], CompileOptions())


def _t(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def test_headway_based_trip_is_planned_conservatively_and_shown_as_a_frequency(tmp_path):
    tt = _feed(tmp_path, exact=0)
    depart = WED + timedelta(hours=8, minutes=3)
    its = plan(tt, PlanRequest("f:A", "f:C", depart_at=depart))
    it = its[0]  # (the next runs follow as alternatives)
    assert it["label"] == "fastest"
    [leg] = it["legs"]
    # at the stop at 08:03 the vehicle comes within one headway: at the latest 08:13; the plan must hold
    # then, so it uses the first nominal departure at least a headway after being at the stop (08:20:07)
    assert _t(leg["departure"]) >= depart + timedelta(minutes=10)
    assert _t(leg["departure"]) == WED + timedelta(hours=8, minutes=20, seconds=7)
    assert _t(leg["arrival"]) == WED + timedelta(hours=8, minutes=32, seconds=7)
    assert leg["times_approximate"] is True
    f = leg["frequency"]
    assert f["headway_s"] == 600 and f["expected_wait_s"] == 300 and f["exact_times"] is False
    assert f["text"] == "every 10 min"
    assert _t(f["board_by"]) == WED + timedelta(hours=8, minutes=10, seconds=7)
    assert _t(f["latest_departure"]) == _t(leg["departure"])
    exp = _t(f["expected_departure"])
    assert exp.second == 0 and exp == WED + timedelta(hours=8, minutes=15)  # 08:15:07 to the minute
    # the itinerary starts when the passenger must be at the stop; its duration holds the worst wait
    assert _t(it["departure"]) == _t(f["board_by"])
    assert it["duration_s"] == 600 + 12 * 60
    # earliest_arrival is planned the same way (conservative)
    assert earliest_arrival(tt, PlanRequest("f:A", "f:C", depart_at=depart))[-1] == int(_t(leg["arrival"]).timestamp())
    # boarding mid-route: at B by 08:13 -> the 08:25:37 departure from B (nominal 08:15:37 left a headway before)
    it_b = plan(tt, PlanRequest("f:B", "f:C", depart_at=WED + timedelta(hours=8, minutes=13)))[0]
    assert _t(it_b["legs"][0]["departure"]) == WED + timedelta(hours=8, minutes=25, seconds=37)
    # arrive-by: to be at C by 08:40 the passenger must be at A by 08:10:07 (the 08:20:07 run at the latest)
    it_ab = plan(tt, PlanRequest("f:A", "f:C", arrive_by=WED + timedelta(hours=8, minutes=40)))[-1]
    assert _t(it_ab["departure"]) == WED + timedelta(hours=8, minutes=10, seconds=7)
    assert _t(it_ab["arrival"]) <= WED + timedelta(hours=8, minutes=40)


def test_exact_times_trips_keep_their_timetable(tmp_path):
    tt = _feed(tmp_path, exact=1)
    depart = WED + timedelta(hours=8, minutes=3)
    leg = plan(tt, PlanRequest("f:A", "f:C", depart_at=depart))[0]["legs"][0]
    assert _t(leg["departure"]) == WED + timedelta(hours=8, minutes=10, seconds=7)
    assert "frequency" not in leg and "times_approximate" not in leg
