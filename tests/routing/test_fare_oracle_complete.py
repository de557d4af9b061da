"""The fare search is complete with time-limited transfer rules, checked against an independent enumerator.

Counterexample (issue 13 item 12), a constructed fares v2 feed::

    X --A--> Y   08:00 -> 08:10  and  08:20 -> 08:30      (2.00 EUR a ride)
    Y --B--> Z   09:15 -> 09:30                            (2.00 EUR a ride)
    fare_transfer_rules: ride -> ride free within 60 minutes, departure to departure

Leaving X at 07:55, both A trips reach the only B trip and arrive at 09:30;
the 08:00 one leaves 75 minutes before B (4.00 EUR), the 08:20 one 55 minutes
(2.00 EUR). Boarding only the first reachable trip gave 4.00.

The oracle shares nothing with the kernel's search preparation: it reads the
GTFS text (``reference.RefNetwork``: calendars, stop times, time zones, every
trip of the service days around the query), enumerates *every* journey —
every boarding of every trip at or after the passenger is ready, every
alighting, every transfer sequence up to the ride limit — arriving by the
search horizon (:func:`routing.search.fare_horizon`, from the earliest
arrival of ``reference.earliest_arrivals``), prices each one (with the fare
engine's public ``FareEngine.price_legs`` on feeds with fare files; with the
plain-Python rules of the tables, ``test_fare_search_oracle.price_rides``, for
random tables) and keeps the Pareto set over (arrival, fare, rides). Only the
walking graph (footpaths, change times) is taken from the compiled timetable,
as in the other oracles.
"""

from __future__ import annotations

import shutil
import time
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fare_counterexample import COUNTEREXAMPLE
from gtfs_text import write_gtfs
from reference import RefNetwork, earliest_arrivals, walking_graph
from test_fare_search_oracle import dense_feed_tables, price_rides

from routing.compile import CompileOptions, compile_timetable
from routing.fares import UNPRICED, FareTables
from routing.feeds import FeedSource
import routing.search as search_module
from routing.search import PlanRequest, _endpoints, _nets, _prepare, fare_search_window, fare_window, plan
from ticketing.fares import FareEngine
from ticketing.fares.tables import fare_tables_for

BERLIN = ZoneInfo("Europe/Berlin")
MONTREAL = ZoneInfo("America/Toronto")
DAY = date(2025, 3, 5)
T0 = datetime(2025, 3, 5, 7, 55, tzinfo=BERLIN)
TC_ZIP = "transcollines-fares-v2/transcollines-qc-ca-fares.zip"

def write_counterexample(folder: Path) -> Path:
    """The counterexample feed (zip); the calendar runs every day of 2025."""
    return write_gtfs(folder, COUNTEREXAMPLE, timezone="Europe/Berlin")


def hhmm(it: dict) -> str:
    return " | ".join(f"{leg['departure'][11:16]} {leg['route_name']} {leg['arrival'][11:16]}"
                      for leg in it["legs"] if leg["mode"] != "WALK")


# ---------------------------------------------------------------------------------------------
# the independent oracle


def trips_of(net: RefNetwork) -> dict[int, list[tuple[int, int, int, bool, bool]]]:
    """Per trip key: its stop events ``(stop, arrival, departure, pickup ok, drop-off ok)`` in order."""
    hops: dict[int, list[int]] = {}
    for i, tr in enumerate(net.trip.tolist()):
        hops.setdefault(tr, []).append(i)
    out = {}
    for tr, idx in hops.items():
        idx.sort(key=lambda i: (int(net.dep[i]), int(net.arr[i])))
        ev = [(int(net.frm[idx[0]]), int(net.dep[idx[0]]), int(net.dep[idx[0]]), bool(net.pickup_ok[idx[0]]), False)]
        for j, i in enumerate(idx):
            nxt = idx[j + 1] if j + 1 < len(idx) else None
            dep = int(net.dep[nxt]) if nxt is not None else int(net.arr[i])
            pu = bool(net.pickup_ok[nxt]) if nxt is not None else False
            ev.append((int(net.to[i]), int(net.arr[i]), dep, pu, bool(net.dropoff_ok[i])))
        out[tr] = ev
    return out


def oracle_front(net: RefNetwork, origin: str, destination: str, t0: int, max_rides: int, tt, price,
                 slack_s: int = 1800, factor: float = 2.0, min_change_s: int = 0,
                 max_fare: int | None = None) -> set[tuple[int, int | None, int]]:
    """Pareto set over (arrival epoch, fare, rides) of every journey in the search window.

    The window (:func:`routing.search.fare_window`): EA is the earliest arrival
    from ``t0`` and ``t_eff`` the latest departure still arriving then (found by
    bisection on the reference connection scan); journeys leave the origin at or
    after ``t_start`` and arrive by ``t_max``.
    ``price(rides)`` prices rides ``(trip key, board stop, alight stop, dep, arr)`` (epoch seconds);
    ``tt`` gives only the walking graph.
    """
    footpaths, change = walking_graph(tt)

    def ea_from(t: int) -> int | None:
        ea = [a for a in earliest_arrivals(net, origin, destination, t, max_rides, footpaths, change, min_change_s,
                                           horizon_s=36 * 3600, walk_only=False) if a is not None]
        return min(ea) if ea else None

    ea = ea_from(t0)
    if ea is None:
        return set()
    lo, hi = t0, ea  # the arrival from a departure never comes earlier for a later departure
    while lo < hi:
        mid = (lo + hi + 1) // 2
        a = ea_from(mid)
        if a is not None and a <= ea:
            lo = mid
        else:
            hi = mid - 1
    t_start, t_max = fare_window(t0, lo, ea, slack_s, factor)
    idx = net.stop_index
    fp = {idx[u]: [(idx[v], w) for v, w in lst] for u, lst in footpaths.items() if u in idx}
    dest = {idx[s] for s in net.platforms(destination)}
    egress = {s: 0 for s in dest}
    for u, lst in fp.items():
        for v, w in lst:
            if v in dest:
                egress[u] = min(egress.get(u, 1 << 60), w)
    events = trips_of(net)
    at_stop: dict[int, list[tuple[int, int]]] = {}
    for tr, ev in events.items():
        for i, (s, _a, d, pu, _do) in enumerate(ev):
            if pu and t_start <= d <= t_max:
                at_stop.setdefault(s, []).append((tr, i))
    targets: list[tuple[int, int, int]] = []

    def extend(stop: int, ready: int, rides: list) -> None:
        if len(rides) == max_rides:
            return
        for tr, i in at_stop.get(stop, []):
            ev = events[tr]
            if ev[i][2] < ready:
                continue
            for j in range(i + 1, len(ev)):
                s, a, _d, _pu, do = ev[j]
                if a > t_max:
                    break
                if not do:
                    continue
                now = rides + [(tr, stop, s, ev[i][2], a)]
                if s in egress and a + egress[s] <= t_max:
                    targets.append((a + egress[s], price(now), len(now)))
                c = change.get(net.stop_ids[s], 0)
                if c is not None:
                    extend(s, a + max(c, min_change_s), now)
                for v, w in fp.get(s, []):
                    extend(v, a + max(w, min_change_s), now)

    for o in (idx[s] for s in net.platforms(origin)):
        extend(o, t_start, [])
        for v, w in fp.get(o, []):
            extend(v, t_start + w, [])
            if v in dest:
                targets.append((t0 + w, 0, 0))  # walking there (one footpath) is free
    if max_fare is not None:
        targets = [x for x in targets if x[1] <= max_fare]
    front = {x for x in targets if not any(y != x and y[0] <= x[0] and y[1] <= x[1] and y[2] <= x[2]
                                           for y in targets)}
    return {(a, None if f >= UNPRICED else f, k) for a, f, k in front}


def engine_pricer(net: RefNetwork, engine: FareEngine):
    """``price(rides)`` with the fare engine's public ``price_legs`` (API-shaped legs, UTC times)."""
    from datetime import timezone

    def price(rides: list) -> int:
        legs = []
        for tr, b, a, dep, arr in rides:
            trip_id = net.trip_keys[tr][0]
            feed = trip_id.split(":", 1)[0]
            legs.append({"mode": "BUS", "feed_id": feed, "route_id": net.trip_route[tr],
                         "from": {"stop_id": net.stop_ids[b]}, "to": {"stop_id": net.stop_ids[a]},
                         "departure": datetime.fromtimestamp(dep, timezone.utc).isoformat(),
                         "arrival": datetime.fromtimestamp(arr, timezone.utc).isoformat()})
        q = engine.price_legs(legs)
        return q.total.amount if q.total is not None else UNPRICED

    return price


def tables_pricer(net: RefNetwork, tt, ft: FareTables):
    """``price(rides)`` with the plain-Python rules of random tables (areas only: no distance needed)."""
    route_index = {r: i for i, r in enumerate(tt.route_ids.tolist())}
    stop_index = {s: i for i, s in enumerate(tt.stop_ids.tolist())}

    def price(rides: list) -> int:
        return price_rides(ft, [(route_index[net.trip_route[tr]], stop_index[net.stop_ids[b]],
                                 stop_index[net.stop_ids[a]], dep, arr, 0.0) for tr, b, a, dep, arr in rides])

    return price


def kernel_front(tt, ft: FareTables, req: PlanRequest) -> set[tuple[int, int | None, int]]:
    """(arrival epoch, fare, rides) of every itinerary of the fare search (``max_itineraries`` high: all)."""
    its = plan(tt, req, fares=ft)
    return {(int(datetime.fromisoformat(it["arrival"]).timestamp()), it["fare"]["amount"] if it["fare"] else None,
             sum(leg["mode"] != "WALK" for leg in it["legs"])) for it in its}


# ---------------------------------------------------------------------------------------------
# the counterexample


@pytest.fixture(scope="module")
def cx(tmp_path_factory):
    path = write_counterexample(tmp_path_factory.mktemp("cx") / "f")
    eng = FareEngine.from_feeds([("cx", path)])
    tt = compile_timetable([FeedSource("cx", path, "op")], CompileOptions())
    return path, eng, tt, fare_tables_for(eng, tt, at=T0)


def test_the_later_trip_within_the_allowance_is_the_cheapest(cx):
    """The 08:20 trip arrives at the same 09:30 for 2.00 EUR; the 08:00 one costs 4.00."""
    _path, _eng, tt, ft = cx
    assert ft.timed
    its = plan(tt, PlanRequest("cx:X", "cx:Z", depart_at=T0, optimize="fare"), fares=ft)
    assert [(hhmm(it), it["fare"]["amount"]) for it in its] == [("08:20 A 08:30 | 09:15 B 09:30", 200)]
    assert plan(tt, PlanRequest("cx:X", "cx:Z", depart_at=T0, max_fare=200), fares=ft)[0]["fare"]["amount"] == 200
    # the engine prices the itinerary the same
    assert _eng.price_itinerary(its[0]).total.amount == 200


def test_counterexample_matches_the_oracle(cx):
    path, eng, tt, ft = cx
    net = RefNetwork.from_gtfs([("cx", path)], DAY)
    want = oracle_front(net, "cx:X", "cx:Z", int(T0.timestamp()), 3, tt, engine_pricer(net, eng))
    assert want == {(int(datetime(2025, 3, 5, 9, 30, tzinfo=BERLIN).timestamp()), 200, 2)}
    assert kernel_front(tt, ft, PlanRequest("cx:X", "cx:Z", depart_at=T0, optimize="fare",
                                            itinerary_filter="none", max_itineraries=50)) == want


def test_after_the_last_connection_the_window_starts_next_morning(cx):
    """Leaving at 10:00, after the only B trip: the next day's 08:20 trip (2.00 EUR, 09:30). The window runs
    from the latest departure still arriving at EA, not from 10:00 (no horizon stretched over the night)."""
    path, eng, tt, ft = cx
    t0 = T0.replace(hour=10, minute=0)
    net = RefNetwork.from_gtfs([("cx", path)], DAY)
    want = oracle_front(net, "cx:X", "cx:Z", int(t0.timestamp()), 3, tt, engine_pricer(net, eng))
    assert want == {(int(datetime(2025, 3, 6, 9, 30, tzinfo=BERLIN).timestamp()), 200, 2)}
    req = PlanRequest("cx:X", "cx:Z", depart_at=t0, optimize="fare", itinerary_filter="none", max_itineraries=50)
    assert kernel_front(tt, ft, req) == want
    prep = _prepare(tt, req, t0, None)
    o, d = _endpoints(tt, req, prep)
    t = int(t0.timestamp()) - prep.ref_epoch
    t_start, t_max, ea = fare_search_window(tt, prep, _nets(tt, None, False), o, d, t, 3, ft)
    next_0820 = int(datetime(2025, 3, 6, 8, 20, tzinfo=BERLIN).timestamp()) - prep.ref_epoch
    assert ea - t_start == 1800 + 2 * 70 * 60  # D from 08:20 to 09:30: 30 min + 2 x 70 min
    assert t_max - next_0820 == 1800 + 2 * 70 * 60


def test_over_the_label_budget_the_search_falls_back_to_first_trips(cx, monkeypatch, caplog):
    """A search that would keep more labels than the budget answers with the first reachable trips (here the
    08:00 trip, 4.00 EUR) and says so in the log, instead of running without bound."""
    _path, _eng, tt, ft = cx
    monkeypatch.setattr(search_module, "FARE_BAG_BUDGET", 1)
    with caplog.at_level("WARNING", logger="routing.search"):
        its = plan(tt, PlanRequest("cx:X", "cx:Z", depart_at=T0, optimize="fare"), fares=ft)
    assert [(hhmm(it), it["fare"]["amount"]) for it in its] == [("08:00 A 08:10 | 09:15 B 09:30", 400)]
    assert "label budget exceeded" in caplog.text


# ---------------------------------------------------------------------------------------------
# random networks, random tables with time-limited rules


def random_area_tables(rng: np.random.Generator, tt) -> FareTables:
    """Random area-table fares (every transfer kind, limits of every type, counts, joins), mostly timed."""
    n_routes, n_stops = tt.route_ids.shape[0], tt.n_stops
    N, A, G = int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
    xk = rng.integers(0, 4, (G, G)).astype(np.int8)
    xk[0, 0] = int(rng.choice([1, 3]))  # at least one rule that makes a transfer cheaper
    xl = np.where(rng.random((G, G)) < 0.2, -1, rng.integers(10, 90, (G, G)) * 60).astype(np.int64)
    xl[0, 0] = int(rng.integers(10, 90)) * 60
    return FareTables(
        currency="EUR", rider_category="adult", fare_media=None,
        route_network=np.where(rng.random(n_routes) < 0.05, -1, rng.integers(0, N, n_routes)).astype(np.int32),
        network_feed=np.zeros(N, dtype=np.int32), network_kind=np.zeros(N, dtype=np.int8),
        network_group=np.full(N, -1, dtype=np.int32), stop_area=rng.integers(0, A, n_stops).astype(np.int32),
        leg_price=(rng.integers(1, 6, (N, A, A)) * 100).astype(np.int64),
        leg_group=np.where(rng.random((N, A, A)) < 0.15, -1, rng.integers(0, G, (N, A, A))).astype(np.int32),
        band_offsets=np.zeros(N + 1, dtype=np.int64), band_up_to_m=np.zeros(0), band_price=np.zeros(0, dtype=np.int64),
        join=(rng.random((N, N)) < 0.2), xfer_kind=xk, xfer_amount=(rng.integers(0, 4, (G, G)) * 50).astype(np.int64),
        xfer_limit_s=xl, xfer_limit_type=rng.integers(0, 4, (G, G)).astype(np.int8),
        xfer_count=rng.choice([-1, 1, 2], (G, G)).astype(np.int32))


N_RANDOM = 40


def _random_case(tmp_path: Path, seed: int) -> list[int]:
    rng = np.random.default_rng(9000 + seed)
    path = write_gtfs(tmp_path / "feed", dense_feed_tables(rng), timezone="Europe/Berlin")
    tt = compile_timetable([FeedSource("x", path, "op")], CompileOptions(walk_radius_m=float(rng.choice([0.0, 500.0]))))
    ft = random_area_tables(rng, tt)
    net = RefNetwork.from_gtfs([("x", path)], DAY)
    price = tables_pricer(net, tt, ft)
    stops = tt.stop_ids.tolist()
    sizes = []
    for _ in range(4):
        a, b = rng.choice(len(stops), 2, replace=False)
        t0 = datetime.combine(DAY, datetime.min.time(), tzinfo=BERLIN) + timedelta(minutes=int(rng.integers(420, 480)))
        k = int(rng.integers(1, 4))
        max_fare = None if rng.random() < 0.7 else int(rng.integers(1, 6)) * 100
        ch = int(rng.choice([0, 120]))
        req = PlanRequest(stops[a], stops[b], depart_at=t0, max_transfers=k - 1, optimize="fare", max_fare=max_fare,
                          min_change_s=ch, itinerary_filter="none", max_itineraries=1000)
        want = oracle_front(net, stops[a], stops[b], int(t0.timestamp()), k, tt, price, min_change_s=ch,
                            max_fare=max_fare)
        assert kernel_front(tt, ft, req) == want, (seed, req)
        sizes.append(len(want))
    return sizes


@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_fare_front_equals_the_all_trips_oracle_on_random_networks(tmp_path, seed):
    """Dense random networks, random timed tables: kernel Pareto set == enumeration over every trip."""
    _random_case(tmp_path, seed)


# ---------------------------------------------------------------------------------------------
# a real feed: Transcollines with a time-limited transfer rule added to its fares v2


def transcollines_with_transfers(src: Path, folder: Path) -> Path:
    """The Transcollines zip plus ``fare_transfer_rules.txt``: a second leg of any group within 90 minutes
    (departure to departure) costs nothing more (fare_transfer_type 0 with a 0.00 product)."""
    out = folder / "tc-transfers.zip"
    shutil.copy(src, out)
    with zipfile.ZipFile(src) as z:
        groups = sorted({line.split(",")[0] for line in z.read("fare_leg_rules.txt").decode("utf-8-sig").splitlines()[1:]
                         if line.strip()})
    rows = ["from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,"
            "fare_transfer_type,fare_product_id"]
    rows += [f"{a},{b},{'1' if a == b else ''},5400,1,0,PS-0" for a in groups for b in groups]
    with zipfile.ZipFile(out, "a") as z:
        z.writestr("fare_transfer_rules.txt", "\n".join(rows) + "\n")
    return out


def test_fare_front_equals_the_oracle_on_transcollines_with_a_timed_transfer_rule(shared_data, tmp_path):
    path = transcollines_with_transfers(shared_data / TC_ZIP, tmp_path)
    eng = FareEngine.from_feeds([("tc", path)])
    tt = compile_timetable([FeedSource("tc", path, "transcollines")], CompileOptions())
    day = date(2026, 3, 4)
    net = RefNetwork.from_gtfs([("tc", path)], day)
    price = engine_pricer(net, eng)
    served = [s for s in range(tt.n_stops) if tt.stop_pattern_offsets[s + 1] > tt.stop_pattern_offsets[s]]
    rng = np.random.default_rng(7)
    checked = nonempty = 0
    t_new = []
    while checked < 12:
        a, b = (served[i] for i in rng.choice(len(served), 2, replace=False))
        t0 = datetime(2026, 3, 4, 5, 0, tzinfo=MONTREAL) + timedelta(minutes=int(rng.integers(0, 14 * 60)))
        ft = fare_tables_for(eng, tt, at=t0)
        assert ft.timed
        req = PlanRequest(str(tt.stop_ids[a]), str(tt.stop_ids[b]), depart_at=t0, max_transfers=1,
                          optimize="fare", itinerary_filter="none", max_itineraries=1000)
        t1 = time.perf_counter()
        got = kernel_front(tt, ft, req)
        t_new.append(time.perf_counter() - t1)
        want = oracle_front(net, req.origin, req.destination, int(t0.timestamp()), 2, tt, price)
        assert got == want, req
        checked += 1
        nonempty += bool(want)
    assert nonempty >= 3
    print(f"transcollines fare search with a timed transfer rule: {1000 * np.median(t_new):.1f} ms median per query")
