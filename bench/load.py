"""Sustained mixed load on `maas serve --workers 2` over PostgreSQL + Redis: throughput and latency per endpoint.

Usage::

    .venv/bin/python bench/load.py [--duration 60] [--max-requests 20000] [--users 16] [--workers 2]
        [--port 8765] [--seed 7] [--database-url postgresql://postgres@127.0.0.1:5432/test]
        [--redis-url redis://127.0.0.1:6379/14]

Not a test: it prints figures. The script creates a fresh database beside the given one
(``maas_bench_load_<hex>``, dropped at the end) and uses Redis db 14 (flushed), builds the demo
city 云溪市 into it (`maas.demo_server.build_demo`: migrations, feeds, accounts, gates, compiled
timetable), seeds ``--users`` passengers, starts ``maas serve --workers N`` and drives it with a
purpose-written asyncio httpx client: each virtual passenger loops over

    plan (random stop pair)  x3
    plan (a bus ride leaving within the hour) -> offer -> order -> sandbox confirm -> order
    -> QR -> validate at the operator's gate (accepted: the ride is valid now)

until ``--duration`` seconds or ``--max-requests`` requests. Rate limits are raised so that the
limiter never answers (it still counts in Redis on every request). Printed: requests, errors and
throughput overall; per endpoint n, error rate, p50/p99/max in ms; the invariants afterwards:
every paid order has its tickets, every leg used at most once, the ledger balances.

`bench/faults.py` reuses `Stack`, `drive` and `invariants` from here.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from maas.keys import generate as generate_keys  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "bench-pass-123"
#: How long `maas serve` may take to say it is ready (it compiles the kernels first; slow on a busy machine).
READY_TIMEOUT_S = int(os.environ.get("MAAS_BENCH_READY_TIMEOUT_S", "400"))
#: Stops of the demo city planned between at random (bus and metro).
PLAN_STOPS = ["yx-bus:YXYZ", "yx-bus:RMGC", "yx-bus:SZF", "yx-bus:DT", "yx-bus:WHG", "yx-bus:BC", "yx-bus:LJ",
              "yx-bus:HYXQ", "yx-metro:XHGY", "yx-metro:GHL", "yx-metro:WYL", "yx-metro:NMK", "yx-coach:QSX"]
#: Short bus rides bought (boarding stop, alighting stop): 1路, 2路 and 3路.
RIDES = [("yx-bus:BC", "yx-bus:SZF"), ("yx-bus:LJ", "yx-bus:RMYY"), ("yx-bus:HYXQ", "yx-bus:WYLK"),
         ("yx-bus:SFDX", "yx-bus:YXYZ"), ("yx-bus:DT", "yx-bus:QCDZ")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


class Stack:
    """A fresh PostgreSQL database + Redis db, the demo city imported, passengers seeded, the server running."""

    def __init__(self, *, database_url: str, redis_url: str, workers: int, port: int | None, users: int) -> None:
        self.admin_url = database_url
        self.redis_url = redis_url
        self.workers = workers
        self.port = port or _free_port()
        self.n_users = users
        self.db_name = f"maas_bench_load_{secrets.token_hex(4)}"
        self.database_url = _with_database(database_url, self.db_name)
        self.data_dir = Path(tempfile.mkdtemp(prefix="maas-bench-"))
        self.server: subprocess.Popen | None = None
        self.creds: dict[str, Any] = {}
        self.passengers: list[tuple[str, str]] = []  # (phone, password)
        self.env = dict(os.environ)
        self.env.update({
            "DATABASE_URL": self.database_url, "REDIS_URL": redis_url, "MAAS_DATA_DIR": str(self.data_dir),
            "MAAS_ENVIRONMENT": "development", "MAAS_LOG_LEVEL": "WARNING",
            "MAAS_RATE_LIMITS": "auth=1000000/60,plan=1000000/60,gates=1000000/60",
            # Secrets fixed up front: two workers must not race to generate them.
            **generate_keys(),
        })

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self):  # noqa: ANN201
        from maas.settings import load_settings

        return load_settings(environment="development", data_dir=self.data_dir, database_url=self.database_url,
                             redis_url=self.redis_url, jwt_secret=self.env["MAAS_JWT_SECRET"],
                             pii_keys=self.env["MAAS_PII_KEYS"], blind_index_key=self.env["MAAS_BLIND_INDEX_KEY"],
                             issuer_keys=self.env["MAAS_ISSUER_KEYS"], log_level="WARNING")

    def engine(self):  # noqa: ANN201
        from maas.db import get_engine

        return get_engine(self.settings())

    def __enter__(self) -> Stack:
        import psycopg
        import redis

        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.db_name}"')
        redis.Redis.from_url(self.redis_url).flushdb()
        try:
            self._build()
            self.start_server()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _build(self) -> None:
        from maas import accounts
        from maas.db import session_scope
        from maas.demo_server import build_demo

        settings = self.settings()
        started = time.perf_counter()
        info = build_demo(settings)
        self.creds = info["credentials"]
        with session_scope(self.engine()) as s:
            for i in range(self.n_users):
                phone = f"1391{i:07d}"
                accounts.create_user(s, phone=phone, password=PASSWORD, name=f"乘客{i}", role="passenger")
                self.passengers.append((phone, PASSWORD))
        print(f"# setup: demo city imported ({info['stops']} stops), {self.n_users} passengers seeded in "
              f"{time.perf_counter() - started:.1f} s; database {self.db_name}", flush=True)

    def start_server(self) -> None:
        cmd = [sys.executable, "-m", "maas", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--workers", str(self.workers)]
        self.server = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=subprocess.DEVNULL,
                                       stderr=open(self.data_dir / "server.log", "ab"), start_new_session=True)
        deadline = time.time() + READY_TIMEOUT_S
        while time.time() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"the server exited: see {self.data_dir / 'server.log'}")
            try:
                if httpx.get(self.base_url + "/health", timeout=2).status_code == 200:
                    # every worker loads the timetable lazily; a few plans warm both of them
                    for _ in range(4):
                        httpx.get(self.base_url + "/v1/plan", timeout=30, params={
                            "from": "yx-bus:BC", "to": "yx-bus:SZF",
                            "depart_at": dt.datetime.now(SHANGHAI).replace(microsecond=0).isoformat()})
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the server did not become healthy in {READY_TIMEOUT_S} s "
                           f"(see {self.data_dir / 'server.log'})")

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()
        self.server = None

    def __exit__(self, *exc: object) -> None:
        import psycopg

        from maas.db import dispose_engines

        self.stop_server()
        dispose_engines()
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        except psycopg.Error as e:  # the server may be down after a fault: say so, keep the rest of the cleanup
            print(f"# could not drop {self.db_name}: {e}", flush=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def gate_for(self, operator_id: str) -> dict[str, str]:
        return next(g for g in self.creds["gates"] if g["operator_id"] == operator_id)


# --------------------------------------------------------------------------- load driver


@dataclass
class Sample:
    endpoint: str
    started: float  #: time.monotonic() at the request
    ms: float
    status: int  #: HTTP status, or 0 for a connection error / timeout
    clean: bool = True  #: a 5xx answered with the contract's JSON error body (not a bare traceback)


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    budget: int = 10**9
    deadline: float = 0.0

    def done(self) -> bool:
        return len(self.samples) >= self.budget or time.monotonic() >= self.deadline


async def _call(client: httpx.AsyncClient, rec: Recorder, endpoint: str, method: str, url: str,
                **kw: Any) -> httpx.Response | None:
    t0 = time.monotonic()
    try:
        r = await client.request(method, url, **kw)
    except httpx.HTTPError:
        rec.samples.append(Sample(endpoint, t0, (time.monotonic() - t0) * 1000, 0, False))
        return None
    clean = True
    if r.status_code >= 500:
        try:
            clean = "error" in r.json()
        except ValueError:
            clean = False
    rec.samples.append(Sample(endpoint, t0, (time.monotonic() - t0) * 1000, r.status_code, clean))
    return r


def _now_iso(minutes: float = 0) -> str:
    return (dt.datetime.now(SHANGHAI) + dt.timedelta(minutes=minutes)).replace(microsecond=0).isoformat()


async def _passenger(stack: Stack, client: httpx.AsyncClient, rec: Recorder, phone: str, password: str,
                     rng: random.Random) -> None:
    headers: dict[str, str] = {}
    while not rec.done():
        if not headers:
            r = await _call(client, rec, "token", "POST", "/v1/auth/token", json={"phone": phone,
                                                                                  "password": password})
            if r is None or r.status_code != 200:
                await asyncio.sleep(0.5)
                continue
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for _ in range(3):
            a, b = rng.sample(PLAN_STOPS, 2)
            await _call(client, rec, "plan", "GET", "/v1/plan",
                        params={"from": a, "to": b, "depart_at": _now_iso(rng.uniform(0, 120))})
        a, b = rng.choice(RIDES)
        r = await _call(client, rec, "plan", "GET", "/v1/plan", params={"from": a, "to": b,
                                                                        "depart_at": _now_iso(2)})
        if r is None or r.status_code != 200:
            continue
        rides = [it for it in r.json()["itineraries"] if [x["mode"] for x in it["legs"] if x["mode"] != "WALK"]
                 == ["BUS"]]
        if not rides:
            continue
        r = await _call(client, rec, "offer", "POST", "/v1/offers", headers=headers,
                        json={"itinerary": rides[0], "travelers": [{"rider_category": "adult"}]})
        if r is None or r.status_code == 401:
            headers = {}
            continue
        if r.status_code != 201:
            continue
        offer = r.json()
        r = await _call(client, rec, "order", "POST", "/v1/orders",
                        headers={**headers, "Idempotency-Key": secrets.token_hex(8)},
                        json={"offer_id": offer["offer_id"], "travelers": [
                            {"name": "测试乘客", "id_type": "cn_resident_id", "id_number": _resident_id(rng),
                             "rider_category": "adult"}]})
        if r is None or r.status_code != 201:
            continue
        order = r.json()
        r = await _call(client, rec, "confirm", "POST", order["payment"]["confirm_url"], headers=headers)
        if r is None or r.status_code != 200:
            continue
        r = await _call(client, rec, "order_get", "GET", f"/v1/orders/{order['order_id']}", headers=headers)
        if r is None or r.status_code != 200 or not r.json()["tickets"]:
            continue
        ticket = r.json()["tickets"][0]
        r = await _call(client, rec, "qr", "GET", f"/v1/tickets/{ticket['ticket_id']}/qr", headers=headers)
        if r is None or r.status_code != 200:
            continue
        leg = ticket["legs"][0]
        gate = stack.gate_for(leg["operator_id"])
        await _call(client, rec, "validate", "POST", "/v1/gates/validate",
                    headers={"Authorization": f"Bearer {gate['token']}"},
                    json={"gate_id": gate["gate_id"], "stop_id": leg["from_stop_id"],
                          "payload": r.json()["payload"]})


_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]


def _resident_id(rng: random.Random) -> str:
    body = f"110101{rng.randint(1950, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, _WEIGHTS)) % 11]


async def drive(stack: Stack, *, duration_s: float, max_requests: int, seed: int,
                users: int | None = None) -> Recorder:
    """Runs the virtual passengers until the deadline or the request budget; returns every sample."""
    rec = Recorder(budget=max_requests, deadline=time.monotonic() + duration_s)
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=15, limits=limits) as client:
        await asyncio.gather(*[_passenger(stack, client, rec, phone, pw, random.Random(rng.random()))
                               for phone, pw in stack.passengers[:users or len(stack.passengers)]])
    return rec


def summarize(samples: list[Sample], wall_s: float) -> dict[str, Any]:
    import numpy as np

    by: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by[s.endpoint].append(s)
    out: dict[str, Any] = {"requests": len(samples), "wall_s": round(wall_s, 1),
                           "throughput_rps": round(len(samples) / wall_s, 1) if wall_s else None,
                           "errors": sum(1 for s in samples if s.status == 0 or s.status >= 500),
                           "unclean_5xx_or_connection_errors": sum(1 for s in samples if not s.clean),
                           "endpoints": {}}
    for name, xs in sorted(by.items()):
        ms = np.array([s.ms for s in xs])
        statuses: dict[str, int] = defaultdict(int)
        for s in xs:
            statuses[str(s.status)] += 1
        out["endpoints"][name] = {
            "n": len(xs), "rps": round(len(xs) / wall_s, 1) if wall_s else None,
            "error_rate": round(sum(1 for s in xs if s.status == 0 or s.status >= 500) / len(xs), 4),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1), "statuses": dict(sorted(statuses.items()))}
    return out


# --------------------------------------------------------------------------- invariants


def print_table(summary: dict[str, Any], title: str = "") -> None:
    """One line per endpoint: n, req/s, error rate, p50/p99/max ms, statuses."""
    print(f"{title}requests {summary['requests']} in {summary['wall_s']} s = {summary['throughput_rps']} req/s, "
          f"errors (5xx or no answer) {summary['errors']}, unclean {summary['unclean_5xx_or_connection_errors']}")
    print(f"  {'endpoint':<10} {'n':>6} {'req/s':>7} {'err%':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    for name, e in summary["endpoints"].items():
        print(f"  {name:<10} {e['n']:>6} {e['rps']:>7} {e['error_rate'] * 100:>6.2f} {e['p50_ms']:>8} "
              f"{e['p99_ms']:>8} {e['max_ms']:>8}  {json.dumps(e['statuses'])}")


def invariants(engine: Any, *, recognise: bool = True) -> dict[str, Any]:
    """Checks, with SQL over the whole database, what must hold after any load or fault.

    With ``recognise`` the job ``clearing.recognise_uses`` runs first, as the scheduler would (gates record
    uses; the job posts their revenue), and its time is reported in ``recognition_job_s``.

    paid_orders_without_all_tickets: orders past payment (ticketed / partly or fully refunded) whose
        tickets are fewer than their travellers; orders stuck in ``paid`` (payment recorded, tickets not);
    succeeded_payments_not_ticketed; orders_without_travelers (a half-written order); tickets_without_legs;
    legs_accepted_twice: legs with more than one accepted gate validation; used_legs_without_one_acceptance;
    unbalanced_entries: journal entries whose lines do not sum to 0; used_legs_not_recognised_once: used legs
    without exactly one closing line in the journal; uses_pending: uses the job left unrecognised.
    """
    import sqlalchemy as sa

    job_s = None
    if recognise:
        from sqlmodel import Session

        from clearing.tasks import recognise_uses

        t0 = time.perf_counter()
        with Session(engine) as session:
            job_summary = recognise_uses(session)
            session.commit()
        job_s = round(time.perf_counter() - t0, 3)

    q = {
        "orders": "SELECT count(*) FROM ticket_orders",
        "tickets": "SELECT count(*) FROM tickets",
        "legs_used": "SELECT count(*) FROM ticket_legs WHERE status = 'used'",
        "journal_entries": "SELECT count(*) FROM clearing_journal_entries",
        "paid_orders_without_all_tickets": """
            SELECT count(*) FROM ticket_orders o
            WHERE o.status IN ('paid', 'ticketed', 'partially_refunded', 'refunded')
              AND (SELECT count(*) FROM tickets t WHERE t.order_id = o.order_id)
                  < (SELECT count(*) FROM ticket_travelers v WHERE v.order_id = o.order_id)""",
        "orders_stuck_paid": "SELECT count(*) FROM ticket_orders WHERE status = 'paid'",
        "succeeded_payments_not_ticketed": """
            SELECT count(*) FROM ticket_payments p JOIN ticket_orders o ON o.order_id = p.order_id
            WHERE p.status = 'succeeded' AND o.status NOT IN ('ticketed', 'partially_refunded', 'refunded')""",
        "orders_without_travelers": """
            SELECT count(*) FROM ticket_orders o
            WHERE NOT EXISTS (SELECT 1 FROM ticket_travelers v WHERE v.order_id = o.order_id)""",
        "tickets_without_legs": """
            SELECT count(*) FROM tickets t
            WHERE NOT EXISTS (SELECT 1 FROM ticket_legs l WHERE l.ticket_id = t.ticket_id)""",
        "legs_accepted_twice": """
            SELECT count(*) FROM (SELECT leg_id FROM ticket_validations WHERE result = 'accepted' AND leg_id IS NOT NULL
                                  GROUP BY leg_id HAVING count(*) > 1) x""",
        "used_legs_without_one_acceptance": """
            SELECT count(*) FROM ticket_legs l WHERE l.status = 'used' AND
              (SELECT count(*) FROM ticket_validations v WHERE v.leg_id = l.leg_id AND v.result = 'accepted') <> 1""",
        "unbalanced_entries": """
            SELECT count(*) FROM (SELECT entry_id FROM clearing_journal_lines GROUP BY entry_id
                                  HAVING sum(amount) <> 0) x""",
        "used_legs_not_recognised_once": """
            SELECT count(*) FROM ticket_legs l WHERE l.status = 'used' AND
              (SELECT count(*) FROM clearing_journal_lines j WHERE j.leg_id = l.leg_id AND j.purpose = 'close') <> 1""",
        "uses_pending": "SELECT count(*) FROM clearing_validations WHERE pending",
        "sold_tickets_without_sale_entry": """
            SELECT count(*) FROM tickets t WHERE NOT EXISTS (
              SELECT 1 FROM clearing_journal_entries e WHERE e.event_key = 'sale:' || t.ticket_id)""",
    }
    with engine.connect() as conn:
        got = {k: int(conn.execute(sa.text(v)).scalar() or 0) for k, v in q.items()}
    bad = [k for k in q if k not in ("orders", "tickets", "legs_used", "journal_entries") and got[k]]
    if not recognise:  # uses may rightly wait for the job
        bad = [k for k in bad if k not in ("used_legs_not_recognised_once", "uses_pending")]
    got["ok"] = not bad
    got["violations"] = bad
    if job_s is not None:
        got["recognition_job_s"] = job_s
        got["recognition_job"] = job_summary
    return got


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--max-requests", type=int, default=20_000)
    p.add_argument("--users", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--database-url", default=os.environ.get("MAAS_BENCH_DATABASE_URL",
                                                            "postgresql://postgres@127.0.0.1:5432/test"))
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    a = p.parse_args(argv)
    with Stack(database_url=a.database_url, redis_url=a.redis_url, workers=a.workers, port=a.port,
               users=a.users) as stack:
        started = time.monotonic()
        rec = asyncio.run(drive(stack, duration_s=a.duration, max_requests=a.max_requests, seed=a.seed))
        wall = time.monotonic() - started
        result = {"workers": a.workers, "virtual_passengers": a.users, "cpus": os.cpu_count(),
                  "load_avg_1m": round(os.getloadavg()[0], 2), **summarize(rec.samples, wall),
                  "invariants": invariants(stack.engine())}
        print_table(result)
        print("invariants:", json.dumps(result["invariants"]))
        print(json.dumps(result, ensure_ascii=False), flush=True)
        return 0 if result["invariants"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
