"""Service Alerts selectors by agency and by direction (issue 13 item 5).

An informed entity naming an agency touches the rides of that agency only (a two-agency feed keeps
agency ids per route); one naming a direction touches the trips of that direction (trips.txt
direction_id), a trip of unknown direction is not ruled out.
"""

from __future__ import annotations

from google.transit import gtfs_realtime_pb2 as rt
from gtfs_text import stop_times, write_gtfs

from routing.alerts import alerts_for_leg, parse_alerts
from routing.compile import compile_timetable
from routing.feeds import FeedSource


def _feed(tmp_path):
    return write_gtfs(tmp_path / "f", {
        "agency.txt": """
            agency_id,agency_name,agency_url,agency_timezone
            A1,Bus One,https://one.example,Europe/Berlin
            A2,Bus Two,https://two.example,Europe/Berlin
        """,
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon
            A,Alpha,52.50,13.40
            B,Beta,52.50,13.45
        """,
        "routes.txt": """
            route_id,agency_id,route_short_name,route_type
            R1,A1,1,3
            R2,A2,2,3
        """,
        "trips.txt": """
            route_id,service_id,trip_id,direction_id
            R1,WK,OUT,0
            R1,WK,BACK,1
            R2,WK,U,
        """,
        "stop_times.txt": stop_times({"OUT": "A 08:00  B 08:10", "BACK": "B 09:00  A 09:10", "U": "A 10:00  B 10:10"}),
    })


def _alerts(tt, entities: dict[str, dict]) -> object:
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    for aid, sel in entities.items():
        e = msg.entity.add()
        e.id = aid
        ie = e.alert.informed_entity.add()
        for k, v in sel.items():
            setattr(ie, k, v)
        e.alert.header_text.translation.add(text=aid, language="en")
    return parse_alerts(tt, msg.SerializeToString(), "f")


def _leg(route: str, trip: str, frm: str, to: str, dep: str, arr: str) -> dict:
    return {"mode": "BUS", "feed_id": "f", "route_id": f"f:{route}", "trip_id": f"f:{trip}",
            "from": {"stop_id": f"f:{frm}"}, "to": {"stop_id": f"f:{to}"},
            "departure": f"2025-03-05T{dep}:00+01:00", "arrival": f"2025-03-05T{arr}:00+01:00"}


def test_agency_and_direction_selectors(tmp_path):
    tt = compile_timetable([FeedSource("f", _feed(tmp_path), "f")])
    fa = _alerts(tt, {"one": {"agency_id": "A1"}, "two": {"agency_id": "A2"},
                      "r1_back": {"route_id": "R1", "direction_id": 1}, "dir0": {"direction_id": 0}})
    out = _leg("R1", "OUT", "A", "B", "08:00", "08:10")
    back = _leg("R1", "BACK", "B", "A", "09:00", "09:10")
    u = _leg("R2", "U", "A", "B", "10:00", "10:10")

    def ids(leg):
        return sorted(a["id"] for a in alerts_for_leg([fa], tt, leg, "en"))

    assert ids(out) == ["dir0", "one"]
    assert ids(back) == ["one", "r1_back"]
    # U is of agency A2 and of unknown direction: the direction-0 alert is not ruled out
    assert ids(u) == ["dir0", "two"]
    walk = {**out, "mode": "WALK", "route_id": None, "trip_id": None}
    assert ids(walk) == []
