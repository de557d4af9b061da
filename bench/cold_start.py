"""Cold start: the first request after `/health` says ready against the hundredth (issue 14, part 2).

Usage::

    .venv/bin/python bench/cold_start.py [--modes fresh,restart,no-warmup] [--repeat 100] [--out FILE]

Each *mode* starts ``maas demo`` (the real CLI, a subprocess) on a fresh data
directory and a free port, waits until ``/health`` answers with ``ready:
true``, then sends, for each query kind — ``plan`` (depart-at: RAPTOR +
McRAPTOR), ``arrive_by``, ``range`` (``window_s=3600``), ``fare``
(``optimize=fare``) — the first request of every kind in turn, then the
others until each kind has had ``--repeat``; departure times move by a minute
per request so no two are the same. Modes:

* ``fresh``: an empty numba kernel cache (``NUMBA_CACHE_DIR`` in a temp dir),
  as on a fresh clone: the kernels compile during start-up;
* ``restart``: the same kernel cache again (what every later start sees);
* ``no-warmup``: an empty kernel cache and ``MAAS_WARM_UP=0``: the kernels
  compile on the first requests (the behaviour issue 14 reported).

Prints one JSON object: per mode the seconds from spawning the process to
``/health`` ready, and per query kind the first request's, the hundredth's and
the median's milliseconds and ``first_over_median``; plus the machine's core
count and load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
MAAS = Path(sys.executable).with_name("maas")
SH = dt.timezone(dt.timedelta(hours=8))
KINDS = ("plan", "arrive_by", "range", "fare")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _params(kind: str, i: int, day: dt.date) -> dict[str, str | int]:
    at = dt.datetime.combine(day, dt.time(7, 0), SH) + dt.timedelta(minutes=i)
    base: dict[str, str | int] = {"from": "yx-bus:RMGC", "to": "yx-coach:QSX"}
    if kind == "arrive_by":
        return {**base, "arrive_by": (at + dt.timedelta(hours=3)).isoformat()}
    base["depart_at"] = at.isoformat()
    if kind == "range":
        base["window_s"] = 3600
    elif kind == "fare":
        base["optimize"] = "fare"
    return base


def run_mode(mode: str, kernel_cache: Path, repeat: int, timeout_s: float) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"cold-start-{mode}-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAAS_", "DATABASE_URL", "REDIS_URL"))}
    env.update({"MAAS_DATA_DIR": str(data_dir), "NUMBA_CACHE_DIR": str(kernel_cache),
                "MAAS_RATE_LIMITS": "auth=100000/60,plan=1000000/60,gates=100000/60", "MAAS_LOG_LEVEL": "WARNING",
                "PYTHONDONTWRITEBYTECODE": "1"})
    if mode == "no-warmup":
        env["MAAS_WARM_UP"] = "0"
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    started = time.perf_counter()
    proc = subprocess.Popen([str(MAAS), "demo", "--port", str(port)], cwd=data_dir, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=600) as client:
            health = None
            while time.perf_counter() - started < timeout_s:
                if proc.poll() is not None:
                    raise RuntimeError(f"maas demo exited ({proc.returncode}); see {data_dir / 'server.log'}")
                try:
                    r = client.get("/health")
                    if r.status_code == 200 and r.json().get("ready"):
                        health = r.json()
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            if health is None:
                raise RuntimeError(f"not ready after {timeout_s} s")
            ready_s = time.perf_counter() - started
            day = dt.date.today() + dt.timedelta(days=1)
            times: dict[str, list[float]] = {k: [] for k in KINDS}
            found: dict[str, int] = {k: 0 for k in KINDS}
            for i in range(repeat):
                for kind in KINDS:
                    t0 = time.perf_counter()
                    r = client.get("/v1/plan", params=_params(kind, i, day))
                    times[kind].append((time.perf_counter() - t0) * 1000)
                    if r.status_code != 200:
                        raise RuntimeError(f"{kind} #{i + 1}: {r.status_code} {r.text[:300]}")
                    found[kind] += len(r.json()["itineraries"]) > 0
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    shutil.rmtree(data_dir, ignore_errors=True)  # kept (with server.log) only when the run failed
    out: dict = {"ready_s": round(ready_s, 2), "warmup": health.get("warmup"), "kinds": {}}
    for kind in KINDS:
        ms = times[kind]
        median = statistics.median(ms[1:]) if len(ms) > 1 else ms[0]
        out["kinds"][kind] = {"first_ms": round(ms[0], 1), "hundredth_ms": round(ms[-1], 1),
                              "median_ms": round(median, 1), "max_after_first_ms": round(max(ms[1:], default=0), 1),
                              "first_over_median": round(ms[0] / median, 2), "with_itineraries": found[kind],
                              "requests": len(ms)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="fresh,restart,no-warmup", help="comma list of fresh, restart, no-warmup")
    ap.add_argument("--repeat", type=int, default=100, help="requests of each kind")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to wait for /health ready")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--kernel-cache", type=Path, help="kernel cache of fresh/restart (default: a new empty dir)")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    shared_cache = args.kernel_cache or Path(tempfile.mkdtemp(prefix="cold-start-kernels-"))
    created = [] if args.kernel_cache else [shared_cache]
    result: dict = {"benchmark": "cold_start", "cores": os.cpu_count(), "load_avg_before": os.getloadavg(),
                    "repeat": args.repeat, "modes": {}}
    for mode in modes:
        if mode == "fresh" or mode == "restart":
            cache = shared_cache  # restart reuses what fresh compiled (run fresh first)
        elif mode == "no-warmup":
            cache = Path(tempfile.mkdtemp(prefix="cold-start-kernels-nowarm-"))
            created.append(cache)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        result["modes"][mode] = run_mode(mode, cache, args.repeat, args.timeout)
        print(f"{mode}: {json.dumps(result['modes'][mode])}", file=sys.stderr)
    result["load_avg_after"] = os.getloadavg()
    for cache in created:
        shutil.rmtree(cache, ignore_errors=True)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
