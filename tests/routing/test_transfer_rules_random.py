"""Route- and trip-keyed transfers.txt rules against the rule-aware oracle on random networks.

Random small networks (``random_feed_tables``: stop rules, overtaking trips, pickup/drop-off
restrictions, trips past midnight) get random rules naming routes and trips (types 0-3, at one stop and
between two). The router (``routing.transfer_graph`` nodes and edges) must find, per number of rides,
the arrival of ``earliest_arrivals_rules`` (labels per arrival event, reading transfers.txt itself), and
every transfer in every itinerary ``plan`` returns must satisfy the most specific rule for its two trips.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from gtfs_text import write_gtfs
from reference import (RefNetwork, TransferRules, _epoch, _haversine, check_feasible, earliest_arrivals,
                       earliest_arrivals_rules, random_feed_tables, walking_graph)

from routing.compile import CompileOptions, compile_timetable
from routing.fares import empty_tables
from routing.feeds import FeedSource
from routing.search import PlanRequest, earliest_arrival, plan

TZ = ZoneInfo("Europe/Berlin")
N_NETWORKS = 40
QUERIES = 8


def _keyed_rules(rng, tables: dict[str, str]) -> str:
    """Random rows naming routes and/or trips, appended to the feed's stop rules."""
    stops = [r.split(",")[0] for r in tables["stops.txt"].splitlines()[1:]]
    route_of = {r.split(",")[2]: r.split(",")[0] for r in tables["trips.txt"].splitlines()[1:]}
    served: dict[str, set[str]] = {}  # stop -> trips calling there
    for r in tables["stop_times.txt"].splitlines()[1:]:
        f = r.split(",")
        served.setdefault(f[3], set()).add(f[0])
    # rules mostly where routes meet, naming the routes and trips that call there
    meet = [s for s, ts in served.items() if len({route_of[t] for t in ts}) >= 2] or stops
    rows = ["from_stop_id,to_stop_id,from_route_id,to_route_id,from_trip_id,to_trip_id,transfer_type,"
            "min_transfer_time"]
    for r in tables["transfers.txt"].splitlines()[1:]:  # the rules there, widened to the new columns
        f = r.split(",")
        rows.append(r if len(f) == 8 else f"{f[0]},{f[1]},,,,,{f[2]},{f[3]}")
    for _ in range(int(rng.integers(6, 17))):
        a = str(rng.choice(meet))
        b = a if rng.random() < 0.75 else str(rng.choice(stops))
        ta, tb = sorted(served.get(a, route_of)), sorted(served.get(b, route_of))
        ft = str(rng.choice(ta)) if rng.random() < 0.3 else ""
        tt = str(rng.choice(tb)) if rng.random() < 0.3 else ""
        fr = route_of[str(rng.choice(ta))] if rng.random() < 0.6 else ""
        tr = route_of[str(rng.choice(tb))] if rng.random() < 0.6 else ""
        if not (fr or tr or ft or tt):
            fr = route_of[str(rng.choice(ta))]
        kind = int(rng.choice([0, 1, 2, 2, 2, 3, 3, 3]))
        mt = int(rng.integers(0, 21)) * 60 if kind == 2 else ""
        rows.append(f"{a},{b},{fr},{tr},{ft},{tt},{kind},{mt}")
    return "\n".join(rows)


def _denser(rng, tables: dict[str, str]) -> None:
    """Repeat every trip a few times, 4-20 minutes apart, so that journeys change vehicles often."""
    trips = tables["trips.txt"].splitlines()
    st = tables["stop_times.txt"].splitlines()
    rows: dict[str, list[list[str]]] = {}
    for r in st[1:]:
        f = r.split(",")
        rows.setdefault(f[0], []).append(f)

    def shift(hms: str, d: int) -> str:
        h, m, sec = (int(x) for x in hms.split(":"))
        t = h * 3600 + m * 60 + sec + d
        return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"

    for line in trips[1:]:
        route, service, trip = line.split(",")
        gap = int(rng.integers(4, 21)) * 60
        for k in range(1, int(rng.integers(2, 6))):
            trips.append(f"{route},{service},{trip}c{k}")
            st.extend(",".join([f"{trip}c{k}", shift(f[1], k * gap), shift(f[2], k * gap)] + f[3:])
                      for f in rows[trip])
    tables["trips.txt"] = "\n".join(trips)
    tables["stop_times.txt"] = "\n".join(st)


def _case(tmp_path, seed, links: bool = False):
    """A random network with route/trip rules; with ``links`` also linked trips (in seat, type 4), so that rules
    judge the parts of combined trips."""
    rng = np.random.default_rng(10_000 + seed + (5_000 if links else 0))
    tables = random_feed_tables(rng)
    _denser(rng, tables)
    if links:
        from test_in_seat import _random_links
        tables = _random_links(rng, tables)
    tables["transfers.txt"] = _keyed_rules(rng, tables)
    path = write_gtfs(tmp_path / "feed", tables, timezone="Europe/Berlin")
    tt = compile_timetable([FeedSource("x", path, "x")],
                           CompileOptions(walk_radius_m=float(rng.choice([0.0, 300.0, 700.0]))))
    return rng, path, tt


def _queries(rng, tt, path):
    """From a stop some trip leaves a few minutes later to a stop a trip of another route calls at (so that
    journeys change vehicles), or between two random stops at a random time."""
    stops = tt.stop_ids.tolist()
    day = date(2025, 3, 5)
    midnight = datetime.combine(day, datetime.min.time(), TZ)
    st = [r.split(",") for r in (path / "stop_times.txt").read_text().splitlines()[1:]]
    route_of = {r.split(",")[2]: r.split(",")[0] for r in (path / "trips.txt").read_text().splitlines()[1:]}
    for _ in range(QUERIES):
        if rng.random() < 0.75 and st:
            trip, _arr, dep, o, *_ = st[int(rng.integers(len(st)))]
            h, m, sec = (int(x) for x in dep.split(":"))
            t0 = midnight + timedelta(seconds=h * 3600 + m * 60 + sec - int(rng.integers(0, 16)) * 60)
            other = [r[3] for r in st if route_of[r[0]] != route_of[trip] and r[3] != o] or [o]
            o, d = f"x:{o}", f"x:{other[int(rng.integers(len(other)))]}"
            if o == d:
                continue
        else:
            i, j = rng.choice(len(stops), 2, replace=False)
            o, d = stops[i], stops[j]
            t0 = midnight + timedelta(minutes=int(rng.integers(5 * 60, 24 * 60)))
        yield dict(origin=o, destination=d, t0=t0, max_transfers=int(rng.integers(0, 4)),
                   min_change_s=int(rng.choice([0, 0, 120])), walk_speed_m_s=float(rng.choice([1.3, 0.8])),
                   max_walk_m=float(rng.choice([1000.0, 250.0])))


def _check_rules(it: dict, rules: TransferRules, change: dict, fp: dict, q: dict) -> int:
    """Every change between two rides honours the most specific rule for the two trips (or, with none, the
    stop's change time / the footpath); returns the number of changes a route/trip rule decided."""
    legs = it["legs"]
    rides = [k for k, leg in enumerate(legs) if leg["mode"] != "WALK"]
    decided = 0
    for x, y in zip(rides, rides[1:]):
        a, b = legs[x], legs[y]
        if b.get("in_seat"):  # stays aboard: no change
            continue
        qs, us = a["to"]["stop_id"], b["from"]["stop_id"]
        gap = _epoch(b["departure"]) - _epoch(a["arrival"])
        walk = 0 if qs == us else math.ceil(_haversine(a["to"]["lat"], a["to"]["lon"], b["from"]["lat"],
                                                      b["from"]["lon"]) / q["walk_speed_m_s"])
        need = rules.time(qs, us, a["trip_id"], a["route_id"], b["trip_id"], b["route_id"], q["min_change_s"], walk)
        if need == "generic":
            if qs == us:
                c = change.get(qs, 0)
                assert c is not None, f"changing at {qs} is forbidden"
                need = max(c, q["min_change_s"])
            else:
                w = [s for t, s in fp.get(qs, []) if t == us]
                assert w, f"no footpath {qs} -> {us}"
                need = max(min(w), q["min_change_s"])
        else:
            decided += 1
            assert need is not None, f"a rule forbids {a['trip_id']} -> {b['trip_id']} at {qs} -> {us}"
            if qs != us:
                assert any(t == us for t, _ in fp.get(qs, [])), f"no footpath {qs} -> {us}"
        assert gap >= need, f"{a['trip_id']} -> {b['trip_id']} at {qs} -> {us} in {gap}s < {need}s"
    return decided


@pytest.mark.parametrize("seed", range(N_NETWORKS))
def test_router_equals_rules_oracle_on_random_networks(tmp_path, seed):
    _compare_network(*_case(tmp_path, seed), seed)


@pytest.mark.parametrize("seed", range(N_NETWORKS // 2))
def test_rules_and_linked_trips_on_random_networks(tmp_path, seed):
    _compare_network(*_case(tmp_path, seed, links=True), seed)


def _compare_network(rng, path, tt, seed):
    rules = TransferRules.from_gtfs([("x", path)])
    nets: dict = {}
    for q in _queries(rng, tt, path):
        req = PlanRequest(q["origin"], q["destination"], depart_at=q["t0"], max_transfers=q["max_transfers"],
                          min_change_s=q["min_change_s"], walk_speed_m_s=q["walk_speed_m_s"],
                          max_walk_m=q["max_walk_m"])
        fp, change = walking_graph(tt, q["walk_speed_m_s"], q["max_walk_m"])
        day = q["t0"].date()
        net = nets.setdefault(day, RefNetwork.from_gtfs([("x", path)], day))
        want = earliest_arrivals_rules(net, q["origin"], q["destination"], int(q["t0"].timestamp()),
                                       q["max_transfers"] + 1, fp, change, rules, min_change_s=q["min_change_s"],
                                       horizon_s=3 * 86400, walk_speed_m_s=q["walk_speed_m_s"])
        # the router counts a walk-only journey in every round; the rules oracle leaves it out
        walk = earliest_arrivals(net, q["origin"], q["destination"], int(q["t0"].timestamp()), 1, fp, change,
                                 min_change_s=q["min_change_s"], horizon_s=3 * 86400)[0]
        want = [w if walk is None else walk if w is None else min(w, walk) for w in want]
        got = earliest_arrival(tt, req)
        assert got == want, (seed, q)
        free = {s: 0 for s in change}

        def honoured(its):
            for it in its:
                rides = [leg for leg in it["legs"] if leg["mode"] != "WALK"]
                if not rides:
                    continue
                # trips, times, stops and walks against the GTFS text; the changes against the rules
                check_feasible(it, net, fp, free, walk_speed_m_s=q["walk_speed_m_s"])
                _check_rules(it, rules, change, fp, q)
            return [int(datetime.fromisoformat(it["arrival"]).timestamp()) for it in its]

        honoured(plan(tt, req))
        if want[-1] is None or want[-1] == walk:
            continue
        # the same rules in the reversed search (arrive-by), the range search and the fare search
        deadline = datetime.fromtimestamp(want[-1], TZ)
        late = honoured(plan(tt, dataclasses.replace(req, depart_at=None, arrive_by=deadline)))
        assert late and max(late) <= want[-1], (seed, q)
        honoured(plan(tt, dataclasses.replace(req, window_s=1800)))
        fares = empty_tables(int(tt.route_ids.shape[0]), int(tt.n_stops))
        assert min(honoured(plan(tt, dataclasses.replace(req, optimize="fare"), fares=fares))) == want[-1]


def test_random_rules_decide_changes(tmp_path):
    """The random cases are not vacuous: rules naming routes or trips decide changes in planned itineraries,
    and they change earliest arrivals against the same networks without them."""
    decided = differ = 0
    for seed in range(N_NETWORKS):
        rng, path, tt = _case(tmp_path / str(seed), seed)
        rules = TransferRules.from_gtfs([("x", path)])
        plain = TransferRules([r for r in rules.rules if not any(r[2:6])], rules.parent, set())
        nets: dict = {}
        for q in _queries(rng, tt, path):
            fp, change = walking_graph(tt, q["walk_speed_m_s"], q["max_walk_m"])
            day = q["t0"].date()
            net = nets.setdefault(day, RefNetwork.from_gtfs([("x", path)], day))
            args = (net, q["origin"], q["destination"], int(q["t0"].timestamp()), q["max_transfers"] + 1, fp, change)
            kw = dict(min_change_s=q["min_change_s"], horizon_s=3 * 86400, walk_speed_m_s=q["walk_speed_m_s"])
            differ += earliest_arrivals_rules(*args, rules, **kw) != earliest_arrivals_rules(*args, plain, **kw)
            req = PlanRequest(q["origin"], q["destination"], depart_at=q["t0"], max_transfers=q["max_transfers"],
                              min_change_s=q["min_change_s"], walk_speed_m_s=q["walk_speed_m_s"],
                              max_walk_m=q["max_walk_m"])
            decided += sum(_check_rules(it, rules, change, fp, q) for it in plan(tt, req))
    assert differ >= 5 and decided >= 5, (differ, decided)
    print("queries whose arrivals the route/trip rules change:", differ, "changes they decide:", decided)
