"""RAPTOR against the naive oracle on random small networks (50 networks x 5 queries).

* forward earliest arrival per number of rides == the oracle's (250 queries);
* every itinerary ``plan`` returns is feasible (``check_feasible``);
* arrive-by: every itinerary is feasible and arrives in time, and leaving one
  second later with no more rides does not (oracle); walk-only journeys are
  compared with walk-only, ride journeys with ride journeys (they differ in
  walking, which the oracle does not count);
* range RAPTOR: for every departure in the window the best listed journey
  leaving no earlier is what the oracle finds;
* McRAPTOR: its (arrival, walking metres, rides) front == a brute-force
  front (bags in a connection scan), journey for journey.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from gtfs_text import write_gtfs
from reference import (RefNetwork, check_feasible, earliest_arrivals, pareto_front, random_feed_tables, walking_graph,
                       walking_graph_m)

from routing.compile import CompileOptions, compile_timetable
from routing.feeds import FeedSource
from routing.search import PlanRequest, earliest_arrival, plan

TZ = ZoneInfo("Europe/Berlin")
N_NETWORKS = 50
QUERIES_PER_NETWORK = 5


def _case(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = write_gtfs(tmp_path / "feed", random_feed_tables(rng), timezone="Europe/Berlin")
    opts = CompileOptions(walk_radius_m=float(rng.choice([0.0, 300.0, 700.0])))
    tt = compile_timetable([FeedSource("x", path, "op")], opts)
    day = date(2025, 3, 5) + timedelta(days=int(rng.integers(0, 3)))  # includes calendar exceptions
    return rng, path, tt, day


def _queries(rng, tt, day):
    stops = tt.stop_ids.tolist()
    for _ in range(QUERIES_PER_NETWORK):
        o, d = rng.choice(len(stops), 2, replace=False)
        t0 = datetime.combine(day, datetime.min.time(), tzinfo=TZ) + timedelta(seconds=int(rng.integers(5, 27)) * 3600)
        yield dict(origin=stops[o], destination=stops[d], t0=t0, max_transfers=int(rng.integers(0, 4)),
                   min_change_s=int(rng.choice([0, 0, 120])), walk_speed_m_s=float(rng.choice([1.3, 0.8])),
                   max_walk_m=float(rng.choice([1000.0, 250.0])))


def _net(nets: dict, path, t0: datetime) -> RefNetwork:
    # the search uses the service days before / of / after the local departure date
    day = t0.date()
    if day not in nets:
        nets[day] = RefNetwork.from_gtfs([("x", path)], day)
    return nets[day]


@pytest.mark.parametrize("seed", range(N_NETWORKS))
def test_earliest_arrival_matches_oracle_on_random_network(tmp_path, seed):
    rng, path, tt, day = _case(tmp_path, seed)
    nets: dict = {}
    for q in _queries(rng, tt, day):
        req = PlanRequest(q["origin"], q["destination"], depart_at=q["t0"], max_transfers=q["max_transfers"],
                          min_change_s=q["min_change_s"], walk_speed_m_s=q["walk_speed_m_s"],
                          max_walk_m=q["max_walk_m"])
        got = earliest_arrival(tt, req)
        fp, change = walking_graph(tt, q["walk_speed_m_s"], q["max_walk_m"])
        net = _net(nets, path, q["t0"])
        want = earliest_arrivals(net, q["origin"], q["destination"], int(q["t0"].timestamp()),
                                 q["max_transfers"] + 1, fp, change, min_change_s=q["min_change_s"],
                                 horizon_s=3 * 86400)
        assert got == want, (seed, req)
        its = plan(tt, req)
        assert bool(its) == (want[-1] is not None)
        for it in its:
            check_feasible(it, net, fp, change, walk_speed_m_s=q["walk_speed_m_s"], min_change_s=q["min_change_s"])
            assert it["transfers"] <= q["max_transfers"]
        if its:  # the fastest itinerary arrives when the oracle says
            assert min(int(datetime.fromisoformat(it["arrival"]).timestamp()) for it in its) == want[-1]


@pytest.mark.parametrize("seed", range(0, N_NETWORKS, 2))
def test_arrive_by_is_latest_departure_on_random_network(tmp_path, seed):
    rng, path, tt, day = _case(tmp_path, seed)
    nets: dict = {}
    for q in _queries(rng, tt, day):
        deadline = q["t0"] + timedelta(hours=2)
        req = PlanRequest(q["origin"], q["destination"], arrive_by=deadline, max_transfers=q["max_transfers"],
                          min_change_s=q["min_change_s"], walk_speed_m_s=q["walk_speed_m_s"],
                          max_walk_m=q["max_walk_m"])
        its = plan(tt, req)
        fp, change = walking_graph(tt, q["walk_speed_m_s"], q["max_walk_m"])
        # a journey leaving at t0 or later that arrives in time exists => arrive-by must find one
        possible = earliest_arrivals(_net(nets, path, q["t0"]), q["origin"], q["destination"],
                                     int(q["t0"].timestamp()), q["max_transfers"] + 1, fp, change,
                                     min_change_s=q["min_change_s"], horizon_s=3 * 86400)
        if possible[-1] is not None and possible[-1] <= int(deadline.timestamp()):
            assert its, (seed, req, "the oracle arrives in time, arrive-by found nothing")
        for it in its:
            dep = datetime.fromisoformat(it["departure"])
            assert datetime.fromisoformat(it["arrival"]) <= deadline
            walking_only = all(lg["mode"] == "WALK" for lg in it["legs"])
            rides = 0 if walking_only else it["transfers"] + 1
            net = _net(nets, path, dep)
            check_feasible(it, net, fp, change, walk_speed_m_s=q["walk_speed_m_s"], min_change_s=q["min_change_s"])
            later = earliest_arrivals(net, q["origin"], q["destination"], int(dep.timestamp()) + 1, rides, fp,
                                      change, min_change_s=q["min_change_s"], horizon_s=2 * 86400,
                                      walk_only=walking_only)
            assert later[-1] is None or later[-1] > int(deadline.timestamp()), (seed, req, it["id"])


@pytest.mark.parametrize("seed", range(1, N_NETWORKS, 2))
def test_range_profile_matches_oracle_on_random_network(tmp_path, seed):
    """Every departure in the window: best arrival per rides == best profile entry leaving no earlier."""
    from routing.search import range_profile

    rng, path, tt, day = _case(tmp_path, seed)
    nets: dict = {}
    checked_in_window = reachable = 0
    offsets = np.random.default_rng(10_000 + seed)  # its own stream: the queries stay those of the other tests
    for q in _queries(rng, tt, day):
        window = 3 * 3600
        kw = dict(max_transfers=q["max_transfers"], min_change_s=q["min_change_s"],
                  walk_speed_m_s=q["walk_speed_m_s"], max_walk_m=q["max_walk_m"])
        # random networks are sparse: start the window up to 1.5 h before the first journey, if any, so that
        # the window holds a departure (and sometimes several); with none, the window starts at t0
        first = [it for it in plan(tt, PlanRequest(q["origin"], q["destination"], depart_at=q["t0"], **kw))
                 if any(lg["mode"] != "WALK" for lg in it["legs"])]  # the profile holds journeys that ride
        start = q["t0"]
        if first:
            dep = min(datetime.fromisoformat(it["departure"]) for it in first)
            start = max(q["t0"], dep - timedelta(seconds=int(offsets.integers(0, window // 2))))
        req = PlanRequest(q["origin"], q["destination"], depart_at=start, window_s=window, **kw)
        prof = [(int(d.timestamp()), int(a.timestamp()), k) for d, a, k in range_profile(tt, req)]
        fp, change = walking_graph(tt, q["walk_speed_m_s"], q["max_walk_m"])
        net = _net(nets, path, start)
        t_lo = int(start.timestamp())
        probes = sorted({t_lo, t_lo + window // 2} | {d for d, _, _ in prof} | {d + 1 for d, _, _ in prof})
        for t in probes:
            if t > t_lo + window:
                continue
            want = earliest_arrivals(net, q["origin"], q["destination"], t, q["max_transfers"] + 1, fp, change,
                                     min_change_s=q["min_change_s"], horizon_s=3 * 86400, walk_only=False)
            for k in range(1, q["max_transfers"] + 2):
                best = min((a for d, a, kk in prof if d >= t and kk <= k), default=None)
                if best is not None:
                    assert want[k] is not None and want[k] <= best, (seed, req, t, k)
                if want[k] is not None and (best is None or want[k] < best):
                    # the profile misses it: only allowed when the journey leaves after the window
                    after = earliest_arrivals(net, q["origin"], q["destination"], t_lo + window + 1, k, fp, change,
                                              min_change_s=q["min_change_s"], horizon_s=3 * 86400, walk_only=False)
                    assert after[k] == want[k], (seed, req, t, k, want[k], best)
                else:
                    checked_in_window += want[k] is not None
                reachable += want[k] is not None
    # every window starts before a journey's departure: if the oracle finds any, some must be compared in-window
    assert checked_in_window > 0 or reachable == 0, "no journey inside the window: the comparison is vacuous"


@pytest.mark.parametrize("seed", range(0, N_NETWORKS, 3))
def test_mcraptor_front_agrees_with_raptor_on_random_network(tmp_path, seed):
    """McRAPTOR's best arrival per number of rides equals RAPTOR's; its journeys are Pareto-optimal."""
    from routing.search import _endpoints, _nets, _prepare, mc_search

    rng, path, tt, day = _case(tmp_path, seed)
    nets: dict = {}
    for q in _queries(rng, tt, day):
        req = PlanRequest(q["origin"], q["destination"], depart_at=q["t0"], max_transfers=q["max_transfers"],
                          min_change_s=q["min_change_s"], walk_speed_m_s=q["walk_speed_m_s"],
                          max_walk_m=q["max_walk_m"])
        prep = _prepare(tt, req, q["t0"], None)
        o, d = _endpoints(tt, req, prep)
        t = int(q["t0"].timestamp()) - prep.ref_epoch
        js = mc_search(tt, prep, _nets(tt, None, False), o, d, t, q["max_transfers"] + 1)
        fp, change = walking_graph(tt, q["walk_speed_m_s"], q["max_walk_m"])
        want = earliest_arrivals(_net(nets, path, q["t0"]), q["origin"], q["destination"], int(q["t0"].timestamp()),
                                 q["max_transfers"] + 1, fp, change, min_change_s=q["min_change_s"],
                                 horizon_s=3 * 86400, walk_only=False)
        from routing.itinerary import _itinerary
        from routing.search import SearchResult

        res = SearchResult(js, prep, o, d)
        its = [_itinerary(tt, res, j) for j in js]
        for k in range(1, q["max_transfers"] + 2):
            best = min((it["_arr"] + prep.ref_epoch for it in its if it["transfers"] + 1 <= k), default=None)
            assert best == want[k], (seed, req, k)
        net = _net(nets, path, q["t0"])
        keys = [(it["_arr"], it["transfers"], it["walk_m"]) for it in its]
        for it in its:
            check_feasible(it, net, fp, change, walk_speed_m_s=q["walk_speed_m_s"], min_change_s=q["min_change_s"])
        for a in keys:  # no journey dominates another
            assert not any(b != a and b[0] <= a[0] and b[1] <= a[1] and b[2] <= a[2] for b in keys)


@pytest.mark.parametrize("seed", range(N_NETWORKS))
def test_mcraptor_front_equals_oracle_front_on_random_network(tmp_path, seed):
    """McRAPTOR's (arrival, walking metres, rides) front == the brute-force front, journey for journey."""
    from routing.search import _endpoints, _nets, _prepare, mc_search

    rng, path, tt, day = _case(tmp_path, seed)
    nets: dict = {}
    for q in _queries(rng, tt, day):
        req = PlanRequest(q["origin"], q["destination"], depart_at=q["t0"], max_transfers=q["max_transfers"],
                          min_change_s=q["min_change_s"], walk_speed_m_s=q["walk_speed_m_s"],
                          max_walk_m=q["max_walk_m"])
        prep = _prepare(tt, req, q["t0"], None)
        o, d = _endpoints(tt, req, prep)
        t = int(q["t0"].timestamp()) - prep.ref_epoch
        from routing.search import _derived, journey_walk_m

        js = mc_search(tt, prep, _nets(tt, None, False), o, d, t, q["max_transfers"] + 1)
        net = _derived(tt).fwd
        got = set()
        for j in js:
            p, c, slot, _b, a = j.rides[-1]
            arr = int(net.pattern_arr[int(net.pattern_time_offsets[p]) + a * int(net.pattern_n_trips[p]) + c])
            got.add((arr + int(prep.pattern_shift[p, slot]) + j.egress[1] + prep.ref_epoch,
                     journey_walk_m(tt, prep, j), len(j.rides)))
        want = pareto_front(_net(nets, path, q["t0"]), q["origin"], q["destination"], int(q["t0"].timestamp()),
                            q["max_transfers"] + 1, walking_graph_m(tt, q["walk_speed_m_s"], q["max_walk_m"]),
                            walking_graph(tt, q["walk_speed_m_s"], q["max_walk_m"])[1],
                            min_change_s=q["min_change_s"], horizon_s=3 * 86400)
        assert got == want, (seed, req)
