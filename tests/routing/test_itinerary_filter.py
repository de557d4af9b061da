"""Issue 13 item 7: absurd alternatives are filtered (docs/planning.md), and stay reachable with knobs.

The constructed feed reproduces the demo city's overnight case: bus 1 reaches the coach station B at
20:30; bus 2 leaves from the stand B2 (28 m away) at 20:40, coach 3 leaves from B itself at 06:00
the next morning. Without a filter the 06:00 coach is offered as ``least_walking`` (28 m less walking
for a 9.5 h wait).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from gtfs_text import stop_times, write_gtfs

from routing.compile import CompileOptions, compile_timetable
from routing.errors import InvalidQuery
from routing.feeds import FeedSource
from routing.search import PlanRequest, earliest_arrival, plan, plan_answer

BERLIN = ZoneInfo("Europe/Berlin")
WED = datetime(2025, 3, 5, tzinfo=BERLIN)

OVERNIGHT = {
    "stops.txt": """
        stop_id,stop_name,stop_lat,stop_lon
        A,Alpha,52.5000,13.3000
        B,Coach station,52.5000,13.3400
        B2,Coach station stand 2,52.50025,13.3400
        D,Delta,52.5400,13.3400
    """,
    "routes.txt": """
        route_id,route_short_name,route_type
        R1,1,3
        R2,2,3
        R3,3,3
    """,
    "trips.txt": """
        route_id,service_id,trip_id
        R1,WK,T1
        R2,WK,T2
        R3,WK,T3
    """,
    "stop_times.txt": stop_times({
        "T1": "A 20:00  B 20:30",
        "T2": "B2 20:40  D 21:10",
        "T3": "B 06:00  D 06:40",
    }),
}


@pytest.fixture()
def tt(tmp_path):
    path = write_gtfs(tmp_path / "f", OVERNIGHT)
    return compile_timetable([FeedSource("f", path, "op")], CompileOptions(walk_radius_m=100.0))


def _summary(its: list[dict]) -> list[tuple[str, str, str, int]]:
    return [(it["label"], it["departure"][11:16], it["legs"][-1]["route_name"], it["walk_m"]) for it in its]


def test_overnight_wait_to_save_28_m_is_filtered(tt):
    req = PlanRequest("f:A", "f:D", depart_at=WED + timedelta(hours=19, minutes=50))
    raw = plan(tt, dataclasses.replace(req, itinerary_filter="none"))
    # today's 20:00 via the stand, the overnight coach (28 m less walking), tomorrow's 20:00
    assert _summary(raw) == [("fastest", "20:00", "2", 28), ("least_walking", "20:00", "3", 0),
                             ("alternative", "20:00", "2", 28)]
    assert raw[1]["duration_s"] == 10 * 3600 + 40 * 60
    ans = plan_answer(tt, req)
    assert [it["id"] for it in ans.itineraries] == [raw[0]["id"], raw[2]["id"]]
    assert ans.filtered == {"duration": 1, "generalized_cost": 0, "dominated": 0}
    # relaxing the knobs brings it back (each rule alone drops it: duration, generalized cost, and
    # dominance with 100 m walking tolerance)
    relaxed = dataclasses.replace(req, max_duration_factor=20.0)
    assert len(plan(tt, relaxed)) == 2
    relaxed = dataclasses.replace(relaxed, cost_limit_factor=20.0)
    assert len(plan(tt, relaxed)) == 2
    relaxed = dataclasses.replace(relaxed, dominance_walk_slack_m=0.0)
    assert [it["id"] for it in plan(tt, relaxed)] == [it["id"] for it in raw]
    # earliest_arrival is the search's, untouched by the filter
    assert earliest_arrival(tt, req)[-1] == int((WED + timedelta(hours=21, minutes=10)).timestamp())


def test_the_fastest_itinerary_is_never_filtered(tt):
    # a strict filter (nothing longer or costlier than the best) keeps the fastest even though it is
    # not the cheapest under the generalized cost (tomorrow's identical journey is as good and stays too)
    strict = PlanRequest("f:A", "f:D", depart_at=WED + timedelta(hours=19, minutes=50), max_duration_factor=1.0,
                         max_duration_slack_s=0, cost_limit_factor=1.0, cost_limit_slack_s=0, cost_interval_relax=0.0)
    assert [x[:3] for x in _summary(plan(tt, strict))] == [("fastest", "20:00", "2"), ("alternative", "20:00", "2")]
    # arriving late at the stand: the overnight coach is the fastest, and it is kept
    late = PlanRequest("f:B", "f:D", depart_at=WED + timedelta(hours=20, minutes=45), max_duration_factor=1.0,
                       max_duration_slack_s=0, cost_limit_factor=1.0, cost_limit_slack_s=0)
    assert _summary(plan(tt, late))[0] == ("fastest", "06:00", "3", 0)


def test_dominance_with_walking_tolerance(tmp_path):
    # a bus 4 from B itself at 20:42 arrives 21:11, a minute after bus 2 from the stand (28 m away)
    files = dict(OVERNIGHT)
    files["routes.txt"] += "R4,4,3\n"
    files["trips.txt"] += "R4,WK,T4\n"
    files["stop_times.txt"] = stop_times({"T1": "A 20:00  B 20:30", "T2": "B2 20:40  D 21:10",
                                          "T4": "B 20:42  D 21:11"})
    path = write_gtfs(tmp_path / "f", files)
    tt = compile_timetable([FeedSource("f", path, "op")], CompileOptions(walk_radius_m=100.0))
    req = PlanRequest("f:A", "f:D", depart_at=WED + timedelta(hours=19, minutes=50))
    raw = plan(tt, dataclasses.replace(req, itinerary_filter="none"))
    assert ("least_walking", "20:00", "4", 0) in _summary(raw)  # a minute later to walk 28 m less
    ans = plan_answer(tt, req)
    assert ("least_walking", "20:00", "4", 0) not in _summary(ans.itineraries)
    assert ans.filtered["dominated"] >= 1
    kept = plan(tt, dataclasses.replace(req, dominance_walk_slack_m=20.0))  # 28 m is past a 20 m tolerance
    assert ("least_walking", "20:00", "4", 0) in _summary(kept)


def test_filter_knobs_are_validated(tt):
    for kw in ({"itinerary_filter": "some"}, {"max_duration_factor": 0.5}, {"cost_limit_slack_s": -1},
               {"dominance_walk_slack_m": -3}):
        with pytest.raises(InvalidQuery):
            plan(tt, PlanRequest("f:A", "f:D", depart_at=WED, **kw))
