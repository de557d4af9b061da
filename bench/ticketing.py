"""Ticketing benchmark on PostgreSQL + Redis: orders/s end to end, gate validations/s, offline QR checks/s.

    python bench/ticketing.py [--orders 300] [--threads 4] [--database-url URL] [--redis-url URL]

Creates (and drops) its own PostgreSQL database next to ``--database-url``
(default ``$MAAS_TEST_DATABASE_URL`` or ``postgresql://postgres@127.0.0.1:5432/test``),
builds the demo city, and drives the real app in process over HTTP (FastAPI
TestClient: app, database and Redis work are measured, not the network):

- **orders end to end**: offer -> order -> sandbox payment confirmation
  (tickets issued, clearing sale posted) per order, one traveller, a bus +
  metro journey, ``--threads`` concurrent passengers;
- **online gate validations**: one QR per ticket validated at the bus gate
  (signature, ticket look-up, atomic admission, validation record, clearing
  use row), concurrently; p50/p99 latency per request; then the job
  ``clearing.recognise_uses`` posts their revenue (``recognitions_per_s``) and
  every used leg is checked to be closed exactly once in the journal;
- **offline QR verifications per core**: `ticketing.qr.verify_qr` in one
  thread for both QR kinds;
- **QR payload size** in bytes for both kinds.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _count_sql(engine: object) -> dict[str, int]:
    """Counts the SQL statements the engine sends (round trips), in ``["n"]``."""
    from sqlalchemy import event

    counter = {"n": 0}

    show = os.environ.get("BENCH_SHOW_SQL")

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        counter["n"] += 1
        if show:
            print("SQL", " ".join(statement.split())[:160], file=sys.stderr)

    event.listen(engine, "before_cursor_execute", count)
    return counter


def _profile(what: str, call: object, sql: dict[str, int], repeat: int = 20) -> None:
    """``call`` ``repeat`` times under cProfile in this thread; prints the top functions and SQL per call."""
    import cProfile
    import pstats

    before = sql["n"]
    try:  # the app runs in TestClient's event-loop thread: a profiler of every thread sees it
        import yappi
    except ImportError:
        yappi = None
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    if yappi is not None:
        yappi.set_clock_type(os.environ.get("BENCH_PROFILE_CLOCK", "cpu"))
        yappi.clear_stats()
        yappi.start()
    else:
        prof.enable()
    for _ in range(repeat):
        call()  # type: ignore[operator]
    if yappi is not None:
        yappi.stop()
    else:
        prof.disable()
    ms = (time.perf_counter() - t0) * 1000 / repeat
    print(f"--- {what}: {ms:.1f} ms each (profiled), {(sql['n'] - before) / repeat:.1f} SQL statements each",
          file=sys.stderr)
    if yappi is not None:
        stats = yappi.get_func_stats()
        stats.sort("ttot", "desc")
        for f in list(stats)[:int(os.environ.get("BENCH_PROFILE_TOP", "60"))]:
            if ("/site-packages/" in f.module and not os.environ.get("BENCH_PROFILE_ALL")
                    and not any(k in f.module for k in ("sqlalchemy", "psycopg", "redis"))):
                continue
            print(f"{f.ttot * 1000 / repeat:8.2f} ms {f.tsub * 1000 / repeat:8.2f} ms {f.ncall / repeat:6.1f}x "
                  f"{f.module.split('site-packages/')[-1].split('/work/main/')[-1]}:{f.lineno} {f.name}",
                  file=sys.stderr)
    else:
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(35)


def main() -> None:  # noqa: C901 - a linear script
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--profile", action="store_true",
                    help="also print (stderr) where one thread's validations and orders spend their time (cProfile)")
    ap.add_argument("--database-url", default=os.environ.get("MAAS_TEST_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--redis-url", default=os.environ.get("MAAS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = ap.parse_args()

    import psycopg
    from fastapi.testclient import TestClient

    from maas import accounts
    from maas.app import create_app
    from maas.db import dispose_engines, get_engine, session_scope, upgrade_database
    from maas.demo import write_demo_city
    from maas.feeds import import_feed
    from maas.logging import configure_logging
    from maas.settings import load_settings
    from ticketing.qr import IssuerKeys, verify_qr
    from ticketing.qr_client import build_device_qr, generate_device_key

    name = f"maas_bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(args.database_url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    tmp = Path(tempfile.mkdtemp(prefix="maas-bench-"))
    out: dict[str, object] = {"database": "postgresql", "orders": args.orders, "threads": args.threads,
                              "cpus": os.cpu_count(), "load_avg_1m_before": round(os.getloadavg()[0], 2)}
    try:
        url = args.database_url.rpartition("/")[0] + "/" + name
        # limits raised so the limiter never answers (it still counts in Redis on every request), as in load.py
        settings = load_settings(environment="test", data_dir=tmp / "data", database_url=url, redis_url=args.redis_url,
                                 log_level="WARNING", rate_limits="auth=100000/60,plan=100000/60,gates=100000/60,"
                                                                  "offers=100000/60")
        upgrade_database(settings)
        engine = get_engine(settings)
        today = dt.date.today()
        feeds = write_demo_city(tmp / "city", today)
        with session_scope(engine) as s:
            for f in feeds:
                import_feed(s, path=f.path, feed_id=f.feed_id, operator_id=f.operator_id)
            _gate, gate_token = accounts.create_gate(s, operator_id="yunxi-bus", roaming=True)
        app = create_app(settings)
        configure_logging("WARNING", True)
        from zoneinfo import ZoneInfo

        day = today + dt.timedelta(days=1)
        start = dt.datetime.combine(day, dt.time(6, 0), ZoneInfo("Asia/Shanghai"))
        app.state.clock = lambda: start
        with TestClient(app) as client:
            its = client.get("/v1/plan", params={"from": "yx-bus:YXYZ", "to": "yx-metro:QCDZ",
                                                 "depart_at": (start + dt.timedelta(hours=1)).isoformat()}).json()
            it = next(x for x in its["itineraries"] if "COACH" not in {leg["mode"] for leg in x["legs"]})
            out["journey_modes"] = [leg["mode"] for leg in it["legs"] if leg["mode"] != "WALK"]
            headers = []
            for i in range(args.threads):
                phone = f"1370000{i:04d}"
                with session_scope(engine) as s:
                    accounts.create_user(s, phone=phone, password="bench password 1", name="bench", role="passenger")
                tok = client.post("/v1/auth/token", json={"phone": phone, "password": "bench password 1"}).json()
                headers.append({"Authorization": f"Bearer {tok['access_token']}"})
            weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]

            def rid(n: int) -> str:
                body = f"11010119800101{n % 1000:03d}"
                return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]

            def one_order(i: int) -> tuple[float, str]:
                h = headers[i % args.threads]
                t0 = time.perf_counter()
                r = client.post("/v1/offers", headers=h, json={"itinerary": it,
                                                               "travelers": [{"rider_category": "adult"}]})
                assert r.status_code == 201, r.text
                offer = r.json()
                order = client.post("/v1/orders", headers=h, json={"offer_id": offer["offer_id"], "travelers": [
                    {"name": "张三", "id_type": "cn_resident_id", "id_number": rid(i)}]}).json()
                done = client.post(f"/v1/payments/sandbox/{order['order_id']}/confirm", headers=h).json()
                assert done["status"] == "ticketed", done
                return time.perf_counter() - t0, order["order_id"]

            one_order(10_000)  # warm-up (JIT, caches)
            sql = _count_sql(engine)
            if args.profile:
                _profile("one order end to end (offer, order, sandbox payment)", lambda: one_order(20_000), sql)
            sql["n"] = 0
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                results = list(pool.map(one_order, range(args.orders)))
            wall = time.perf_counter() - t0
            lat = [r[0] * 1000 for r in results]
            out["orders_per_s"] = round(args.orders / wall, 1)
            out["order_e2e_ms"] = {"p50": round(_pct(lat, 0.5), 1), "p99": round(_pct(lat, 0.99), 1)}
            out["sql_statements_per_order"] = round(sql["n"] / args.orders, 1)

            tickets: list[tuple[str, dict]] = []
            for i, h in enumerate(headers):
                for t in client.get("/v1/tickets", headers=h).json()["tickets"]:
                    tickets.append((t["ticket_id"], h))
            payloads = [client.get(f"/v1/tickets/{tid}/qr", headers=h).json()["payload"] for tid, h in tickets]
            gh = {"Authorization": f"Bearer {gate_token}"}

            def validate(p: str) -> tuple[float, str]:
                t1 = time.perf_counter()
                r = client.post("/v1/gates/validate", headers=gh,
                                json={"gate_id": _gate.gate_id, "stop_id": "yx-bus:YXYZ", "payload": p}).json()
                return time.perf_counter() - t1, r["result"]

            validate(payloads.pop())  # warm-up: first use of an operator creates its ledger accounts
            if args.profile:
                _profile("one online gate validation", lambda: validate(payloads.pop()), sql)
            sql["n"] = 0
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                vres = list(pool.map(validate, payloads))
            wall = time.perf_counter() - t0
            vl = [r[0] * 1000 for r in vres]
            out["gate_validations"] = len(vres)
            out["gate_accepted"] = sum(r[1] == "accepted" for r in vres)
            out["gate_validations_per_s"] = round(len(vres) / wall, 1)
            out["gate_ms"] = {"p50": round(_pct(vl, 0.5), 2), "p99": round(_pct(vl, 0.99), 2),
                              "mean": round(statistics.fmean(vl), 2)}
            out["sql_statements_per_validation"] = round(sql["n"] / len(vres), 1)

            # The gates recorded uses; the job clearing.recognise_uses posts their revenue, in committed batches.
            import sqlalchemy as sa

            from clearing.models import JournalLine, Validation
            from clearing.tasks import recognise_uses

            with session_scope(engine) as s:
                pending = s.execute(sa.select(sa.func.count()).select_from(Validation)
                                    .where(Validation.pending)).scalar_one()
            t0 = time.perf_counter()
            with session_scope(engine) as s:
                out["recognition_job"] = recognise_uses(s)
            job_s = time.perf_counter() - t0
            out["recognitions_per_s"] = round(pending / job_s, 1) if pending else None
            with session_scope(engine) as s:
                closes = dict(s.execute(sa.select(JournalLine.leg_id, sa.func.count())
                                        .where(JournalLine.purpose == "close").group_by(JournalLine.leg_id)).all())
                used = s.execute(sa.select(Validation.leg_id)).scalars().all()
            out["used_legs_recognised_once"] = all(closes.get(leg) == 1 for leg in used)

        issuer = IssuerKeys(settings.secret("issuer_keys"))
        keys = issuer.public
        now = dt.datetime.now(dt.UTC)
        tid = "tkt_" + secrets.token_hex(12)
        rotating, _ = issuer.rotating_qr(tid, now=now, ttl_s=30)
        dev, pub = generate_device_key()
        cred = issuer.device_credential(tid, device_key=base64.urlsafe_b64decode(pub + "="), valid_from=now,
                                        valid_until=now + dt.timedelta(hours=2))
        device_qr = build_device_qr(base64.urlsafe_b64encode(cred).decode().rstrip("="), dev, now=now)
        out["qr_bytes"] = {"rotating": len(rotating.encode()), "device_bound": len(device_qr.encode())}
        for kind, payload in (("rotating", rotating), ("device_bound", device_qr)):
            n = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 2.0:
                verify_qr(payload, keys, now=now, ttl_s=30)
                n += 1
            out[f"offline_verifications_per_s_per_core_{kind}"] = round(n / (time.perf_counter() - t0))
    finally:
        dispose_engines()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    out["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
