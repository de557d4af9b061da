"""One feed, many operators (issue 13 item 10): each route belongs to its agency's operator.

A constructed feed with two agencies (no feed in ``../shared/data`` has several agencies with
trips: MBTA's two-agency snapshot lacks trips and stop_times): bus agency BUS runs A -> B, tram
agency TRAM runs B -> C.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from gtfs_text import stop_times, write_gtfs

from routing.cache import cache_key, load_or_compile
from routing.compile import CompileOptions, compile_timetable
from routing.feeds import FeedSource, parse_feed
from routing.search import PlanRequest, plan

TWO_AGENCIES = {
    "agency.txt": """
        agency_id,agency_name,agency_url,agency_timezone
        BUS,Bus Co,https://bus.example,Europe/Berlin
        TRAM,Tram Co,https://tram.example,Europe/Berlin
    """,
    "stops.txt": """
        stop_id,stop_name,stop_lat,stop_lon
        A,Alpha,52.500,13.400
        B,Beta,52.500,13.420
        C,Gamma,52.500,13.440
    """,
    "routes.txt": """
        route_id,agency_id,route_short_name,route_type
        R1,BUS,1,3
        R2,TRAM,T,0
    """,
    "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\nR2,WK,T2\n",
    "stop_times.txt": stop_times({"T1": "A 08:00 B 08:10", "T2": "B 08:15 C 08:25"}),
}
MAPPING = {"BUS": "busco", "TRAM": "tramco"}
DEPART = datetime(2025, 6, 4, 7, 55, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    return write_gtfs(tmp_path / "city", TWO_AGENCIES)


def test_report_lists_the_agencies(feed: Path) -> None:
    parsed, report = parse_feed(FeedSource("city", feed))
    assert report.ok and report.agencies == [{"agency_id": "BUS", "name": "Bus Co"},
                                            {"agency_id": "TRAM", "name": "Tram Co"}]
    assert report.to_dict()["agencies"] == report.agencies
    assert parsed.routes.agency_id.tolist() == ["BUS", "TRAM"]


def test_each_route_belongs_to_its_agencys_operator(feed: Path) -> None:
    tt = compile_timetable([FeedSource("city", feed, "owner", agency_operators=MAPPING)])
    assert tt.feed_operator_ids.tolist() == ["owner"]
    assert tt.route_agency_ids.tolist() == ["BUS", "TRAM"]
    assert tt.route_operator_ids.tolist() == ["busco", "tramco"]
    assert tt.operator_agencies("tramco") == [{"feed_id": "city", "agency_id": "TRAM", "name": "Tram Co"}]
    assert tt.operator_agencies("owner") == []
    # an agency without a mapping stays with the feed's operator (today's behaviour)
    tt1 = compile_timetable([FeedSource("city", feed, "owner", agency_operators={"TRAM": "tramco"})])
    assert tt1.route_operator_ids.tolist() == ["owner", "tramco"]
    tt0 = compile_timetable([FeedSource("city", feed)])
    assert tt0.route_operator_ids.tolist() == ["city", "city"]


def test_legs_carry_agency_and_operator(feed: Path) -> None:
    tt = compile_timetable([FeedSource("city", feed, "owner", agency_operators=MAPPING)])
    legs = [leg for leg in plan(tt, PlanRequest("city:A", "city:C", depart_at=DEPART))[0]["legs"]
            if leg["mode"] != "WALK"]
    assert [(leg["operator_id"], leg["agency"]) for leg in legs] == [
        ("busco", {"agency_id": "BUS", "name": "Bus Co"}), ("tramco", {"agency_id": "TRAM", "name": "Tram Co"})]
    # excluding an agency's operator excludes that agency's routes only
    no_tram = frozenset({"tramco"})
    its = plan(tt, PlanRequest("city:A", "city:C", depart_at=DEPART, excluded_operators=no_tram))
    assert all(leg.get("route_id") != "city:R2" for it in its for leg in it["legs"])
    its = plan(tt, PlanRequest("city:A", "city:B", depart_at=DEPART, excluded_operators=no_tram))
    assert [leg.get("route_id") for leg in its[0]["legs"]] == ["city:R1"]


def test_one_agency_feed_keeps_the_feed_operator(tmp_path: Path) -> None:
    files = {k: v for k, v in TWO_AGENCIES.items() if k != "agency.txt"}
    files["routes.txt"] = "route_id,route_short_name,route_type\nR1,1,3\nR2,T,0\n"
    tt = compile_timetable([FeedSource("solo", write_gtfs(tmp_path / "solo", files), "solo_op")])
    assert tt.route_agency_ids.tolist() == ["AG", "AG"] and tt.route_operator_ids.tolist() == ["solo_op"] * 2
    assert tt.route_agency(0) == {"agency_id": "AG", "name": "Test Agency"}


def test_cache_key_follows_the_mapping(feed: Path, tmp_path: Path) -> None:
    opts = CompileOptions()
    a = FeedSource("city", feed, "owner", agency_operators=MAPPING)
    b = FeedSource("city", feed, "owner", agency_operators={"BUS": "busco", "TRAM": "other"})
    same = FeedSource("city", feed, "owner", agency_operators=list(reversed(MAPPING.items())))
    assert cache_key([a], opts) != cache_key([b], opts)
    assert cache_key([a], opts) == cache_key([same], opts) and a == same
    cache = tmp_path / "cache"
    tt_a, hit_a = load_or_compile([a], cache)
    tt_b, hit_b = load_or_compile([b], cache)
    assert (hit_a, hit_b) == (False, False)
    assert tt_b.route_operator_ids.tolist() == ["busco", "other"]
    tt_a2, hit = load_or_compile([a], cache)
    assert hit and tt_a2.route_operator_ids.tolist() == ["busco", "tramco"]
    assert tt_a2.route_agency(1) == {"agency_id": "TRAM", "name": "Tram Co"}
