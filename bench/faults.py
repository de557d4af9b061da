"""Faults under load: Redis stopped, PostgreSQL restarted, a settlement run killed; invariants after each.

Usage::

    .venv/bin/python bench/faults.py [--phase-s 10] [--users 8] [--workers 2] [--wait-max 1200]
        [--only redis,postgres,settlement]

Not a test: it prints figures. Same stack as `bench/load.py` (fresh PostgreSQL database, Redis
db 14, the demo city, ``maas serve --workers 2``) under the same mixed load, then:

(a) **Redis stopped** mid-run (``redis-cli shutdown nosave``) for one phase, then restarted
    (empty: ``--save ""``): what degrades, what keeps working, what recovers;
(b) **PostgreSQL restarted** mid-run (``pg_ctlcluster 15 main restart``): requests must fail
    cleanly (a JSON error, never a bare traceback, never a 200 for a failed write) and succeed
    after; no half-written order;
(c) a **settlement run killed** (``kill -9``) while it is writing its lines, then re-run: the same
    digest as a dry run of the same period, and the stored lines recompute to it.

After each fault: every paid order has its tickets, every ticket leg is used at most once, the
ledger balances (`bench.load.invariants`). Results per phase (before / during / after the
fault): requests per endpoint and their statuses.

The script restarts services shared with other engineers' test runs: it first waits until no
pytest process runs (``pgrep -af pytest``, at most ``--wait-max`` seconds), and restarts Redis and
PostgreSQL in ``finally`` blocks whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from load import SHANGHAI, Recorder, Sample, Stack, drive, invariants, summarize  # noqa: E402

REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
               "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]
PG_RESTART = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"]
PG_START = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start"]


def wait_for_quiet(max_s: float) -> None:
    """Waits until no pytest process runs (other engineers' suites use the same Redis and PostgreSQL)."""
    deadline = time.time() + max_s
    while True:
        out = subprocess.run(["pgrep", "-af", "pytest"], capture_output=True, text=True).stdout
        busy = [line for line in out.splitlines() if line and "pgrep" not in line and str(os.getpid()) not in line]
        if not busy:
            return
        if time.time() > deadline:
            raise SystemExit(f"other test runs still active after {max_s:.0f} s; not injecting faults:\n"
                             + "\n".join(busy[:5]))
        print(f"# waiting for {len(busy)} pytest process(es) to finish ...", flush=True)
        time.sleep(15)


def redis_up() -> bool:
    return subprocess.run(["redis-cli", "-p", "6379", "ping"], capture_output=True, text=True).stdout.strip() == "PONG"


def ensure_redis() -> None:
    if not redis_up():
        subprocess.run(REDIS_START, check=False)
        for _ in range(50):
            if redis_up():
                return
            time.sleep(0.1)


def pg_up() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"], capture_output=True).returncode == 0


def ensure_pg() -> None:
    if not pg_up():
        subprocess.run(PG_START, check=False, capture_output=True)
        for _ in range(100):
            if pg_up():
                return
            time.sleep(0.2)


def by_phase(samples: list[Sample], t_fault: float, t_recovered: float) -> dict[str, Any]:
    """Per phase and endpoint: n and statuses; ``unclean``: 5xx without the JSON error body or no answer."""
    phases: dict[str, dict[str, dict[str, int]]] = {"before": {}, "during": {}, "after": {}}
    totals: dict[str, dict[str, int]] = {p: defaultdict(int) for p in phases}
    for s in samples:
        phase = "before" if s.started < t_fault else "during" if s.started < t_recovered else "after"
        cell = phases[phase].setdefault(s.endpoint, {})
        key = "no_answer" if s.status == 0 else str(s.status)
        cell[key] = cell.get(key, 0) + 1
        totals[phase]["requests"] += 1
        totals[phase]["ok_2xx"] += 200 <= s.status < 300
        totals[phase]["client_4xx"] += 400 <= s.status < 500
        totals[phase]["server_5xx"] += s.status >= 500
        totals[phase]["no_answer"] += s.status == 0
        totals[phase]["unclean"] += (s.status >= 500 and not s.clean)
    return {p: {"totals": dict(totals[p]), "endpoints": {e: dict(sorted(c.items())) for e, c in sorted(v.items())}}
            for p, v in phases.items()}


async def _coach_probe(stack: Stack, rec: Recorder, until: float) -> None:
    """Once a second: a coach seat offer (reserved seats are held in Redis), as endpoint ``coach_offer``.

    Uses the last seeded passenger (not one of the load's); tomorrow's first 云青线 coach has 45
    seats and each hold lasts the offer's lifetime, so the probe stays well below the capacity.
    """
    import httpx

    from load import _call

    phone, password = stack.passengers[-1]
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=15) as client:
        r = await client.post("/v1/auth/token", json={"phone": phone, "password": password})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        tomorrow = (dt.datetime.now(SHANGHAI) + dt.timedelta(days=1)).replace(hour=7, minute=0, second=0,
                                                                            microsecond=0)
        r = await client.get("/v1/plan", params={"from": "yx-coach:YXZZ", "to": "yx-coach:QSX",
                                                 "depart_at": tomorrow.isoformat()})
        its = [it for it in r.json()["itineraries"] if [x["mode"] for x in it["legs"] if x["mode"] != "WALK"]
               == ["COACH"]]
        while its and time.monotonic() < until:
            t0 = time.monotonic()
            await _call(client, rec, "coach_offer", "POST", "/v1/offers", headers=headers,
                        json={"itinerary": its[0], "travelers": [{"rider_category": "adult"}]})
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))


async def _with_fault(stack: Stack, *, phase_s: float, users: int, seed: int, inject: Callable[[], object],
                      recover: Callable[[], object], coach_probe: bool = False) -> tuple[Recorder, float, float]:
    """Load for 3 phases: ``inject`` at the end of the first, ``recover`` at the end of the second."""
    load = asyncio.create_task(drive(stack, duration_s=3 * phase_s, max_requests=10**6, seed=seed, users=users))
    probe_rec = Recorder()
    probe = asyncio.create_task(_coach_probe(stack, probe_rec, time.monotonic() + 3 * phase_s)) if coach_probe \
        else None
    await asyncio.sleep(phase_s)
    t_fault = time.monotonic()
    await asyncio.to_thread(inject)
    await asyncio.sleep(max(0.0, t_fault + phase_s - time.monotonic()))
    await asyncio.to_thread(recover)
    t_recovered = time.monotonic()
    rec = await load
    if probe is not None:
        await probe
        rec.samples.extend(probe_rec.samples)
    return rec, t_fault, t_recovered


def fault_redis(stack: Stack, a: argparse.Namespace) -> dict[str, Any]:
    try:
        rec, tf, tr = asyncio.run(_with_fault(
            stack, phase_s=a.phase_s, users=a.users, seed=a.seed,
            inject=lambda: subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True),
            recover=ensure_redis, coach_probe=True))
    finally:
        ensure_redis()
    return {"fault": "redis stopped for one phase, restarted empty", "phase_s": a.phase_s,
            "phases": by_phase(rec.samples, tf, tr), "invariants": invariants(stack.engine())}


def fault_postgres(stack: Stack, a: argparse.Namespace) -> dict[str, Any]:
    def restart() -> None:
        started = time.monotonic()
        subprocess.run(PG_RESTART, check=False, capture_output=True)
        restart_s.append(round(time.monotonic() - started, 2))

    restart_s: list[float] = []
    try:
        # the restart happens at the start of the "during" phase; recovery is checked from its end
        rec, tf, tr = asyncio.run(_with_fault(stack, phase_s=a.phase_s, users=a.users, seed=a.seed + 1,
                                              inject=restart, recover=ensure_pg))
    finally:
        ensure_pg()
    from maas.db import dispose_engines

    dispose_engines()  # our own pooled connections died with the server
    return {"fault": "postgresql restarted", "restart_s": restart_s, "phase_s": a.phase_s,
            "phases": by_phase(rec.samples, tf, tr), "invariants": invariants(stack.engine())}


_KILLED_RUN = """
import datetime as dt, sys, time
from clearing import settlement
def checkpoint(stage):
    if stage == "lines":
        print("AT_LINES", flush=True)
        time.sleep(600)
settlement._checkpoint = checkpoint
from maas.db import get_engine, session_scope
from maas.settings import get_settings
with session_scope(get_engine(get_settings())) as s:
    settlement.run_settlement(s, period_start=dt.date.fromisoformat(sys.argv[1]),
                              period_end=dt.date.fromisoformat(sys.argv[2]), currency="CNY", actor_id="bench:faults")
print("COMMITTED", flush=True)
"""


def fault_settlement(stack: Stack, a: argparse.Namespace) -> dict[str, Any]:
    import sqlalchemy as sa
    from sqlmodel import Session

    from clearing import settlement
    from clearing.clock import CLEARING_TZ
    from maas.db import session_scope

    engine = stack.engine()
    today = dt.datetime.now(CLEARING_TZ).date()
    start, end = today - dt.timedelta(days=7), today + dt.timedelta(days=1)
    with Session(engine) as s:  # a dry run: the digest the period must get, rolled back
        dry, _ = settlement.run_settlement(s, period_start=start, period_end=end, actor_id="bench:dry-run")
        dry_digest, dry_lines, dry_net = dry.digest, dry.lines, dry.net_payable
        s.rollback()
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, start.isoformat(), end.isoformat()],
                            cwd=str(Path(__file__).resolve().parents[1]), env=stack.env, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    with engine.connect() as conn:  # the killed run's uncommitted lines are invisible, as they must be
        in_flight = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"
                                         " AND datname = current_database()")).scalar()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    with engine.connect() as conn:
        runs_after_kill = conn.execute(sa.text("SELECT count(*) FROM clearing_settlement_runs")).scalar()
        lines_after_kill = conn.execute(sa.text("SELECT count(*) FROM clearing_settlement_lines")).scalar()
    with session_scope(engine) as s:
        run, created = settlement.run_settlement(s, period_start=start, period_end=end, actor_id="bench:rerun")
        run_id, digest, lines = run.run_id, run.digest, run.lines
    with Session(engine) as s:
        recomputed = settlement.recompute_digest(s, run_id)
    return {"fault": "settlement run killed (SIGKILL) while writing its lines, then re-run",
            "period": [start.isoformat(), end.isoformat()], "killed_at": line,
            "open_transactions_at_kill": int(in_flight or 0), "runs_after_kill": int(runs_after_kill or 0),
            "lines_after_kill": int(lines_after_kill or 0), "dry_run_digest": dry_digest, "rerun_digest": digest,
            "recomputed_digest": recomputed, "same_digest": dry_digest == digest == recomputed,
            "lines": lines, "dry_run_lines": dry_lines, "net_payable": dry_net, "rerun_created": created,
            "invariants": invariants(engine)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phase-s", type=float, default=10.0, help="seconds before, during and after each fault")
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--wait-max", type=float, default=1200.0)
    p.add_argument("--only", default="redis,postgres,settlement")
    p.add_argument("--database-url", default=os.environ.get("MAAS_BENCH_DATABASE_URL",
                                                            "postgresql://postgres@127.0.0.1:5432/test"))
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    a = p.parse_args(argv)
    which = [x.strip() for x in a.only.split(",") if x.strip()]
    # only the service restarts disturb others; a killed settlement run stays inside our own database
    shared = {"redis", "postgres"} & set(which)
    if shared:
        wait_for_quiet(a.wait_max)
    results: list[dict[str, Any]] = []
    try:
        # one passenger more than the load uses: the coach-offer probe of the Redis fault
        with Stack(database_url=a.database_url, redis_url=a.redis_url, workers=a.workers, port=None,
                   users=a.users + 1) as stack:
            started = time.monotonic()
            rec = asyncio.run(drive(stack, duration_s=a.phase_s, max_requests=10**6, seed=a.seed - 1,
                                    users=a.users))
            print("baseline load:", json.dumps({k: v for k, v in summarize(rec.samples, time.monotonic() - started)
                                                .items() if k != "endpoints"}), flush=True)
            print("baseline invariants:", json.dumps(invariants(stack.engine())), flush=True)
            for name, fn in (("redis", fault_redis), ("postgres", fault_postgres), ("settlement", fault_settlement)):
                if name not in which:
                    continue
                if name in shared:
                    wait_for_quiet(a.wait_max)
                result = fn(stack, a)
                results.append(result)
                print(f"\n== {result['fault']}", flush=True)
                print(json.dumps(result, indent=1, ensure_ascii=False), flush=True)
    finally:
        ensure_redis()
        ensure_pg()
    ok = all(r["invariants"]["ok"] for r in results) and all(r.get("same_digest", True) for r in results)
    print(f"\nall invariants hold: {ok}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
