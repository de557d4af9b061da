"""Fare-aware routing: plan latency with ``optimize=fare`` beside earliest arrival, and pricing throughput.

Usage::

    .venv/bin/python bench/fares_routing.py [--queries 300] [--seed 11] [--transcollines PATH]

For the demo city (bus, metro, coach, ferry; transfer rules, joins, 联程优惠)
and Transcollines (zone fares) when its zip is present, on the same random
queries (random served stops, random departure in the service day):

* ``earliest_arrival``: RAPTOR only (``routing.search.earliest_arrival``);
* ``plan_time``: ``plan`` with ``optimize="time"`` (RAPTOR + next departures +
  McRAPTOR on walking + itinerary assembly);
* ``plan_fare``: ``plan`` with ``optimize="fare"`` (the fare-aware McRAPTOR +
  itinerary assembly);

p50/p99/mean in milliseconds (one thread, after a warm-up), the time to
compile the fare tables, the number of queries where the fare search found a
cheaper journey than every ``optimize="time"`` itinerary, and the fare engine's
throughput re-pricing the routed itineraries (itineraries priced per second).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maas.demo import write_demo_city  # noqa: E402
from maas.demo.city import FARE_AGREEMENTS_FILE, OPERATOR_FARE_TABLES_FILE  # noqa: E402
from routing.compile import CompileOptions, compile_timetable  # noqa: E402
from routing.feeds import FeedSource  # noqa: E402
from routing.search import PlanRequest, earliest_arrival, plan  # noqa: E402
from ticketing.fares import FareEngine  # noqa: E402
from ticketing.fares.tables import fare_tables_for  # noqa: E402


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
            "mean_ms": round(float(a.mean()), 3)}


def run(name: str, tt, engine: FareEngine, day0: datetime, n: int, rng: random.Random) -> dict:
    t0 = time.perf_counter()
    tables = fare_tables_for(engine, tt, at=day0)
    compile_s = time.perf_counter() - t0
    served = [s for s in range(tt.n_stops) if tt.stop_pattern_offsets[s + 1] > tt.stop_pattern_offsets[s]]
    parent = tt.stop_parent
    queries = []
    while len(queries) < n:
        a, b = rng.sample(served, 2)
        if parent[a] == b or parent[b] == a or (parent[a] >= 0 and parent[a] == parent[b]):
            continue
        queries.append((str(tt.stop_ids[a]), str(tt.stop_ids[b]), day0 + timedelta(minutes=rng.randrange(0, 14 * 60))))
    for o, d, t in queries[:5]:  # warm-up: numba kernels and per-request caches
        plan(tt, PlanRequest(o, d, depart_at=t, optimize="fare"), fares=tables)
        plan(tt, PlanRequest(o, d, depart_at=t))
    ea, pt, pf = [], [], []
    routed: list[dict] = []
    cheaper = found = 0
    for o, d, t in queries:
        s = time.perf_counter()
        earliest_arrival(tt, PlanRequest(o, d, depart_at=t))
        ea.append((time.perf_counter() - s) * 1e3)
        s = time.perf_counter()
        its_time = plan(tt, PlanRequest(o, d, depart_at=t))
        pt.append((time.perf_counter() - s) * 1e3)
        s = time.perf_counter()
        its_fare = plan(tt, PlanRequest(o, d, depart_at=t, optimize="fare"), fares=tables)
        pf.append((time.perf_counter() - s) * 1e3)
        routed.extend(its_time)
        priced = [q.total.amount for q in (engine.price_itinerary(it) for it in its_time) if q.total is not None]
        fares = [it["fare"]["amount"] for it in its_fare if it["fare"]]
        if priced and fares:
            found += 1
            cheaper += min(fares) < min(priced)
    s = time.perf_counter()
    for it in routed:
        engine.price_itinerary(it)
    price_s = time.perf_counter() - s
    return {"name": name, "queries": n, "fare_tables_compile_ms": round(compile_s * 1e3, 2),
            "fare_tables": {"networks": tables.n_networks, "area_sets": int(tables.leg_price.shape[1]),
                            "leg_groups": tables.n_groups, "medium": tables.fare_media, "notes": list(tables.notes)},
            "earliest_arrival": _stats(ea), "plan_time": _stats(pt), "plan_fare": _stats(pf),
            "queries_with_priced_journeys": found, "fare_search_found_cheaper": cheaper,
            "engine_itineraries_priced_per_second": round(len(routed) / price_s, 1) if price_s > 0 else None,
            "engine_itineraries_priced": len(routed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--transcollines", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/transcollines-fares-v2/"
                                                              "transcollines-qc-ca-fares.zip")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out: dict = {"seed": args.seed, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        feeds = write_demo_city(Path(tmp), date(2026, 11, 21))
        engine = FareEngine.from_feeds([(f.feed_id, f.path) for f in feeds],
                                       agreements=Path(tmp) / FARE_AGREEMENTS_FILE,
                                       operator_tables=Path(tmp) / OPERATOR_FARE_TABLES_FILE,
                                       operators={f.feed_id: f.operator_id for f in feeds})
        tt = compile_timetable([FeedSource(f.feed_id, f.path, f.operator_id) for f in feeds], CompileOptions())
        out["results"].append(run("demo-city", tt, engine, datetime(2026, 11, 23, 6, 0,
                                                                    tzinfo=timezone(timedelta(hours=8))),
                                  args.queries, rng))
    if args.transcollines.exists():
        engine = FareEngine.from_feeds([("tc", args.transcollines)])
        tt = compile_timetable([FeedSource("tc", args.transcollines, "transcollines")], CompileOptions())
        out["results"].append(run("transcollines", tt, engine, datetime(2026, 3, 4, 5, 0,
                                                                        tzinfo=timezone(timedelta(hours=-5))),
                                  args.queries, rng))
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
