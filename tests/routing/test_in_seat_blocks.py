"""In-seat links inferred from trips.txt ``block_id`` (opt-in per feed: ``FeedSource.in_seat_from_blocks``).

Two trips are linked when they share a non-empty block_id and service_id, neither is
frequency-based, the second is the next of that block and service by first departure, it
leaves no earlier than the first arrives, from the first's last stop (or a stop of the same
parent station); transfers.txt wins (type 5 forbids the pair, a type-4 from_trip gets no
inferred link). Arrivals are compared with the rules oracle reading the block rule itself
(``TransferRules.from_gtfs(..., blocks=True)``).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from gtfs_text import stop_times, write_gtfs
from reference import RefNetwork, TransferRules, earliest_arrivals_rules, walking_graph

from routing.cache import cache_key
from routing.compile import compile_timetable
from routing.feeds import FeedSource
from routing.search import PlanRequest, earliest_arrival, plan
from routing.timetable import CompileOptions

TZ = ZoneInfo("Europe/Berlin")
WED = date(2025, 3, 5)
HEADER = "from_stop_id,to_stop_id,from_route_id,to_route_id,from_trip_id,to_trip_id,transfer_type,min_transfer_time"
NO_CHANGE = "X1,X1,,,,,3,\nX2,X2,,,,,3,\nY1,Y1,,,,,3,\n"  # no ordinary change at the junction stops
CALENDAR = ("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
            "WK,1,1,1,1,1,1,1,20250101,20251231\nWK2,1,1,1,1,1,1,1,20250101,20251231\n")
BASE_TRIPS = {"T1": ("WK", "K"), "W1": ("WK", "K")}
BASE_TIMES = {"T1": "A 08:00  X1 08:10", "W1": "X1 08:10  B 08:31"}


def block_feed(tmp_path, name: str, trips=None, times=None, rules: str = NO_CHANGE):
    """Stops A, B, C km apart; X1 and X2 platforms of station XS; Y1 next to X1 but no station. One route per
    trip; ``trips``: trip -> (service_id, block_id)."""
    trips = BASE_TRIPS if trips is None else trips
    times = BASE_TIMES if times is None else times
    return write_gtfs(tmp_path / name, {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
            XS,X station,0.05,0.05,1,
            X1,X platform 1,0.05,0.05,0,XS
            X2,X platform 2,0.05,0.0501,0,XS
            Y1,Y,0.05,0.0502,0,
            A,Alpha,0.00,0.00,0,
            B,Beta,0.10,0.10,0,
            C,Gamma,0.00,0.10,0,
        """,
        "routes.txt": "route_id,route_short_name,route_type\n" + "".join(f"R{t},{t},3\n" for t in trips),
        "trips.txt": "route_id,service_id,trip_id,block_id\n" + "".join(
            f"R{t},{svc},{t},{blk}\n" for t, (svc, blk) in trips.items()),
        "stop_times.txt": stop_times(times),
        "calendar.txt": CALENDAR,
        "transfers.txt": HEADER + "\n" + rules,
    })


def _t(h: int, m: int) -> int:
    return int(datetime(WED.year, WED.month, WED.day, h, m, tzinfo=TZ).timestamp())


def _run(feed, blocks: bool, origin="A", dest="B", max_transfers=0):
    """(timetable, request, router arrivals per ride count, oracle arrivals, import report of the feed)."""
    tt = compile_timetable([FeedSource("f", feed, "f", in_seat_from_blocks=blocks)])
    net = RefNetwork.from_gtfs([("f", feed)], WED)
    fp, change = walking_graph(tt)
    t0 = datetime(WED.year, WED.month, WED.day, 7, 55, tzinfo=TZ)
    req = PlanRequest(f"f:{origin}", f"f:{dest}", depart_at=t0, max_transfers=max_transfers)
    got = earliest_arrival(tt, req)
    want = earliest_arrivals_rules(net, f"f:{origin}", f"f:{dest}", int(t0.timestamp()), max_transfers + 1, fp,
                                   change, TransferRules.from_gtfs([("f", feed)], blocks=blocks))
    assert got[1:] == want[1:]
    return tt, req, got, tt.meta["feeds"][0]


def test_block_links_with_option_only(tmp_path):
    """T1 A -> X1 08:10, W1 X1 08:10 -> B 08:31, one block, no change allowed at X1: with the option one
    ride T1 then W1 (in_seat) arriving 08:31; without it no journey (block_id alone is no link)."""
    feed = block_feed(tmp_path, "base")
    tt, req, got, report = _run(feed, True)
    assert got[-1] == _t(8, 31)
    assert report["counts"]["in_seat_links_from_blocks"] == 1
    assert report["counts"]["combined_trips"] == 1
    its = plan(tt, req)
    assert its
    rides = [lg for lg in its[0]["legs"] if lg["mode"] != "WALK"]
    assert [(lg["trip_id"], lg.get("in_seat", False)) for lg in rides] == [("f:T1", False), ("f:W1", True)]
    assert its[0]["transfers"] == 0
    assert its[0]["arrival"].startswith(f"{WED.isoformat()}T08:31")

    tt0, req0, got0, report0 = _run(feed, False)
    assert got0[-1] is None
    assert plan(tt0, req0) == []
    assert "in_seat_links_from_blocks" not in report0["counts"]
    assert "combined_trips" not in report0["counts"]
    # with one transfer allowed it is still impossible without the option (no change at X1)
    assert _run(feed, False, max_transfers=1)[2][-1] is None


def _linked(feed) -> int:
    return _run(feed, True)[3]["counts"]["in_seat_links_from_blocks"]


def test_different_service_not_linked(tmp_path):
    feed = block_feed(tmp_path, "svc", trips={"T1": ("WK", "K"), "W1": ("WK2", "K")})
    assert _run(feed, True)[2][-1] is None
    assert _linked(feed) == 0


def test_different_block_not_linked(tmp_path):
    feed = block_feed(tmp_path, "blk", trips={"T1": ("WK", "K"), "W1": ("WK", "L")})
    assert _run(feed, True)[2][-1] is None
    assert _linked(feed) == 0


def test_leaving_before_arrival_not_linked(tmp_path):
    feed = block_feed(tmp_path, "early", times={"T1": "A 08:00  X1 08:10", "W1": "X1 08:09  B 08:31"})
    assert _run(feed, True)[2][-1] is None
    assert _linked(feed) == 0


def test_dwell_links_when_leaving_later(tmp_path):
    feed = block_feed(tmp_path, "dwell", times={"T1": "A 08:00  X1 08:10", "W1": "X1 08:25  B 08:45"})
    assert _run(feed, True)[2][-1] == _t(8, 45)


def test_only_next_trip_of_block_linked(tmp_path):
    """T1, M1 (X1 08:12 -> C), W1 (X1 08:15 -> B) in one block: T1 links to M1 only (M1 ends at C, not W1's
    start): A -> C in one ride, A -> B not."""
    feed = block_feed(tmp_path, "between", trips={"T1": ("WK", "K"), "M1": ("WK", "K"), "W1": ("WK", "K")},
                      times={"T1": "A 08:00  X1 08:10", "M1": "X1 08:12  C 08:20", "W1": "X1 08:15  B 08:31"})
    assert _run(feed, True)[2][-1] is None
    _tt, _req, got, report = _run(feed, True, dest="C")
    assert got[-1] == _t(8, 20)
    assert report["counts"]["in_seat_links_from_blocks"] == 1
    # trips.txt order does not matter: ordering is by first departure
    feed2 = block_feed(tmp_path, "between2", trips={"W1": ("WK", "K"), "M1": ("WK", "K"), "T1": ("WK", "K")},
                       times={"T1": "A 08:00  X1 08:10", "M1": "X1 08:12  C 08:20", "W1": "X1 08:15  B 08:31"})
    assert _run(feed2, True)[2][-1] is None
    assert _run(feed2, True, dest="C")[2][-1] == _t(8, 20)


def test_type5_row_forbids_the_pair(tmp_path):
    feed = block_feed(tmp_path, "t5", rules=NO_CHANGE + ",,,,T1,W1,5,\n")
    assert _run(feed, True)[2][-1] is None
    assert _linked(feed) == 0


def test_explicit_type4_from_trip_gets_no_inferred_link(tmp_path):
    """T1 is from_trip of a type-4 row to M1 (A -> C): the feed said what T1 links to, W1 is not added."""
    feed = block_feed(tmp_path, "t4", trips={"T1": ("WK", "K"), "W1": ("WK", "K"), "M1": ("WK", "")},
                      times={**BASE_TIMES, "M1": "X1 08:12  C 08:20"}, rules=NO_CHANGE + ",,,,T1,M1,4,\n")
    assert _run(feed, True)[2][-1] is None
    _tt, _req, got, report = _run(feed, True, dest="C")
    assert got[-1] == _t(8, 20)
    assert report["counts"]["in_seat_links_from_blocks"] == 0
    assert report["counts"]["in_seat_links"] == 1


def test_different_stops_not_linked(tmp_path):
    """W1 starts at Y1 (next to X1, no common station): no link."""
    feed = block_feed(tmp_path, "stops", times={"T1": "A 08:00  X1 08:10", "W1": "Y1 08:12  B 08:31"})
    assert _run(feed, True)[2][-1] is None
    assert _linked(feed) == 0


def test_same_parent_station_linked(tmp_path):
    """W1 starts at X2, another platform of T1's last stop's station: linked, one ride."""
    feed = block_feed(tmp_path, "station", times={"T1": "A 08:00  X1 08:10", "W1": "X2 08:12  B 08:31"})
    tt, req, got, report = _run(feed, True)
    assert got[-1] == _t(8, 31)
    assert report["counts"]["in_seat_links_from_blocks"] == 1
    rides = [lg for lg in plan(tt, req)[0]["legs"] if lg["mode"] != "WALK"]
    assert [(lg["trip_id"], lg["from"]["stop_id"], lg["to"]["stop_id"], lg.get("in_seat", False))
            for lg in rides] == [("f:T1", "f:A", "f:X1", False), ("f:W1", "f:X2", "f:B", True)]
    assert _run(feed, False)[2][-1] is None


def test_frequency_trip_not_linked(tmp_path):
    feed = block_feed(tmp_path, "freq")
    (feed / "frequencies.txt").write_text("trip_id,start_time,end_time,headway_secs\nW1,08:10:00,08:11:00,600\n")
    tt = compile_timetable([FeedSource("f", feed, "f", in_seat_from_blocks=True)])  # (the oracle has no frequencies)
    assert tt.meta["feeds"][0]["counts"]["in_seat_links_from_blocks"] == 0
    t0 = datetime(WED.year, WED.month, WED.day, 7, 55, tzinfo=TZ)
    assert earliest_arrival(tt, PlanRequest("f:A", "f:B", depart_at=t0, max_transfers=0))[-1] is None


def test_chain_of_block(tmp_path):
    """T1 -> W1 -> W2 along one block: A -> C in one ride over three trips."""
    feed = block_feed(tmp_path, "chain", trips={"T1": ("WK", "K"), "W1": ("WK", "K"), "W2": ("WK", "K")},
                      times={"T1": "A 08:00  X1 08:10", "W1": "X1 08:10  B 08:31", "W2": "B 08:35  C 08:50"})
    _tt, _req, got, report = _run(feed, True, dest="C")
    assert got[-1] == _t(8, 50)
    assert report["counts"]["in_seat_links_from_blocks"] == 2


@pytest.mark.parametrize("as_zip", [False, True])
def test_cache_key_and_source_identity_change_with_option(tmp_path, as_zip):
    feed = write_gtfs(tmp_path / "k", {"stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nA,A,0,0\nB,B,0,0.01\n",
                                       "routes.txt": "route_id,route_type\nR,3\n",
                                       "trips.txt": "route_id,service_id,trip_id,block_id\nR,WK,T,K\n",
                                       "stop_times.txt": stop_times({"T": "A 08:00  B 08:05"})}, as_zip=as_zip)
    off, on = FeedSource("f", feed, "f"), FeedSource("f", feed, "f", in_seat_from_blocks=True)
    assert off.in_seat_from_blocks is False
    assert off != on
    assert off == FeedSource("f", feed, "f", in_seat_from_blocks=False) and len({off, on, FeedSource("f", feed)}) == 2
    assert cache_key([off], CompileOptions()) != cache_key([on], CompileOptions())
    assert cache_key([on], CompileOptions()) == cache_key([FeedSource("f", feed, "f", in_seat_from_blocks=1)],
                                                          CompileOptions())
