"""Where one routing query's time goes: set-up vs kernel vs itinerary building (issue 14, part 1).

Usage::

    .venv/bin/python bench/routing_breakdown.py [--feed ../shared/data/nyc-mta/subway.zip ...]
        [--date 2026-10-07] [--queries 500] [--seed 1] [--max-rides 3] [--range-queries 100]
        [--footpaths footpaths.csv] [--json]

It runs the public entry points (``earliest_arrival``, ``range_profile`` and
``plan``) on seeded random queries, as ``maas bench routing`` does, with
timers around the stages they call (each wrapped in the ``routing.search``
module, so the code measured is the code that serves requests):

- ``prepare``: per-date filters, walking tables, the day shift (cached per date);
- ``endpoints``: resolving origin and destination to stops;
- ``state``: the per-thread label arrays (reset or allocation);
- ``kernel``: the numba RAPTOR kernel itself (``_raptor``, ``_raptor_range``,
  ``_departures_in_window``);
- ``kernel_args``: the Python inside ``_run`` around the kernel call (argument
  arrays, egress marking);
- ``reconstruct`` / ``itineraries``: journey reconstruction and itinerary building;
- ``other``: what is left of the query's time (validation, result lists).

CPU time of this thread (``time.thread_time_ns``) is reported beside wall
time: this machine is shared, and CPU time is what a query costs. Prints a
table (or one JSON object with ``--json``): per entry point, the median and
p99 of the total and each stage's median share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import routing.kernels as K  # noqa: E402
import routing.search as S  # noqa: E402
from routing.bench import feed_sources, random_queries  # noqa: E402
from routing.cache import load_or_compile  # noqa: E402
from routing.compile import CompileOptions  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class Stages:
    """Accumulates wall and CPU nanoseconds per stage; nested stages are subtracted from their parent."""

    def __init__(self) -> None:
        self.wall: dict[str, int] = defaultdict(int)
        self.cpu: dict[str, int] = defaultdict(int)
        self._stack: list[list] = []

    def wrap(self, owner, name: str, stage: str) -> None:
        fn = getattr(owner, name)

        def timed(*a, **kw):
            frame = [stage, 0, 0]  # stage, child wall, child cpu
            self._stack.append(frame)
            w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            try:
                return fn(*a, **kw)
            finally:
                dw, dc = time.perf_counter_ns() - w0, time.thread_time_ns() - c0
                self._stack.pop()
                self.wall[stage] += dw - frame[1]
                self.cpu[stage] += dc - frame[2]
                if self._stack:
                    self._stack[-1][1] += dw
                    self._stack[-1][2] += dc

        setattr(owner, name, timed)

    def take(self) -> tuple[dict[str, int], dict[str, int]]:
        out = dict(self.wall), dict(self.cpu)
        self.wall.clear()
        self.cpu.clear()
        return out


def _install(stages: Stages) -> None:
    stages.wrap(S, "_prepare", "prepare")
    stages.wrap(S, "_endpoints", "endpoints")
    stages.wrap(S, "_state", "state")
    stages.wrap(S, "_run", "kernel_args")
    stages.wrap(S, "range_profile_raw", "kernel_args")
    stages.wrap(S, "_reconstruct", "reconstruct")
    stages.wrap(S, "mc_search", "mc_search")
    for k in ("_raptor", "_raptor_range", "_departures_in_window"):
        stages.wrap(K, k, "kernel")
    import routing.itinerary as I

    stages.wrap(I, "build_itineraries", "itineraries")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def measure(fn, reqs, stages: Stages) -> dict:
    """Run ``fn`` on every request; per-query totals and per-stage CPU/wall (ns)."""
    tot_w, tot_c = [], []
    per_stage_c: dict[str, list[int]] = defaultdict(list)
    per_stage_w: dict[str, list[int]] = defaultdict(list)
    for req in reqs:
        stages.take()
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        fn(req)
        w, c = time.perf_counter_ns() - w0, time.thread_time_ns() - c0
        sw, sc = stages.take()
        sw["other"] = w - sum(sw.values())
        sc["other"] = c - sum(sc.values())
        tot_w.append(w)
        tot_c.append(c)
        for k in set(sw) | set(per_stage_w):
            per_stage_w[k].append(sw.get(k, 0))
            per_stage_c[k].append(sc.get(k, 0))
    n = len(reqs)
    sum_c = sum(tot_c) or 1
    return {
        "queries": n,
        "wall_p50_ms": _pct(tot_w, 50) / 1e6,
        "wall_p99_ms": _pct(tot_w, 99) / 1e6,
        "cpu_p50_ms": _pct(tot_c, 50) / 1e6,
        "cpu_p99_ms": _pct(tot_c, 99) / 1e6,
        "stages": {
            k: {
                "cpu_mean_ms": round(sum(v) / n / 1e6, 4),
                "cpu_p50_ms": round(statistics.median(v) / 1e6, 4),
                "cpu_share": round(sum(v) / sum_c, 3),
                "wall_p50_ms": round(statistics.median(per_stage_w[k]) / 1e6, 4),
            }
            for k, v in sorted(per_stage_c.items(), key=lambda kv: -sum(kv[1]))
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feed", action="append", type=Path)
    ap.add_argument("--date", type=date.fromisoformat, default=date(2026, 10, 7))
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--range-queries", type=int, default=100)
    ap.add_argument("--plan-queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-rides", type=int, default=3)
    ap.add_argument("--window-s", type=int, default=3600)
    ap.add_argument("--footpaths", type=Path)
    ap.add_argument("--cache-dir", type=Path, default=Path(".maas/timetables"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    feeds = a.feed or [DATA / "nyc-mta" / "subway.zip"]
    tt, _ = load_or_compile(feed_sources(feeds), a.cache_dir, CompileOptions(footpaths_file=a.footpaths))
    qs = random_queries(tt, a.date, a.queries, a.seed)

    def req(o, d, t, **kw):
        return S.PlanRequest(o, d, depart_at=t, max_transfers=a.max_rides - 1, **kw)

    for o, d, t in qs[:5]:  # JIT / cache load, per-date filters
        S.earliest_arrival(tt, req(o, d, t))
        S.range_profile(tt, req(o, d, t, window_s=a.window_s))
        S.plan(tt, req(o, d, t))
    stages = Stages()
    _install(stages)
    out = {
        "feeds": [f.name for f in feeds],
        "date": a.date.isoformat(),
        "stops": tt.n_stops,
        "patterns": tt.n_patterns,
        "max_rides": a.max_rides,
        "earliest_arrival": measure(lambda r: S.earliest_arrival(tt, r), [req(*q) for q in qs], stages),
        "range_profile": measure(lambda r: S.range_profile(tt, r),
                                 [req(*q, window_s=a.window_s) for q in qs[:a.range_queries]], stages),
        "plan": measure(lambda r: S.plan(tt, r), [req(*q) for q in qs[:a.plan_queries]], stages),
    }
    try:
        import os

        out["load_avg"] = os.getloadavg()
    except OSError:
        pass
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    for entry in ("earliest_arrival", "range_profile", "plan"):
        m = out[entry]
        print(f"{entry}: {m['queries']} queries, CPU p50 {m['cpu_p50_ms']:.3f} ms p99 {m['cpu_p99_ms']:.3f} ms; "
              f"wall p50 {m['wall_p50_ms']:.3f} ms p99 {m['wall_p99_ms']:.3f} ms")
        for k, v in m["stages"].items():
            print(f"  {k:<12} CPU mean {v['cpu_mean_ms']:8.4f} ms  p50 {v['cpu_p50_ms']:8.4f} ms  "
                  f"share {100 * v['cpu_share']:5.1f} %")
    print(f"load average {out.get('load_avg')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
