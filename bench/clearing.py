"""Clearing at scale: 1,000,000 ticket legs across 10 operators, apportioned and settled on PostgreSQL.

Usage::

    .venv/bin/python bench/clearing.py [--legs 1000000] [--operators 10] [--days 7] [--seed 7]
        [--database-url postgresql://postgres@127.0.0.1:5432/test]

The database URL comes from ``--database-url``, else ``MAAS_BENCH_DATABASE_URL``,
``DATABASE_URL`` or ``MAAS_TEST_DATABASE_URL``, else the local test server. The
script creates its own database beside it (``maas_bench_clearing_<hex>``),
builds the schema with the migrations and drops it at the end.

Phases (seconds each, printed as one JSON object with the peak RSS and the
machine's load average, since the figures depend on what else runs;
``total_s`` is generate + apportion + load + settle):

generate   random tickets of 1-4 legs (standalone fares, distances, a
           transfer discount of 1 CNY per extra leg), service dates over
           ``--days`` days; 90 % of legs used, 7 % expired, 3 % refunded
           (80 % of the share back), the rest open
apportion  vectorised largest remainder by standalone fare; commission
load       sales, recognitions and refunds posted to the ledger (COPY into
           staging, INSERT ... SELECT, the balance trigger checking every
           entry), then ANALYZE
settle     one settlement run over the whole window (set-based SQL)
verify     the run's digest recomputed from the journal
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import secrets
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clearing import bulk, settlement  # noqa: E402
from clearing.apportionment import largest_remainder_batch  # noqa: E402
from maas.db import dispose_engines, get_engine, session_scope, upgrade_database  # noqa: E402
from maas.settings import load_settings  # noqa: E402


def _database_url(arg: str | None) -> str:
    return (arg or os.environ.get("MAAS_BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
            or os.environ.get("MAAS_TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test")


def generate(n_legs: int, n_ops: int, days: int, seed: int, start: dt.date) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 2, 3, 4], size=n_legs, p=[0.45, 0.35, 0.15, 0.05])
    ends = np.cumsum(sizes)
    n_tickets = int(np.searchsorted(ends, n_legs)) + 1
    sizes = sizes[:n_tickets]
    sizes[-1] -= int(ends[n_tickets - 1] - n_legs)
    sizes = sizes[sizes > 0]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_tickets = len(sizes)
    ticket_of_leg = np.repeat(np.arange(n_tickets), sizes)
    fares = rng.integers(100, 3_000, size=n_legs, dtype=np.int64)
    distance = rng.integers(500, 60_000, size=n_legs, dtype=np.int64)
    discount = (sizes - 1) * 100
    paid = np.maximum(np.add.reduceat(fares, offsets[:-1]) - discount, 0)
    ticket_day = rng.integers(0, days, size=n_tickets)
    base = np.datetime64(start, "D")
    outcome = rng.choice(np.array([1, 2, 3, 0], dtype=np.int8), size=n_legs, p=[0.90, 0.07, 0.03, 0.0])
    return {
        "offsets": offsets, "paid": paid, "fares": fares, "distance": distance,
        "operator": rng.integers(0, n_ops, size=n_legs), "sold_on": base + ticket_day,
        "service_date": base + ticket_day[ticket_of_leg], "outcome": outcome, "ticket_of_leg": ticket_of_leg,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--legs", type=int, default=1_000_000)
    ap.add_argument("--operators", type=int, default=10)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--database-url")
    ap.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    args = ap.parse_args(argv)

    import psycopg

    admin_url = _database_url(args.database_url)
    name = f"maas_bench_clearing_{secrets.token_hex(4)}"
    base, _, _ = admin_url.rpartition("/")
    admin = psycopg.connect(admin_url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    out: dict[str, object] = {"legs": args.legs, "operators": args.operators, "database": "postgresql"}
    timings: dict[str, float] = {}
    try:
        settings = load_settings(environment="test", data_dir=Path("/tmp") / name, database_url=f"{base}/{name}")
        upgrade_database(settings)
        engine = get_engine(settings)
        start = dt.date(2026, 3, 1)

        t0 = time.perf_counter()
        g = generate(args.legs, args.operators, args.days, args.seed, start)
        n_tickets = len(g["paid"])
        ticket_ids = np.char.add("T", np.arange(n_tickets).astype(str)).astype(object)
        tix = g["ticket_of_leg"]
        position = np.arange(args.legs) - g["offsets"][tix]
        leg_ids = np.char.add(np.char.add(ticket_ids[tix].astype(str), "-"), position.astype(str)).astype(object)
        op_names = np.array([f"op{i:02d}" for i in range(args.operators)], dtype=object)
        operators = op_names[g["operator"]]
        timings["generate_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        shares = largest_remainder_batch(g["paid"], g["offsets"], g["fares"])
        rate_bp = np.arange(args.operators, dtype=np.int64) * 50 + 200      # 2 % .. 6.5 %
        fixed = np.arange(args.operators, dtype=np.int64) % 3               # 0-2 fen per leg
        fees = bulk.commission_batch(shares, rate_bp[g["operator"]], fixed[g["operator"]])
        timings["apportion_s"] = time.perf_counter() - t0
        assert (np.add.reduceat(shares, g["offsets"][:-1]) == g["paid"]).all()

        t0 = time.perf_counter()
        outcome = g["outcome"]
        with session_scope(engine) as s:
            bulk.post_sales(s, currency="CNY", ticket_ids=ticket_ids, order_ids=ticket_ids, paid=g["paid"],
                            sold_on=g["sold_on"], offsets=g["offsets"], leg_ids=leg_ids, operator_ids=operators,
                            service_dates=g["service_date"], shares=shares, distance_m=g["distance"],
                            standalone_fare=g["fares"])
            for code, how in ((1, "used"), (2, "expired")):
                m = outcome == code
                bulk.post_recognitions(s, currency="CNY", leg_ids=leg_ids[m], ticket_ids=ticket_ids[tix][m],
                                       operator_ids=operators[m], service_dates=g["service_date"][m],
                                       shares=shares[m], fees=fees[m], how=how)
            m = outcome == 3
            bulk.post_refunds(s, currency="CNY", refund_ids=np.char.add("rf-", leg_ids[m].astype(str)),
                              leg_ids=leg_ids[m], ticket_ids=ticket_ids[tix][m], operator_ids=operators[m],
                              refund_dates=g["service_date"][m], shares=shares[m], amounts=shares[m] * 4 // 5)
            bulk.analyze(s)
        timings["load_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        with session_scope(engine) as s:
            run, _ = settlement.run_settlement(s, period_start=start, period_end=start + dt.timedelta(days=args.days))
            run_id, digest = run.run_id, run.digest
            totals = {"gross": run.gross, "refunds": run.refunds, "commission": run.commission,
                      "net_payable": run.net_payable, "lines": run.lines}
        timings["settle_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        with session_scope(engine) as s:
            verified = settlement.recompute_digest(s, run_id) == digest
        timings["verify_s"] = time.perf_counter() - t0

        paid_total = int(g["paid"].sum())
        out.update({
            "tickets": n_tickets, **{k: round(v, 2) for k, v in timings.items()},
            # The goal (< 60 s) covers generating, apportioning, posting and settling; verify is an extra check.
            "total_s": round(sum(v for k, v in timings.items() if k != "verify_s"), 2),
            "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "run": totals, "digest_verified": verified,
            "conserved": totals["net_payable"] + totals["commission"] + totals["refunds"] == paid_total,
        })
    finally:
        dispose_engines()
        if args.keep:
            out["kept_database"] = name
        else:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
