"""Hand-written networks with the journeys they must produce, as readable strings.

A journey reads ``"08:00 A -1-> B 08:05 | walk B->C 60s | 08:07 C -2-> D 08:20"``:
departure, boarding stop, route short name, alighting stop, arrival; walks
with their duration. Times are local (Europe/Berlin unless said otherwise).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from gtfs_text import stop_times, write_gtfs

from routing.compile import CompileOptions, compile_timetable
from routing.errors import InvalidQuery, UnknownStop
from routing.feeds import FeedSource
from routing.search import PlanRequest, earliest_arrival, plan, range_profile

BERLIN = ZoneInfo("Europe/Berlin")
WED = datetime(2025, 3, 5, tzinfo=BERLIN)  # a Wednesday in the default calendar (every day of 2025)


def at(hhmm: str, day: datetime = WED) -> datetime:
    h, m = hhmm.split(":")
    return day + timedelta(hours=int(h), minutes=int(m))


def describe(it: dict) -> str:
    parts = []
    for leg in it["legs"]:
        frm = (leg["from"]["stop_id"] or leg["from"]["name"]).split(":")[-1]
        to = (leg["to"]["stop_id"] or leg["to"]["name"]).split(":")[-1]
        if leg["mode"] == "WALK":
            parts.append(f"walk {frm}->{to} {leg['duration_s']}s")
        else:
            dep = datetime.fromisoformat(leg["departure"]).strftime("%H:%M")
            arr = datetime.fromisoformat(leg["arrival"]).strftime("%H:%M")
            parts.append(f"{dep} {frm} -{leg['route_name']}-> {to} {arr}")
    return " | ".join(parts)


def journeys(tt, **kw) -> list[str]:
    return [describe(it) for it in plan(tt, PlanRequest(**kw))]


STOPS = """
    stop_id,stop_name,stop_lat,stop_lon
    A,Alpha,52.5000,13.3000
    B,Beta,52.5000,13.3200
    C,Gamma,52.5000,13.3400
    D,Delta,52.5200,13.3400
    E,Epsilon,52.5000,13.3206
"""


def compile_feed(tmp_path, files: dict, *, walk_radius_m: float = 0.0, feed_id: str = "f", operator: str = "op",
                 timezone: str = "Europe/Berlin"):
    path = write_gtfs(tmp_path / feed_id, files, timezone=timezone)
    return compile_timetable([FeedSource(feed_id, path, operator)], CompileOptions(walk_radius_m=walk_radius_m))


# A --1--> B --1--> C          route 1: A 08:00, B 08:05, C 08:10 (and 08:30 / 08:35 / 08:40)
#          |
#          +--2--> D           route 2: B 08:07, D 08:20
#
# Riding 1 to C then nothing reaches D; the only way to D is changing at B.
LINE_AND_BRANCH = {
    "stops.txt": STOPS,
    "routes.txt": """
        route_id,route_short_name,route_type
        R1,1,3
        R2,2,3
    """,
    "trips.txt": """
        route_id,service_id,trip_id
        R1,WK,T1
        R1,WK,T2
        R2,WK,T3
    """,
    "stop_times.txt": stop_times({
        "T1": "A 08:00  B 08:05  C 08:10",
        "T2": "A 08:30  B 08:35  C 08:40",
        "T3": "B 08:07  D 08:20",
    }),
}


def test_change_between_two_routes(tmp_path):
    tt = compile_feed(tmp_path, LINE_AND_BRANCH)
    got = journeys(tt, origin="f:A", destination="f:D", depart_at=at("07:50"), max_itineraries=1)
    assert got == ["08:00 A -1-> B 08:05 | 08:07 B -2-> D 08:20"]


def test_min_change_time_makes_the_change_impossible(tmp_path):
    tt = compile_feed(tmp_path, LINE_AND_BRANCH)
    # 2 minutes at B are not enough for a 3-minute change: the branch is caught the next morning
    its = plan(tt, PlanRequest("f:A", "f:D", depart_at=at("07:50"), min_change_s=180, max_itineraries=1))
    assert [describe(it) for it in its] == ["08:30 A -1-> B 08:35 | 08:07 B -2-> D 08:20"]
    assert [lg["service_date"] for lg in its[0]["legs"]] == ["2025-03-05", "2025-03-06"]


def test_transfers_txt_min_time_and_forbidden_change(tmp_path):
    files = dict(LINE_AND_BRANCH)
    files["transfers.txt"] = """
        from_stop_id,to_stop_id,transfer_type,min_transfer_time
        B,B,2,300
    """
    tt = compile_feed(tmp_path, files)
    ea = earliest_arrival(tt, PlanRequest("f:A", "f:D", depart_at=at("07:50"), max_transfers=1))
    assert ea[-1] is None or ea[-1] > int(at("12:00").timestamp())
    files["transfers.txt"] = """
        from_stop_id,to_stop_id,transfer_type,min_transfer_time
        B,B,3,
    """
    tt = compile_feed(tmp_path / "forbidden", files)
    ea = earliest_arrival(tt, PlanRequest("f:A", "f:D", depart_at=at("07:50"), max_transfers=1))
    assert ea[-1] is None or ea[-1] > int(at("12:00").timestamp())


def test_pareto_over_transfers_and_next_departures(tmp_path):
    # X --fast-- Y --fast-- Z  (two rides, arrives 09:20)
    # X --------slow-------- Z (one ride, arrives 09:40)
    files = {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon
            X,X,52.50,13.30
            Y,Y,52.50,13.32
            Z,Z,52.50,13.34
        """,
        "routes.txt": """
            route_id,route_short_name,route_type
            F1,F1,1
            F2,F2,1
            S,S,3
        """,
        "trips.txt": """
            route_id,service_id,trip_id
            F1,WK,a
            F2,WK,b
            S,WK,c
            S,WK,d
        """,
        "stop_times.txt": stop_times({
            "a": "X 09:00  Y 09:10",
            "b": "Y 09:12  Z 09:20",
            "c": "X 09:05  Z 09:40",
            "d": "X 10:05  Z 10:40",
        }),
    }
    tt = compile_feed(tmp_path, files)
    its = plan(tt, PlanRequest("f:X", "f:Z", depart_at=at("08:55"), max_itineraries=3))
    labelled = {it["label"]: describe(it) for it in its}
    assert labelled["fastest"] == "09:00 X -F1-> Y 09:10 | 09:12 Y -F2-> Z 09:20"
    assert labelled["fewest_transfers"] == "09:05 X -S-> Z 09:40"
    assert "10:05 X -S-> Z 10:40" in [describe(it) for it in its]
    assert len({it["id"] for it in its}) == len(its)
    # max_transfers=0 leaves only the direct ride
    assert journeys(tt, origin="f:X", destination="f:Z", depart_at=at("08:55"), max_transfers=0,
                    max_itineraries=1) == ["09:05 X -S-> Z 09:40"]


def test_arrive_by_gives_the_latest_departure(tmp_path):
    tt = compile_feed(tmp_path, LINE_AND_BRANCH)
    its = plan(tt, PlanRequest("f:A", "f:C", arrive_by=at("08:45")))
    assert [describe(it) for it in its] == ["08:30 A -1-> C 08:40"]
    its = plan(tt, PlanRequest("f:A", "f:C", arrive_by=at("08:39")))
    assert [describe(it) for it in its] == ["08:00 A -1-> C 08:10"]


def test_range_search_lists_every_departure_of_the_window(tmp_path):
    tt = compile_feed(tmp_path, LINE_AND_BRANCH)
    its = plan(tt, PlanRequest("f:A", "f:C", depart_at=at("07:00"), window_s=2 * 3600))
    assert sorted(describe(it) for it in its) == ["08:00 A -1-> C 08:10", "08:30 A -1-> C 08:40"]
    prof = range_profile(tt, PlanRequest("f:A", "f:C", depart_at=at("07:00"), window_s=2 * 3600))
    assert [(d.astimezone(BERLIN).strftime("%H:%M"), a.astimezone(BERLIN).strftime("%H:%M"), k)
            for d, a, k in sorted(prof)] == [("08:00", "08:10", 1), ("08:30", "08:40", 1)]


def test_trip_after_midnight_of_the_previous_service_day(tmp_path):
    # N runs on service day Tuesday at 24:30 = Wednesday 00:30; only Tuesdays.
    files = {
        "stops.txt": STOPS,
        "routes.txt": "route_id,route_short_name,route_type\nN,N,3\n",
        "trips.txt": "route_id,service_id,trip_id\nN,TUE,n1\n",
        "calendar.txt": """
            service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date
            TUE,0,1,0,0,0,0,0,20250101,20251231
        """,
        "stop_times.txt": stop_times({"n1": "A 24:30  B 24:50"}),
    }
    tt = compile_feed(tmp_path, files)
    its = plan(tt, PlanRequest("f:A", "f:B", depart_at=at("00:10"), max_itineraries=1))
    assert [describe(it) for it in its] == ["00:30 A -N-> B 00:50"]
    assert its[0]["legs"][0]["service_date"] == "2025-03-04"  # the Tuesday
    assert its[0]["legs"][0]["departure"] == "2025-03-05T00:30:00+01:00"


def test_wheelchair_skips_inaccessible_trips(tmp_path):
    files = dict(LINE_AND_BRANCH)
    files["trips.txt"] = """
        route_id,service_id,trip_id,wheelchair_accessible
        R1,WK,T1,2
        R1,WK,T2,1
        R2,WK,T3,1
    """
    files["stops.txt"] = """
        stop_id,stop_name,stop_lat,stop_lon,wheelchair_boarding
        A,Alpha,52.5000,13.3000,1
        B,Beta,52.5000,13.3200,1
        C,Gamma,52.5000,13.3400,1
        D,Delta,52.5200,13.3400,1
    """
    tt = compile_feed(tmp_path, files)
    assert journeys(tt, origin="f:A", destination="f:C", depart_at=at("07:50"), max_itineraries=1) == [
        "08:00 A -1-> C 08:10"]
    assert journeys(tt, origin="f:A", destination="f:C", depart_at=at("07:50"), wheelchair=True,
                    max_itineraries=1) == ["08:30 A -1-> C 08:40"]


def test_modes_and_excluded_operators(tmp_path):
    files = {
        "stops.txt": STOPS,
        "routes.txt": "route_id,route_short_name,route_type\nBUS,b,3\nRAIL,r,2\n",
        "trips.txt": "route_id,service_id,trip_id\nBUS,WK,bus1\nRAIL,WK,rail1\n",
        "stop_times.txt": stop_times({"bus1": "A 08:00  C 08:30", "rail1": "A 08:10  C 08:20"}),
    }
    tt = compile_feed(tmp_path, files)
    assert journeys(tt, origin="f:A", destination="f:C", depart_at=at("07:55"), max_itineraries=1) == [
        "08:10 A -r-> C 08:20"]
    assert journeys(tt, origin="f:A", destination="f:C", depart_at=at("07:55"), modes=frozenset({"BUS"}),
                    max_itineraries=1) == ["08:00 A -b-> C 08:30"]
    assert journeys(tt, origin="f:A", destination="f:C", depart_at=at("07:55"),
                    excluded_operators=frozenset({"op"})) == []


def test_pickup_and_drop_off_restrictions(tmp_path):
    # express E: boards only at A (no pickup at B), local L stops everywhere
    files = {
        "stops.txt": STOPS,
        "routes.txt": "route_id,route_short_name,route_type\nE,E,3\nL,L,3\n",
        "trips.txt": "route_id,service_id,trip_id\nE,WK,e1\nL,WK,l1\n",
        "stop_times.txt": """
            trip_id,arrival_time,departure_time,stop_id,stop_sequence,pickup_type,drop_off_type
            e1,08:00:00,08:00:00,A,1,0,1
            e1,08:05:00,08:05:00,B,2,1,1
            e1,08:10:00,08:10:00,C,3,1,0
            l1,08:20:00,08:20:00,B,1,0,0
            l1,08:40:00,08:40:00,C,2,0,0
        """,
    }
    tt = compile_feed(tmp_path, files)
    assert journeys(tt, origin="f:B", destination="f:C", depart_at=at("07:55"), max_itineraries=1) == [
        "08:20 B -L-> C 08:40"]
    assert journeys(tt, origin="f:A", destination="f:B", depart_at=at("07:55")) == []


def test_walking_transfer_and_coordinates(tmp_path):
    # B and E are ~40 m apart: route 1 ends at B, route 3 starts at E
    files = {
        "stops.txt": STOPS,
        "routes.txt": "route_id,route_short_name,route_type\nR1,1,3\nR3,3,3\n",
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,t1\nR3,WK,t3\n",
        "stop_times.txt": stop_times({"t1": "A 08:00  B 08:05", "t3": "E 08:07  D 08:30"}),
    }
    tt = compile_feed(tmp_path, files, walk_radius_m=200.0)
    got = journeys(tt, origin="f:A", destination="f:D", depart_at=at("07:50"), max_itineraries=1)
    assert len(got) == 1 and got[0].startswith("08:00 A -1-> B 08:05 | walk B->E ")
    assert got[0].endswith(" | 08:07 E -3-> D 08:30")
    # from coordinates 100 m west of A: walk, ride, walk-free arrival at D
    its = plan(tt, PlanRequest("52.5000,13.29853", "f:D", depart_at=at("07:50"), max_itineraries=1))
    assert describe(its[0]).startswith("walk 52.5000,13.29853->A ")
    assert its[0]["legs"][0]["distance_m"] == pytest.approx(100, abs=2)
    assert its[0]["walk_m"] >= 100


def test_two_feeds_in_different_time_zones(tmp_path):
    # feed L (London) A -> B, feed P (Berlin) B' next to B -> C; times are local to each feed
    lon_files = {
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nA,A,51.50,-0.10\nB,B,51.50,-0.08\n",
        "routes.txt": "route_id,route_short_name,route_type\nL,L,2\n",
        "trips.txt": "route_id,service_id,trip_id\nL,WK,l\n",
        "stop_times.txt": stop_times({"l": "A 07:00  B 07:30"}),  # 08:00-08:30 Berlin time
    }
    ber_files = {
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nB2,B2,51.50,-0.0801\nC,C,51.50,-0.05\n",
        "routes.txt": "route_id,route_short_name,route_type\nP,P,2\n",
        "trips.txt": "route_id,service_id,trip_id\nP,WK,p1\nP,WK,p2\n",
        "stop_times.txt": stop_times({"p1": "B2 08:31  C 08:50", "p2": "B2 09:31  C 09:50"}),
    }
    pl = write_gtfs(tmp_path / "lon", lon_files, timezone="Europe/London")
    pb = write_gtfs(tmp_path / "ber", ber_files, timezone="Europe/Berlin")
    tt = compile_timetable([FeedSource("lon", pl, "lonop"), FeedSource("ber", pb, "berop")],
                           CompileOptions(walk_radius_m=100.0))
    its = plan(tt, PlanRequest("lon:A", "ber:C", depart_at=at("07:50"), max_itineraries=1))
    legs = [lg for lg in its[0]["legs"] if lg["mode"] != "WALK"]
    assert [lg["operator_id"] for lg in legs] == ["lonop", "berop"]
    assert legs[0]["departure"] == "2025-03-05T07:00:00+00:00"
    assert legs[1]["departure"] == "2025-03-05T08:31:00+01:00"


def test_itinerary_shape_and_geometry_cut_from_shape(tmp_path):
    files = dict(LINE_AND_BRANCH)
    files["trips.txt"] = """
        route_id,service_id,trip_id,shape_id
        R1,WK,T1,SH
        R1,WK,T2,SH
        R2,WK,T3,
    """
    files["shapes.txt"] = """
        shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence
        SH,52.5000,13.3000,1
        SH,52.5010,13.3100,2
        SH,52.5000,13.3200,3
        SH,52.5010,13.3300,4
        SH,52.5000,13.3400,5
    """
    tt = compile_feed(tmp_path, files)
    it = plan(tt, PlanRequest("f:B", "f:C", depart_at=at("08:01"), max_itineraries=1))[0]
    assert set(it) == {"id", "departure", "arrival", "duration_s", "transfers", "walk_m", "fare", "legs", "label"}
    assert it["fare"] is None and it["transfers"] == 0 and it["duration_s"] == 300
    leg = it["legs"][0]
    for key in ("mode", "operator_id", "feed_id", "route_id", "route_name", "trip_id", "service_date", "from",
                "to", "departure", "arrival", "distance_m", "intermediate_stops", "geometry"):
        assert key in leg
    assert (leg["mode"], leg["operator_id"], leg["feed_id"], leg["route_id"], leg["trip_id"]) == (
        "BUS", "op", "f", "f:R1", "f:T1")
    assert leg["from"] == {"stop_id": "f:B", "name": "Beta", "lat": 52.5, "lon": 13.32}
    # B -> (13.33 bend) -> C: the shape's middle vertex is kept, the part before B is cut away
    assert leg["geometry"] == {"type": "LineString",
                               "coordinates": [[13.32, 52.5], [13.33, 52.501], [13.34, 52.5]]}
    assert 1360 < leg["distance_m"] < 1400 or leg["distance_m"] > 0
    full = plan(tt, PlanRequest("f:A", "f:C", depart_at=at("07:59"), max_itineraries=1))[0]["legs"][0]
    assert [s["stop_id"] for s in full["intermediate_stops"]] == ["f:B"]
    assert full["intermediate_stops"][0]["arrival"] == "2025-03-05T08:05:00+01:00"


def test_bad_input_raises_domain_errors(tmp_path):
    tt = compile_feed(tmp_path, LINE_AND_BRANCH)
    with pytest.raises(UnknownStop) as e:
        plan(tt, PlanRequest("f:NOPE", "f:C", depart_at=at("08:00")))
    assert e.value.code == "unknown_stop" and e.value.status == 404
    for req in (
        PlanRequest("f:A", "f:C"),  # neither time
        PlanRequest("f:A", "f:C", depart_at=at("08:00"), arrive_by=at("09:00")),  # both
        PlanRequest("f:A", "f:C", depart_at=datetime(2025, 3, 5, 8)),  # naive
        PlanRequest("91.0,13.3", "f:C", depart_at=at("08:00")),  # latitude out of range
        PlanRequest("f:A", "f:C", depart_at=at("08:00"), modes=frozenset({"ROCKET"})),
        PlanRequest("f:A", "f:A", depart_at=at("08:00")),
    ):
        with pytest.raises(InvalidQuery) as e:
            plan(tt, req)
        assert e.value.code == "invalid_query" and e.value.status == 400


def test_nothing_found_is_an_empty_list(tmp_path):
    tt = compile_feed(tmp_path, LINE_AND_BRANCH)
    assert plan(tt, PlanRequest("f:C", "f:A", depart_at=at("08:00"))) == []


def test_least_walking_alternative_from_multi_criteria_search(tmp_path):
    #   origin (coordinates)
    #     |-- 50 m --> N (near)  bus n: N 08:10 -> Z 09:00
    #     `-- 400 m -> F (far)   bus f: F 08:10 -> Z 08:40
    # same number of rides: the fast journey walks 400 m, the other 50 m
    files = {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon
            N,Near,52.50045,13.30000
            F,Far,52.50000,13.30588
            Z,Zeta,52.60000,13.40000
        """,
        "routes.txt": "route_id,route_short_name,route_type\nn,n,3\nf,f,3\n",
        "trips.txt": "route_id,service_id,trip_id\nn,WK,n1\nf,WK,f1\n",
        "stop_times.txt": stop_times({"n1": "N 08:10  Z 09:00", "f1": "F 08:10  Z 08:40"}),
    }
    tt = compile_feed(tmp_path, files)
    its = plan(tt, PlanRequest("52.5,13.3", "f:Z", depart_at=at("07:50")))
    by_label = {it["label"]: describe(it) for it in its}
    assert by_label["fastest"].endswith("08:10 F -f-> Z 08:40")
    assert by_label["least_walking"].endswith("08:10 N -n-> Z 09:00")
    walks = {it["label"]: it["walk_m"] for it in its}
    assert walks["least_walking"] == pytest.approx(50, abs=2) and walks["fastest"] == pytest.approx(400, abs=5)
