"""Routing benchmark: random stop-to-stop queries on real feeds (``maas bench routing``).

``run_benchmark`` compiles (or loads from the cache) the feeds, draws seeded
random queries between stops that have service on the date (departures
uniformly 06:00-22:00 local time of the first feed), warms the numba kernels
up, then times:

* ``p50_ms / p90_ms / p99_ms`` — earliest-arrival search per query (request
  validation, request preparation, RAPTOR over at most ``max_rides`` rides; no
  itinerary assembly), wall-clock, one thread;
* ``range_p50_ms`` — range RAPTOR over a 1 h departure window (all
  Pareto-optimal departure/arrival/rides), on up to 200 of the queries;
* ``plan_p50_ms`` — full :func:`routing.search.plan` (several itineraries with
  geometry) on up to 100 of the queries.

Feed ids are the file stems (``subway.zip`` -> ``subway``), operator id = feed id.
"""

from __future__ import annotations

import json
import resource
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from routing.cache import load_or_compile
from routing.compile import CompileOptions
from routing.feeds import FeedSource
from routing.search import PlanRequest, earliest_arrival, plan, range_profile
from routing.timetable import Timetable


def feed_sources(feeds: list[Path]) -> list[FeedSource]:
    """One :class:`FeedSource` per path; id = file stem (deduplicated)."""
    out: list[FeedSource] = []
    seen: set[str] = set()
    for p in feeds:
        p = Path(p)
        fid = p.stem if p.suffix == ".zip" else p.name
        base, i = fid, 2
        while fid in seen:
            fid, i = f"{base}_{i}", i + 1
        seen.add(fid)
        out.append(FeedSource(fid, p, fid))
    return out


def served_stops(tt: Timetable, d: date) -> np.ndarray:
    """Stop indices where at least one trip running on date ``d`` stops (pickup or drop-off)."""
    day = tt.day_index(d)
    runs = tt.trips_running(day)
    offs = np.asarray(tt.pattern_trip_offsets, dtype=np.int64)
    cs = np.concatenate([[0], np.cumsum(runs.astype(np.int64))])
    pattern_runs = (cs[offs[1:]] - cs[offs[:-1]]) > 0
    stops = np.asarray(tt.pattern_stops)[np.repeat(pattern_runs, np.diff(tt.pattern_stop_offsets))]
    return np.unique(stops)


def random_queries(tt: Timetable, d: date, n: int, seed: int) -> list[tuple[str, str, datetime]]:
    """``n`` seeded (origin stop id, destination stop id, departure) with service on ``d``."""
    rng = np.random.default_rng(seed)
    stops = served_stops(tt, d)
    tz = ZoneInfo(str(tt.feed_timezones[0]))
    midnight = datetime.combine(d, datetime.min.time(), tzinfo=tz)
    out = []
    for _ in range(n):
        o, dst = rng.choice(stops, 2, replace=False)
        t = midnight + timedelta(seconds=int(rng.integers(6 * 3600, 22 * 3600)))
        out.append((str(tt.stop_ids[o]), str(tt.stop_ids[dst]), t))
    return out


def read_queries(path: Path, default_tz: str) -> list[tuple[str, str, datetime]]:
    """``{"from", "to", "depart"}`` JSON lines; a naive ``depart`` is read in ``default_tz``."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        q = json.loads(line)
        t = datetime.fromisoformat(q["depart"])
        if t.tzinfo is None:
            t = t.replace(tzinfo=ZoneInfo(default_tz))
        out.append((q["from"], q["to"], t))
    return out


def _pct(ms: list[float], q: float) -> float | None:
    return round(float(np.percentile(ms, q)), 3) if ms else None


def run_benchmark(
    feeds: list[Path],
    date: date,
    queries: int = 1000,
    seed: int = 1,
    queries_file: Path | None = None,
    footpaths_file: Path | None = None,
    max_rides: int | None = None,
    cache_dir: Path = Path(".maas/timetables"),
    range_window_s: int = 3600,
    range_queries: int = 200,
    plan_queries: int = 100,
) -> dict:
    """Benchmark the router on ``feeds`` (see the module docstring). Returns a JSON-able dict.

    Keys: ``queries, compile_s, load_s, p50_ms, p90_ms, p99_ms, range_p50_ms,
    peak_rss_mb`` plus ``range_p90_ms, cpu_p50_ms, cpu_p90_ms, cpu_p99_ms,
    range_cpu_p50_ms`` (the same timings in this thread's CPU time: what the
    search costs when the machine is shared), ``plan_p50_ms, found, max_rides,
    stops, patterns, trips, stop_times, footpaths, warmup_s, cached``.
    """
    sources = feed_sources(feeds)
    options = CompileOptions(footpaths_file=Path(footpaths_file) if footpaths_file else None)
    t0 = time.perf_counter()
    tt, cached = load_or_compile(sources, Path(cache_dir), options)
    first_s = time.perf_counter() - t0
    if cached:
        load_s = first_s
        compile_s = tt.meta.get("compile_s")
    else:
        compile_s = first_s
        t0 = time.perf_counter()
        tt, _ = load_or_compile(sources, Path(cache_dir), options)  # what a worker does at start: map the cache
        load_s = time.perf_counter() - t0
    rides = int(max_rides) if max_rides else 5
    if queries_file:
        qs = read_queries(Path(queries_file), str(tt.feed_timezones[0]))
    else:
        qs = random_queries(tt, date, queries, seed)

    def request(o: str, d: str, t: datetime, **kw) -> PlanRequest:
        return PlanRequest(o, d, depart_at=t, max_transfers=rides - 1, **kw)

    # warm-up: numba cache load / JIT, per-date filters, reverse-free derived data
    t0 = time.perf_counter()
    for o, d, t in qs[:5]:
        earliest_arrival(tt, request(o, d, t))
        range_profile(tt, request(o, d, t, window_s=range_window_s))
        plan(tt, request(o, d, t))
    warmup_s = time.perf_counter() - t0

    # wall-clock (the contract) and this thread's CPU time (robust on a shared, busy machine)
    ms: list[float] = []
    cpu_ms: list[float] = []
    found = 0
    for o, d, t in qs:
        req = request(o, d, t)
        c1 = time.thread_time()
        t1 = time.perf_counter()
        res = earliest_arrival(tt, req)
        ms.append((time.perf_counter() - t1) * 1000)
        cpu_ms.append((time.thread_time() - c1) * 1000)
        found += res[-1] is not None
    range_ms: list[float] = []
    range_cpu_ms: list[float] = []
    for o, d, t in qs[:range_queries]:
        req = request(o, d, t, window_s=range_window_s)
        c1 = time.thread_time()
        t1 = time.perf_counter()
        range_profile(tt, req)
        range_ms.append((time.perf_counter() - t1) * 1000)
        range_cpu_ms.append((time.thread_time() - c1) * 1000)
    plan_ms: list[float] = []
    for o, d, t in qs[:plan_queries]:
        req = request(o, d, t)
        t1 = time.perf_counter()
        plan(tt, req)
        plan_ms.append((time.perf_counter() - t1) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "queries": len(qs),
        "compile_s": round(compile_s, 3) if compile_s is not None else None,
        "load_s": round(load_s, 3),
        "p50_ms": _pct(ms, 50),
        "p90_ms": _pct(ms, 90),
        "p99_ms": _pct(ms, 99),
        "range_p50_ms": _pct(range_ms, 50),
        "range_p90_ms": _pct(range_ms, 90),
        "cpu_p50_ms": _pct(cpu_ms, 50),
        "cpu_p90_ms": _pct(cpu_ms, 90),
        "cpu_p99_ms": _pct(cpu_ms, 99),
        "range_cpu_p50_ms": _pct(range_cpu_ms, 50),
        "plan_p50_ms": _pct(plan_ms, 50),
        "peak_rss_mb": round(rss, 1),
        "found": found,
        "max_rides": rides,
        "range_window_s": range_window_s,
        "stops": tt.n_stops,
        "patterns": tt.n_patterns,
        "trips": tt.n_trips,
        "stop_times": int(tt.pattern_arr.shape[0]),
        "footpaths": int(tt.footpath_to.shape[0]),
        "warmup_s": round(warmup_s, 3),
        "cached": bool(cached),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m routing.bench --feed PATH ... --date YYYY-MM-DD`` (the CLI's logic, for developers)."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feed", action="append", required=True, type=Path)
    ap.add_argument("--date", required=True, type=date.fromisoformat)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queries-file", type=Path)
    ap.add_argument("--footpaths", type=Path)
    ap.add_argument("--max-rides", type=int)
    ap.add_argument("--cache-dir", type=Path, default=Path(".maas/timetables"))
    a = ap.parse_args(argv)
    out = run_benchmark(a.feed, a.date, a.queries, a.seed, a.queries_file, a.footpaths, a.max_rides, a.cache_dir)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
