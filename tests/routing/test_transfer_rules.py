"""Transfers inside stations: pathways.txt walking times (issue 13 item 13, pathways part).

Where a feed has pathways.txt, the footpath between two served platforms is
the shortest walk over its pathways (traversal_time, else length at walking
speed; parallel pathways: the fastest; one-way pathways one way only), not the
straight line. The expected times here come from an independent Dijkstra over
the raw pathways.txt; the router's answers are compared with the
connection-scan oracle (``reference.py``), which takes the compiled walking
graph as input.
"""

from __future__ import annotations

import heapq
import math
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from gtfs_text import stop_times, write_gtfs
from reference import (
    RefNetwork,
    TransferRules,
    check_feasible,
    earliest_arrivals,
    earliest_arrivals_rules,
    read_table,
    walking_graph,
)

from routing.compile import compile_timetable
from routing.feeds import FeedSource
from routing.search import PlanRequest, earliest_arrival, plan

WALK = 1.3  # CompileOptions' default walking speed, m/s


def pathway_times(path, sources: list[str], speed: float = WALK) -> dict[tuple[str, str], int]:
    """Independent shortest walking time (s, rounded up) between stops over pathways.txt."""
    pw = read_table(path, "pathways.txt")
    adj: dict[str, list[tuple[str, float]]] = {}
    for r in pw.itertuples(index=False):
        tt = r.traversal_time.strip() if "traversal_time" in pw.columns else ""
        w = float(tt) if tt else float(r.length) / speed
        adj.setdefault(r.from_stop_id.strip(), []).append((r.to_stop_id.strip(), w))
        if r.is_bidirectional.strip() == "1":
            adj.setdefault(r.to_stop_id.strip(), []).append((r.from_stop_id.strip(), w))
    out = {}
    for s in sources:
        dist = {s: 0.0}
        heap = [(0.0, s)]
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist[u]:
                continue
            for v, w in adj.get(u, []):
                if d + w < dist.get(v, math.inf):
                    dist[v] = d + w
                    heapq.heappush(heap, (d + w, v))
        out.update({(s, v): math.ceil(d - 1e-3) for v, d in dist.items() if v != s})
    return out


def footpath(tt, u: str, v: str) -> int | None:
    ids = tt.stop_ids.tolist()
    i, j = ids.index(u), ids.index(v)
    for e in range(int(tt.footpath_offsets[i]), int(tt.footpath_offsets[i + 1])):
        if int(tt.footpath_to[e]) == j:
            return int(tt.footpath_s[e])
    return None


def station_feed(tmp_path):
    """Station ST: platform P1 (line R1 from A) and P2 (line R2 to B), 10 m apart, joined by pathways.

    P1 -> N: stairs 60 s (both ways) and a slow parallel walkway 200 s; N -> P2 walkway 30 s (one way);
    P2 -> N escalator, length 26 m only (20 s at 1.3 m/s). So P1 -> P2 = 90 s, P2 -> P1 = 80 s; the
    straight line would be 8 s.
    """
    return write_gtfs(tmp_path / "st", {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
            ST,Station,0.0100,0.0100,1,
            P1,Platform 1,0.0100,0.0100,0,ST
            P2,Platform 2,0.0100,0.01009,0,ST
            N,Node,0.0100,0.01005,3,ST
            E,Entrance,0.0101,0.0100,2,ST
            A,Alpha,0.0000,0.0000,0,
            B,Beta,0.0200,0.0200,0,
        """,
        "pathways.txt": """
            pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional,length,traversal_time
            w1,P1,N,2,1,20,60
            w2,P1,N,1,0,20,200
            w3,N,P2,1,0,10,30
            w4,P2,N,4,0,26,
            w5,E,N,1,1,15,12
        """,
        "routes.txt": """
            route_id,route_short_name,route_type
            R1,1,1
            R2,2,1
            R3,3,1
        """,
        "trips.txt": """
            route_id,service_id,trip_id
            R1,WK,T1
            R2,WK,T2
            R2,WK,T3
            R3,WK,U1
            R1,WK,U2
            R1,WK,U3
        """,
        "stop_times.txt": stop_times({
            "T1": "A 08:00  P1 08:10",
            "T2": "P2 08:11  B 08:20",
            "T3": "P2 08:12  B 08:21",
            "U1": "B 09:00  P2 09:10",
            "U2": "P1 09:11:10  A 09:20",
            "U3": "P1 09:11:30  A 09:21",
        }),
    })


def test_pathways_give_platform_to_platform_times(tmp_path):
    feed = station_feed(tmp_path)
    tt = compile_timetable([FeedSource("f", feed, "f")])
    want = pathway_times(feed, ["P1", "P2"])
    assert want[("P1", "P2")] == 90 and want[("P2", "P1")] == 80
    assert footpath(tt, "f:P1", "f:P2") == 90
    assert footpath(tt, "f:P2", "f:P1") == 80


def test_pathway_transfer_matches_oracle(tmp_path):
    feed = station_feed(tmp_path)
    tt = compile_timetable([FeedSource("f", feed, "f")])
    net = RefNetwork.from_gtfs([("f", feed)], date(2025, 3, 5))
    fp, change = walking_graph(tt)
    tz = ZoneInfo("Europe/Berlin")
    for o, d, t, want_hm in (("f:A", "f:B", 8, (8, 21)), ("f:B", "f:A", 9, (9, 21))):
        t0 = datetime(2025, 3, 5, t - 1, 55, tzinfo=tz)
        req = PlanRequest(o, d, depart_at=t0, max_transfers=1)
        got = earliest_arrival(tt, req)
        assert got == earliest_arrivals(net, o, d, int(t0.timestamp()), 2, fp, change)
        # the 08:11 / 09:11:10 connection is too tight over the pathways (90 s / 80 s), not over the 8 s line
        assert got[2] == int(datetime(2025, 3, 5, *want_hm, tzinfo=tz).timestamp())
        it = [i for i in plan(tt, req) if i["transfers"] == 1][0]
        check_feasible(it, net, fp, change)
        walk = [leg for leg in it["legs"] if leg["mode"] == "WALK"]
        assert [w["duration_s"] for w in walk] == [90 if o == "f:A" else 80]


def test_wmata_metro_center_transfer_uses_pathways(shared_data):
    """Metro Center: Red Line track 1 -> Blue/Orange/Silver platform takes the pathway time (73 s), not 13 s."""
    path = shared_data / "wmata-rail/wmata_rail.zip"
    tt = compile_timetable([FeedSource("wmata", path, "wmata")])
    plats = ["PF_A01_1", "PF_A01_2", "PF_C01_C", "PF_B01_1", "PF_B01_2", "PF_F01_C", "PF_D03_C", "PF_F03_C",
             "PF_B06_C", "PF_E06_C"]
    want = pathway_times(path, plats)
    checked = 0
    for (u, v), s in want.items():
        if v in plats:
            assert footpath(tt, f"wmata:{u}", f"wmata:{v}") == s, (u, v)
            checked += 1
    assert checked >= 8
    assert want[("PF_A01_1", "PF_C01_C")] == 73
    t0 = datetime(2026, 5, 6, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    req = PlanRequest("wmata:STN_A02", "wmata:STN_D01", depart_at=t0, max_transfers=2)
    it = [i for i in plan(tt, req) if i["transfers"] == 1][0]
    walk = [leg for leg in it["legs"] if leg["mode"] == "WALK"]
    assert [(w["from"]["stop_id"], w["to"]["stop_id"], w["duration_s"]) for w in walk] == [
        ("wmata:PF_A01_1", "wmata:PF_C01_C", 73)]
    ride1, ride2 = [leg for leg in it["legs"] if leg["mode"] != "WALK"]
    gap = datetime.fromisoformat(ride2["departure"]) - datetime.fromisoformat(ride1["arrival"])
    assert gap.total_seconds() >= 73


# ---------------------------------------------------------------------------------------------
# transfers.txt rules by stop, route and trip; linked trips (in-seat)

RULES_HEADER = "from_stop_id,to_stop_id,from_route_id,to_route_id,from_trip_id,to_trip_id,transfer_type,min_transfer_time"


def rules_feed(tmp_path, name: str, rules: str):
    """T1 (R1) A 08:00 -> X1 08:10; onwards to B: U1-U4 (R2) at 08:10/12/15/20, V1/V2 (R3) at 08:13/16,
    W1 (R4, the same vehicle as T1: block K) at 08:10. Stops km apart: no walking."""
    return write_gtfs(tmp_path / name, {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
            XS,X station,0.05,0.05,1,
            X1,X platform,0.05,0.05,0,XS
            A,Alpha,0.00,0.00,0,
            B,Beta,0.10,0.10,0,
        """,
        "routes.txt": """
            route_id,route_short_name,route_type
            R1,1,3
            R2,2,3
            R3,3,3
            R4,4,3
        """,
        "trips.txt": """
            route_id,service_id,trip_id,block_id
            R1,WK,T1,K
            R2,WK,U1,
            R2,WK,U2,
            R2,WK,U3,
            R2,WK,U4,
            R3,WK,V1,
            R3,WK,V2,
            R4,WK,W1,K
        """,
        "stop_times.txt": stop_times({
            "T1": "A 08:00  X1 08:10",
            "U1": "X1 08:10  B 08:30", "U2": "X1 08:12  B 08:32", "U3": "X1 08:15  B 08:35",
            "U4": "X1 08:20  B 08:40",
            "V1": "X1 08:13  B 08:33", "V2": "X1 08:16  B 08:36",
            "W1": "X1 08:10  B 08:31",
        }),
        "transfers.txt": RULES_HEADER + "\n" + rules,
    })


STOP5 = "X1,X1,,,,,2,300\n"  # five minutes to change at X1
# (case, transfers.txt rows, max transfers, arrival at B or None)
CASES = [
    ("stop_min_time", STOP5, 1, (8, 35)),
    ("stop_forbidden", "X1,X1,,,,,3,\n", 1, None),
    ("stop_timed", "X1,X1,,,,,1,\n", 1, (8, 30)),
    ("station_vs_platform", "XS,XS,,,,,3,\nX1,X1,,,,,2,300\n", 1, (8, 35)),
    ("stop_in_seat_not_linked", STOP5, 0, None),  # block_id alone is no in-seat transfer
    ("route_timed_over_stop", STOP5 + "X1,X1,R1,R2,,,1,\n", 1, (8, 30)),
    ("route_min_time_over_stop", STOP5 + "X1,X1,R1,R2,,,2,120\n", 1, (8, 32)),
    ("route_forbidden", STOP5 + "X1,X1,R1,R2,,,3,\nX1,X1,R1,R3,,,2,300\n", 1, (8, 36)),
    ("trip_over_route", STOP5 + "X1,X1,R1,R2,,,3,\nX1,X1,,,T1,U2,2,120\n", 1, (8, 32)),
    ("trip_and_route_over_route", STOP5 + "X1,X1,R1,R2,,,3,\nX1,X1,,R2,T1,,1,\n", 1, (8, 30)),
    ("one_trip_over_routes", STOP5 + "X1,X1,R1,R2,,,1,\nX1,X1,,,T1,,3,\n", 1, None),
    ("in_seat", "X1,X1,,,,,3,\n,,,,T1,W1,4,\n", 0, (8, 31)),
    ("in_seat_not_allowed", "X1,X1,,,,,3,\n,,,,T1,W1,5,\n", 1, None),
    ("in_seat_not_allowed_transfer", STOP5 + ",,,,T1,W1,5,\n", 1, (8, 35)),
]


def _rules_query(tmp_path, case):
    name, rules, max_transfers, want_hm = case
    feed = rules_feed(tmp_path, name, rules)
    day = date(2025, 3, 5)
    tz = ZoneInfo("Europe/Berlin")
    t0 = datetime(2025, 3, 5, 7, 55, tzinfo=tz)
    want = None if want_hm is None else int(datetime(2025, 3, 5, *want_hm, tzinfo=tz).timestamp())
    return feed, day, t0, max_transfers, want


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_oracle_honours_transfer_rules(tmp_path, case):
    """The oracle's reading of each rule kind and of the GTFS precedence, against hand-computed arrivals."""
    feed, day, t0, max_transfers, want = _rules_query(tmp_path, case)
    tt = compile_timetable([FeedSource("f", feed, "f")])
    net = RefNetwork.from_gtfs([("f", feed)], day)
    fp, change = walking_graph(tt)
    got = earliest_arrivals_rules(net, "f:A", "f:B", int(t0.timestamp()), max_transfers + 1, fp, change,
                                  TransferRules.from_gtfs([("f", feed)]))
    assert got[-1] == want


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_router_matches_rules_oracle(tmp_path, case):
    feed, day, t0, max_transfers, want = _rules_query(tmp_path, case)
    tt = compile_timetable([FeedSource("f", feed, "f")])
    net = RefNetwork.from_gtfs([("f", feed)], day)
    fp, change = walking_graph(tt)
    req = PlanRequest("f:A", "f:B", depart_at=t0, max_transfers=max_transfers)
    got = earliest_arrival(tt, req)
    oracle = earliest_arrivals_rules(net, "f:A", "f:B", int(t0.timestamp()), max_transfers + 1, fp, change,
                                     TransferRules.from_gtfs([("f", feed)]))
    assert got[1:] == oracle[1:]
    assert got[-1] == want
    _plan_arrives(tt, req, want)


def walk_feed(tmp_path, name: str, rules: str):
    """T1 (R1) A 08:00 -> X1 08:10; Y1 is 100 m from X1 (77 s walk); U1-U3 (R2) Y1 08:11/13/20 -> B.
    Linked chain T1 -> W1 (R4) X1 08:10 -> Z 08:20 -> W2 (R5) Z 08:20 -> B 08:45."""
    return write_gtfs(tmp_path / name, {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
            XS,X station,0.05,0.05,1,
            YS,Y station,0.05,0.0509,1,
            X1,X platform,0.05,0.05,0,XS
            Y1,Y platform,0.05,0.0509,0,YS
            A,Alpha,0.00,0.00,0,
            Z,Zeta,0.08,0.00,0,
            B,Beta,0.10,0.10,0,
        """,
        "routes.txt": """
            route_id,route_short_name,route_type
            R1,1,3
            R2,2,3
            R4,4,3
            R5,5,3
        """,
        "trips.txt": """
            route_id,service_id,trip_id
            R1,WK,T1
            R2,WK,U1
            R2,WK,U2
            R2,WK,U3
            R4,WK,W1
            R5,WK,W2
        """,
        "stop_times.txt": stop_times({
            "T1": "A 08:00  X1 08:10",
            "U1": "Y1 08:11  B 08:30", "U2": "Y1 08:13  B 08:32", "U3": "Y1 08:20  B 08:40",
            "W1": "X1 08:10  Z 08:20", "W2": "Z 08:20  B 08:45",
        }),
        "transfers.txt": RULES_HEADER + "\n" + rules,
    })


WALK10 = "X1,Y1,,,,,2,600\n"  # ten minutes from X1 to Y1
WALK_CASES = [
    ("walk_generic", "", 1, (8, 32)),
    ("walk_stop_min_time", WALK10, 1, (8, 40)),
    ("walk_route_forbidden", "X1,Y1,R1,R2,,,3,\n", 1, None),
    ("walk_station_route_forbidden", "XS,YS,R1,R2,,,3,\n", 1, None),
    ("walk_route_min_time_over_stop", WALK10 + "X1,Y1,R1,R2,,,2,120\n", 1, (8, 32)),
    ("walk_route_timed_over_stop", WALK10 + "X1,Y1,R1,R2,,,1,\n", 1, (8, 32)),
    ("linked_chain", "X1,X1,,,,,3,\nZ,Z,,,,,3,\n,,,,T1,W1,4,\n,,,,W1,W2,4,\n", 0, (8, 45)),
    # W1 -> W2 not linked and no change at Z: the walk to Y1 remains
    ("linked_chain_broken", "X1,X1,,,,,3,\nZ,Z,,,,,3,\n,,,,T1,W1,4,\n", 2, (8, 32)),
]


@pytest.mark.parametrize("case", WALK_CASES, ids=[c[0] for c in WALK_CASES])
def test_oracle_honours_rules_between_stops(tmp_path, case):
    name, rules, max_transfers, want_hm = case
    feed = walk_feed(tmp_path, name, rules)
    tz = ZoneInfo("Europe/Berlin")
    t0 = datetime(2025, 3, 5, 7, 55, tzinfo=tz)
    tt = compile_timetable([FeedSource("f", feed, "f")])
    net = RefNetwork.from_gtfs([("f", feed)], date(2025, 3, 5))
    fp, change = walking_graph(tt)
    got = earliest_arrivals_rules(net, "f:A", "f:B", int(t0.timestamp()), max_transfers + 1, fp, change,
                                  TransferRules.from_gtfs([("f", feed)]))
    want = None if want_hm is None else int(datetime(2025, 3, 5, *want_hm, tzinfo=tz).timestamp())
    assert got[-1] == want
    req = PlanRequest("f:A", "f:B", depart_at=t0, max_transfers=max_transfers)
    router = earliest_arrival(tt, req)
    assert router[1:] == got[1:]
    _plan_arrives(tt, req, want)


def _plan_arrives(tt, req, want):
    """The itineraries ``plan`` returns (McRAPTOR, filters, legs) arrive no earlier than the rules allow, and
    the fastest when the oracle says."""
    arrivals = [int(datetime.fromisoformat(it["arrival"]).timestamp()) for it in plan(tt, req)]
    if want is None:
        assert arrivals == []
    else:
        assert min(arrivals) == want


def test_rules_oracle_agrees_with_plain_oracle_on_random_stop_rules(tmp_path):
    """With stop-level rules only, the rule-aware oracle (reading transfers.txt itself, labels per arrival
    event) finds what the plain oracle finds with the compiled change times (random networks)."""
    from test_oracle_random import _case, _net, _queries

    compared = found = 0
    for seed in range(25):
        rng, path, tt, _day = _case(tmp_path / str(seed), seed)
        rules = TransferRules.from_gtfs([("x", path)])
        nets: dict = {}
        for q in _queries(rng, tt, _day):
            fp, change = walking_graph(tt, q["walk_speed_m_s"], q["max_walk_m"])
            net = _net(nets, path, q["t0"])
            t = int(q["t0"].timestamp())
            args = (net, q["origin"], q["destination"], t, q["max_transfers"] + 1, fp, change)
            want = earliest_arrivals(*args, min_change_s=q["min_change_s"], walk_only=False)
            got = earliest_arrivals_rules(*args, rules, min_change_s=q["min_change_s"],
                                          walk_speed_m_s=q["walk_speed_m_s"])
            assert got[1:] == want[1:], (seed, q)
            compared += 1
            found += want[-1] is not None
    assert compared == 125 and found >= 15


def test_rules_that_change_nothing_are_dropped(tmp_path):
    """A timed trip-to-trip rule at a stop where changing needs no time anyway decides nothing (Metro-North
    lists 23,438 of them): it is not kept, and its trips stay in their route's pattern. With a stop rule
    needing time there, the same rule overrides it: kept, with a pattern of its own."""
    def compiled(name, rules):
        tt = compile_timetable([FeedSource("f", rules_feed(tmp_path, name, rules), "f")])
        ids = tt.trip_ids.tolist()
        pat = {t: int(tt.trip_pattern[ids.index(f"f:{t}")]) for t in ("U1", "U2", "U3")}
        return tt, pat

    tt, pat = compiled("redundant", "X1,X1,,,T1,U2,1,\nX1,X1,R1,R2,,,0,\nX1,X1,,,T1,U3,2,0\n")
    assert len(tt.trip_transfer_type) == 0
    assert pat["U1"] == pat["U2"] == pat["U3"]
    tt, pat = compiled("needed", STOP5 + "X1,X1,,,T1,U2,1,\n")
    assert tt.trip_transfer_type.tolist() == [1]
    assert pat["U2"] != pat["U1"] == pat["U3"]
    tt, pat = compiled("station", "XS,XS,,,,,2,300\nX1,X1,,,T1,U2,1,\n")  # the station's rule holds at X1
    assert tt.trip_transfer_type.tolist() == [1]
