"""Verify ``maas plan --batch`` against the reference search on NYC (issue 3).

Prints figures (not a test): for random stop-to-stop queries on Wednesday
2026-10-07, 06:00-22:00 New York time, every itinerary the real CLI returns is
checked with ``check_feasible`` and the earliest arrival among them is compared
with the oracle's earliest arrival (tests/routing/reference.py).

Steps, per network (``subway`` = subway.zip; ``city`` = subway + six bus zips):

1. throwaway ``MAAS_DATA_DIR``; ``.venv/bin/maas feeds import`` per feed (the real CLI);
2. seeded queries between stops that have departures (origin) / arrivals
   (destination) that day, written as JSONL ``{"from","to","depart"}``;
3. ``.venv/bin/maas plan --batch FILE --json`` (the real CLI), one output line per query;
4. oracle with exactly the comparison set-up of tests/routing/test_oracle_feeds.py:
   the compiled timetable's footpaths and change rules (``walking_graph``, here with
   the CLI's defaults walk speed 1.3 m/s and ``max_walk_m`` 1000), ``max_transfers + 1``
   rides (CLI default ``--max-transfers 4``), a 14 h horizon (arrivals later than
   that are beyond what the oracle sees on both sides).

The oracle is ``earliest_arrivals`` (pure Python, ~0.16 s per subway query) or
:func:`earliest_arrivals_nb`, the same round-based connection scan compiled with
numba, cross-checked against ``earliest_arrivals`` on a sample first.

Usage: ``.venv/bin/python bench/verify_batch.py [--network subway|city|both] [--queries 1000]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from numba import njit

ROOT = Path(__file__).resolve().parents[1]
# bench/ holds ticketing.py etc.: keep it off the path so the packages of the same names import
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "routing")]
from reference import INF, RefNetwork, check_feasible, earliest_arrivals, walking_graph  # noqa: E402

DATA = Path(os.environ.get("MAAS_SHARED_DATA", ROOT.parent / "shared" / "data"))
NYC = DATA / "nyc-mta"
DAY = date(2026, 10, 7)
TZ = ZoneInfo("America/New_York")
MAX_TRANSFERS = 4  # the CLI default
WALK_SPEED = 1.3  # the CLI default (m/s)
MAX_WALK_M = 1000.0  # the CLI default
HORIZON_S = 14 * 3600  # as in test_oracle_feeds.py
NETWORKS = {
    "subway": [("subway", "subway.zip")],
    "city": [("subway", "subway.zip"), ("bk", "bus_brooklyn.zip"), ("bx", "bus_bronx.zip"),
             ("m", "bus_manhattan.zip"), ("q", "bus_queens.zip"), ("si", "bus_staten_island.zip"),
             ("busco", "bus_mta_bus_company.zip")],
}
MAAS = ROOT / ".venv" / "bin" / "maas"


# ---------------------------------------------------------------------------------------------
# fast oracle: earliest_arrivals, line for line, over int arrays


@njit(cache=True)
def _scan(dep, arr, frm, to, trip, pu, do, lo, hi, n_trips, orig, egress, fp_off, fp_to, fp_w, change,
          min_change_s, t0, max_rides, walk_only):  # pragma: no cover - numba
    n = egress.shape[0]
    out = np.full(max_rides + 1, INF, dtype=np.int64)
    ready = np.full(n, INF, dtype=np.int64)
    for o in orig:
        ready[o] = t0
    for o in orig:
        for e in range(fp_off[o], fp_off[o + 1]):
            ready[fp_to[e]] = min(ready[fp_to[e]], t0 + fp_w[e])
    best = INF
    if walk_only:
        for o in orig:
            if egress[o] < INF:
                best = min(best, t0 + egress[o])
    out[0] = best
    on_board = np.zeros(n_trips, dtype=np.bool_)
    rode = np.empty(n, dtype=np.int64)
    for k in range(1, max_rides + 1):
        on_board[:] = False
        rode[:] = INF
        for i in range(lo, hi):
            t = trip[i]
            if on_board[t] or (pu[i] and ready[frm[i]] <= dep[i]):
                on_board[t] = True
                if do[i] and arr[i] < rode[to[i]]:
                    rode[to[i]] = arr[i]
        new_ready = ready.copy()
        for u in range(n):
            a = rode[u]
            if a >= INF:
                continue
            if egress[u] < INF:
                best = min(best, a + egress[u])
            c = change[u]
            if c >= 0:
                new_ready[u] = min(new_ready[u], a + max(c, min_change_s))
            for e in range(fp_off[u], fp_off[u + 1]):
                v = fp_to[e]
                new_ready[v] = min(new_ready[v], a + max(fp_w[e], min_change_s))
        ready = new_ready
        out[k] = best
    return out


class FastOracle:
    """:func:`reference.earliest_arrivals` over the same :class:`RefNetwork`, compiled with numba.

    ``footpaths`` / ``change_s`` as for ``earliest_arrivals`` (ids, seconds; change ``None`` = forbidden).
    """

    def __init__(self, net: RefNetwork, footpaths: dict[str, list[tuple[str, int]]],
                 change_s: dict[str, int | None]):
        self.net = net
        idx = net.stop_index
        n = len(net.stop_ids)
        rows = sorted((idx[u], idx[v], w) for u, lst in footpaths.items() if u in idx for v, w in lst)
        src = np.array([r[0] for r in rows], dtype=np.int64)
        self.fp_to = np.array([r[1] for r in rows], dtype=np.int64)
        self.fp_w = np.array([r[2] for r in rows], dtype=np.int64)
        self.fp_off = np.searchsorted(src, np.arange(n + 1)).astype(np.int64)
        self.change = np.zeros(n, dtype=np.int64)  # absent = 0, as in earliest_arrivals
        for s, c in change_s.items():
            if s in idx:
                self.change[idx[s]] = -1 if c is None else int(c)
        self.n_trips = len(net.trip_keys)

    def __call__(self, origin: str, destination: str, t0: int, max_rides: int, min_change_s: int = 0,
                 horizon_s: int = 12 * 3600, walk_only: bool = True) -> list[int | None]:
        net, idx = self.net, self.net.stop_index
        orig = np.array([idx[s] for s in net.platforms(origin)], dtype=np.int64)
        dest = [idx[s] for s in net.platforms(destination)]
        egress = np.full(len(net.stop_ids), INF, dtype=np.int64)
        egress[dest] = 0
        for d in dest:  # footpaths into the destination: walk u -> d
            hit = np.flatnonzero(self.fp_to == d)
            srcs = np.searchsorted(self.fp_off, hit, side="right") - 1
            np.minimum.at(egress, srcs, self.fp_w[hit])
        lo = int(np.searchsorted(net.dep, t0, side="left"))
        hi = int(np.searchsorted(net.dep, t0 + horizon_s, side="right"))
        out = _scan(net.dep, net.arr, net.frm, net.to, net.trip, net.pickup_ok, net.dropoff_ok, lo, hi,
                    self.n_trips, orig, egress, self.fp_off, self.fp_to, self.fp_w, self.change,
                    min_change_s, t0, max_rides, walk_only)
        return [None if x >= INF else int(x) for x in out]


# ---------------------------------------------------------------------------------------------


def _run(cmd: list[str], env: dict, stdout=None) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=stdout if stdout is not None else subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return time.perf_counter() - t


def _queries(net: RefNetwork, n: int, rng: np.random.Generator) -> list[dict]:
    """Stops with a departure (origin) / an arrival (destination) of a trip of DAY's service between
    06:00 and 22:00; two distinct places (not one station's platforms); departure 06:00-22:00 local."""
    day0 = int(datetime.combine(DAY, datetime.min.time(), tzinfo=TZ).timestamp())
    w = (net.dep >= day0 + 6 * 3600) & (net.dep <= day0 + 22 * 3600)
    origins = np.unique(net.frm[w & net.pickup_ok])
    dests = np.unique(net.to[w & net.dropoff_ok])
    parent = {}
    for p, kids in net.children.items():
        for c in kids:
            parent[c] = p
    out: list[dict] = []
    while len(out) < n:
        o = net.stop_ids[int(rng.choice(origins))]
        d = net.stop_ids[int(rng.choice(dests))]
        if o == d or (parent.get(o) is not None and parent.get(o) == parent.get(d)):
            continue
        t0 = datetime.combine(DAY, datetime.min.time(), tzinfo=TZ) + timedelta(
            seconds=int(rng.integers(6 * 3600, 22 * 3600)))
        out.append({"from": o, "to": d, "depart": t0.isoformat()})
    return out


def verify(network: str, n_queries: int, seed: int, oracle_kind: str, keep: bool) -> dict:
    feeds = NETWORKS[network]
    print(f"\n=== {network}: {', '.join(f for _, f in feeds)}; {n_queries} queries, seed {seed} ===", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"verify_{network}_"))
    env = dict(os.environ, MAAS_DATA_DIR=str(tmp / "data"))
    env.pop("DATABASE_URL", None)
    env.pop("MAAS_DATABASE_URL", None)
    timings: dict[str, float] = {}
    try:
        t = time.perf_counter()
        for feed_id, name in feeds:
            _run([str(MAAS), "feeds", "import", str(NYC / name), "--feed-id", feed_id], env)
        timings["import (CLI, all feeds)"] = time.perf_counter() - t

        # the very timetable the CLI compiled (cache hit), for footpaths and change rules
        t = time.perf_counter()
        os.environ["MAAS_DATA_DIR"] = env["MAAS_DATA_DIR"]
        from maas.feeds import build_timetable
        from maas.settings import Settings
        from routing.feeds import FeedSource

        sources = [FeedSource(fid, (NYC / name).resolve(), fid) for fid, name in sorted(feeds)]
        tt, cached = build_timetable(Settings(data_dir=tmp / "data"), sources)
        fp, change = walking_graph(tt, walk_speed_m_s=WALK_SPEED, max_walk_m=MAX_WALK_M)
        timings["timetable load + walking graph"] = time.perf_counter() - t
        print(f"timetable {'from the CLI cache' if cached else 'RECOMPILED (cache miss)'}: {tt.n_stops:,} stops, "
              f"{sum(len(v) for v in fp.values()):,} footpaths", flush=True)

        t = time.perf_counter()
        net = RefNetwork.from_gtfs([(fid, NYC / name) for fid, name in feeds], DAY)
        timings["oracle network (pandas)"] = time.perf_counter() - t
        print(f"oracle network: {len(net.dep):,} connections, {len(net.trip_keys):,} trip-days", flush=True)

        rng = np.random.default_rng(seed)
        queries = _queries(net, n_queries, rng)
        qfile = tmp / "queries.jsonl"
        qfile.write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
        ofile = tmp / "answers.jsonl"
        with ofile.open("w", encoding="utf-8") as fh:
            timings["plan --batch (CLI, incl. start-up)"] = _run(
                [str(MAAS), "plan", "--batch", str(qfile), "--json"], env, stdout=fh)
        answers = [json.loads(line) for line in ofile.read_text(encoding="utf-8").splitlines() if line.strip()]

        oracle = earliest_arrivals
        if oracle_kind == "fast":
            t = time.perf_counter()
            fast = FastOracle(net, fp, change)
            fast(queries[0]["from"], queries[0]["to"], 0, 1)  # compile
            n_cross = 20 if network == "subway" else 5
            for q in queries[:n_cross]:
                t0 = int(datetime.fromisoformat(q["depart"]).timestamp())
                a = earliest_arrivals(net, q["from"], q["to"], t0, MAX_TRANSFERS + 1, fp, change, horizon_s=HORIZON_S)
                b = fast(q["from"], q["to"], t0, MAX_TRANSFERS + 1, horizon_s=HORIZON_S)
                assert a == b, ("fast oracle differs from earliest_arrivals", q, a, b)
            timings[f"fast oracle cross-check ({n_cross} queries vs earliest_arrivals)"] = time.perf_counter() - t
            print(f"fast oracle == earliest_arrivals on {n_cross} queries (per rides count)", flush=True)
            oracle = None

        n_answered = n_feasible_its = n_its = n_equal = n_found = 0
        infeasible: list[str] = []
        mismatches: list[str] = []
        t_oracle = t_check = 0.0
        for q, ans in zip(queries, answers):
            t0 = int(datetime.fromisoformat(q["depart"]).timestamp())
            if "error" in ans:
                mismatches.append(f"{q}: error {ans['error']}")
                continue
            n_answered += 1
            its = ans["itineraries"]
            t = time.perf_counter()
            for it in its:
                n_its += 1
                try:
                    check_feasible(it, net, fp, change, walk_speed_m_s=WALK_SPEED)
                    n_feasible_its += 1
                except AssertionError as exc:
                    infeasible.append(f"{q} itinerary {it.get('id')}: {exc}")
            t_check += time.perf_counter() - t
            t = time.perf_counter()
            if oracle is None:
                want = fast(q["from"], q["to"], t0, MAX_TRANSFERS + 1, horizon_s=HORIZON_S)
            else:
                want = oracle(net, q["from"], q["to"], t0, MAX_TRANSFERS + 1, fp, change, horizon_s=HORIZON_S)
            t_oracle += time.perf_counter() - t
            w = want[-1] if want[-1] is not None and want[-1] <= t0 + HORIZON_S else None
            got = min((int(datetime.fromisoformat(it["arrival"]).timestamp()) for it in its), default=None)
            g = got if got is not None and got <= t0 + HORIZON_S else None
            found = w is not None
            n_found += found
            if g == w:
                n_equal += 1
            else:
                def fmt(x):
                    return None if x is None else datetime.fromtimestamp(x, TZ).isoformat()
                mismatches.append(f"{q}: plan earliest {fmt(got)} ({len(its)} itineraries), oracle {fmt(w)} "
                                  f"(per rides {[fmt(x) for x in want]})")
        timings["feasibility checks"] = t_check
        timings[f"oracle ({oracle_kind}), all queries"] = t_oracle
        n = len(queries)
        res = {
            "network": network, "queries": n, "answer_lines": len(answers), "answered": n_answered,
            "with_journey": n_found, "itineraries": n_its,
            "feasible_pct": round(100.0 * n_feasible_its / n_its, 2) if n_its else None,
            "equal_to_oracle_pct": round(100.0 * n_equal / n, 2),
            "mismatches": len(mismatches), "infeasible": len(infeasible),
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
            "plan_batch_ms_per_query": round(1000 * timings["plan --batch (CLI, incl. start-up)"] / n, 1),
        }
        print(f"queries {n}; answered {n_answered} ({len(answers)} output lines); oracle finds a journey "
              f"within 14 h for {n_found}")
        print(f"itineraries {n_its}; feasible {res['feasible_pct']}%; earliest arrival equal to oracle "
              f"{res['equal_to_oracle_pct']}% ({n_equal}/{n})")
        for title, rows in (("infeasible itineraries", infeasible), ("mismatches", mismatches)):
            print(f"{title}: {len(rows)}")
            for r in rows[:10]:
                print("  " + r)
        print("timings (s):")
        for k, v in timings.items():
            print(f"  {k}: {v:.2f}")
        print(f"  plan --batch per query (incl. CLI start-up): {res['plan_batch_ms_per_query']} ms")
        print("RESULT " + json.dumps(res), flush=True)
        return res
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", choices=["subway", "city", "both"], default="both")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--oracle", choices=["fast", "python"], default="fast",
                    help="fast = numba connection scan (cross-checked); python = reference.earliest_arrivals")
    ap.add_argument("--keep", action="store_true", help="keep the throwaway data directory")
    args = ap.parse_args(argv)
    results = []
    for network in (["subway", "city"] if args.network == "both" else [args.network]):
        try:
            results.append(verify(network, args.queries, args.seed, args.oracle, args.keep))
        except Exception:  # a broken run of one network still reports the other
            traceback.print_exc()
            results.append({"network": network, "error": True})
    bad = [r for r in results if r.get("error") or r.get("mismatches") or r.get("infeasible")]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
