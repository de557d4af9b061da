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

from gtfs_text import stop_times, write_gtfs
from reference import RefNetwork, check_feasible, earliest_arrivals, read_table, walking_graph

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
