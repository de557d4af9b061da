"""Fare engine throughput: itineraries priced per second.

Usage::

    .venv/bin/python bench/fares.py [--n 20000] [--seed 7] [--transcollines PATH]

Prices random 1-3 leg itineraries on the demo city (bus, metro with line
changes, coach, ferry; agreements and transfer rules active) with the medium
given and with ``fare_media=None`` (every medium tried), and single legs on
Transcollines (zone fares, timeframes) when its zip is present. Prints one
JSON object. Legs are hand-built (stop pairs along real routes), not routed.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maas.demo import write_demo_city  # noqa: E402
from maas.demo.city import FARE_AGREEMENTS_FILE, OPERATOR_FARE_TABLES_FILE  # noqa: E402
from ticketing.fares import FareEngine  # noqa: E402

CST = timezone(timedelta(hours=8))


def _leg(feed: str, route: str, a: str, b: str, dep: datetime, minutes: int, mode: str, dist: float) -> dict:
    return {"mode": mode, "feed_id": feed, "route_id": f"{feed}:{route}", "from": {"stop_id": f"{feed}:{a}"},
            "to": {"stop_id": f"{feed}:{b}"}, "departure": dep.isoformat(),
            "arrival": (dep + timedelta(minutes=minutes)).isoformat(), "distance_m": dist}


def demo_itineraries(n: int, rng: random.Random, day: date) -> list[list[dict]]:
    bus = {"1": ["XHGY", "LJ", "WHG", "RMYY", "RMGC", "WYLK", "DT", "GYY", "QCDZ"],
           "2": ["BC", "SFDX", "SZF", "YXYZ", "RMGC", "NMK", "TYZX", "BJGY"]}
    l1 = ["XHGY", "GHL", "WHG", "FQJ", "RMGC", "WYL", "DT", "QCDZ"]
    l2 = ["BC", "SFDX", "XYYY", "ZSL", "RMGC", "NMK", "TYZX", "BJXC"]
    out = []
    for _ in range(n):
        t = datetime(day.year, day.month, day.day, rng.randint(6, 20), rng.randint(0, 59), tzinfo=CST)
        legs = []
        route = rng.choice(sorted(bus))
        i, j = sorted(rng.sample(range(len(bus[route])), 2))
        legs.append(_leg("yx-bus", route, bus[route][i], bus[route][j], t, 20, "BUS", 3000.0))
        t += timedelta(minutes=rng.randint(22, 80))
        kind = rng.random()
        if kind < 0.6:
            a = rng.choice([s for s in l1 if s != "RMGC"])
            legs.append(_leg("yx-metro", "L1", f"{a}_L1", "RMGC_L1", t, 12, "SUBWAY", 5000.0))
            b = rng.choice([s for s in l2 if s != "RMGC"])
            legs.append(_leg("yx-metro", "L2", "RMGC_L2", f"{b}_L2", t + timedelta(minutes=15), 12, "SUBWAY", 5000.0))
        elif kind < 0.8:
            legs.append(_leg("yx-coach", "YX-ML", "YXZZ", rng.choice(["BSX", "MLX"]), t, 90, "COACH", 60000.0))
        else:
            legs.append(_leg("yx-ferry", "F1", "JBMT", "JNMT", t, 15, "FERRY", 2600.0))
        out.append(legs)
    return out


def bench(engine: FareEngine, itineraries: list[list[dict]], **kw) -> dict:
    priced = 0
    t0 = time.perf_counter()
    for legs in itineraries:
        if engine.price_legs(legs, **kw).total is not None:
            priced += 1
    dt = time.perf_counter() - t0
    return {"itineraries": len(itineraries), "fully_priced": priced, "seconds": round(dt, 3),
            "per_second": round(len(itineraries) / dt, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--transcollines", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/transcollines-fares-v2/"
                                                              "transcollines-qc-ca-fares.zip")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    result: dict = {"seed": args.seed}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        feeds = write_demo_city(Path(tmp), date(2026, 11, 21))
        engine = FareEngine.from_feeds([(f.feed_id, f.path) for f in feeds],
                                       agreements=Path(tmp) / FARE_AGREEMENTS_FILE,
                                       operator_tables=Path(tmp) / OPERATOR_FARE_TABLES_FILE)
        result["demo_load_s"] = round(time.perf_counter() - t0, 3)
        its = demo_itineraries(args.n, rng, date(2026, 11, 23))
        result["demo_qr"] = bench(engine, its, fare_media="qr")
        result["demo_any_medium"] = bench(engine, its[: max(1, args.n // 4)])
    if args.transcollines.exists():
        tc = FareEngine.from_feeds([("tc", args.transcollines)])
        stops = {"PNT": "F134-01", "COL": "F101-13", "GAT": "F912-51"}
        its = []
        for _ in range(args.n):
            a, b = rng.choice(sorted(stops)), rng.choice(sorted(stops))
            dep = datetime(2026, 3, 4, rng.randint(5, 20), rng.randint(0, 59), tzinfo=timezone(timedelta(hours=-5)))
            its.append([_leg("tc", "910", stops[a], stops[b], dep, 60, "BUS", 30000.0)])
        result["transcollines"] = bench(tc, its)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
