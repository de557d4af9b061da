"""`make bench`: run every benchmark script and write one JSON summary (issue 14, part 4).

Usage::

    .venv/bin/python bench/run_all.py [--out bench-summary.json] [--only a,b] [--skip a,b] [--quick]
        [--peer-python PY] [--data DIR] [--list]

Each benchmark runs as a subprocess (the commands are the Makefile's
``bench-*`` targets, ``bench/cold_start.py`` and the shared peer harness
``../shared/bench/peer_ferrobus.py``); its JSON output is kept whole. The
summary records, per benchmark, the command line, wall seconds, exit code and
the machine's load average before and after it (this machine is shared:
absolute times move with the load, ratios against a peer run interleaved in
one process much less), plus the core count and platform, and a ``ratios``
section that pulls out the side-by-side figures (ours / ferrobus; first
request / median request after start-up).

Benchmarks that cannot run here are listed under ``skipped`` with the reason:
the ferrobus comparisons need a Python that imports ``ferrobus`` (``--peer-python``
or ``$BENCH_PEER_PYTHON``; e.g. ``pip install --target DIR ferrobus osmium
psutil`` and ``PYTHONPATH=DIR``), the database benchmarks need PostgreSQL
(``$MAAS_TEST_DATABASE_URL`` or the local test server) and Redis;
``bench/faults.py`` restarts the shared PostgreSQL and Redis and runs only
when named with ``--only faults``. ``--quick`` shrinks the slow ones (fewer
queries, the subway only, shorter load) for a smoke run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
MAAS = str(Path(PY).with_name("maas"))
DEFAULT_DATA = REPO.parent / "shared" / "data"
PEER_HARNESS = REPO.parent / "shared" / "bench" / "peer_ferrobus.py"
CITY_BUSES = ("bus_brooklyn", "bus_bronx", "bus_manhattan", "bus_queens", "bus_staten_island",
              "bus_mta_bus_company")


@dataclass
class Bench:
    name: str
    argv: list[str]
    needs: tuple[str, ...] = ()  # "peer", "postgres", "data"
    result_file: str | None = None  # JSON written by the script (else: its stdout)
    env: dict[str, str] = field(default_factory=dict)
    opt_in: bool = False  # only with --only NAME
    timeout_s: int = 3 * 3600


def benchmarks(data: Path, work: Path, peer_python: str | None, quick: bool) -> list[Bench]:
    nyc = data / "nyc-mta"
    city = ["--feed", str(nyc / "subway.zip")] + [x for b in CITY_BUSES for x in ("--feed", str(nyc / f"{b}.zip"))]
    q = "200" if quick else "1000"
    out = [
        Bench("routing_subway", [MAAS, "bench", "routing", "--feed", str(nyc / "subway.zip"), "--date", "2026-10-07",
                                 "--queries", q, "--seed", "1", "--max-rides", "3", "--json"], ("data",)),
        Bench("routing_city", [MAAS, "bench", "routing", *city, "--date", "2026-10-07", "--queries", q, "--seed", "1",
                               "--max-rides", "3", "--json"], ("data",)),
        Bench("peer_ferrobus_subway", [peer_python or "", str(PEER_HARNESS), "--network", "subway", "--project",
                                       str(REPO), "--data-dir", str(data), "--queries", q,
                                       "--out-dir", str(work / "peer_subway")],
              ("peer", "data"), result_file=str(work / "peer_subway" / "summary.json")),
        Bench("peer_ferrobus_city", [peer_python or "", str(PEER_HARNESS), "--network", "city", "--project", str(REPO),
                                     "--data-dir", str(data), "--queries", q, "--out-dir", str(work / "peer_city")],
              ("peer", "data"), result_file=str(work / "peer_city" / "summary.json")),
        Bench("routing_vs_ferrobus_midtown", [peer_python or "", str(REPO / "bench" / "routing_vs_ferrobus.py")],
              ("peer", "data")),
        Bench("cold_start", [PY, str(REPO / "bench" / "cold_start.py"), "--repeat", "20" if quick else "100",
                             "--out", str(work / "cold_start.json")], result_file=str(work / "cold_start.json")),
        Bench("fares_routing", [PY, str(REPO / "bench" / "fares_routing.py"), "--queries", "100" if quick else "300"]),
        Bench("fares", [PY, str(REPO / "bench" / "fares.py")] + (["--n", "5000"] if quick else [])),
        Bench("face", [PY, str(REPO / "bench" / "face.py"), "--json"] + (["--repeat", "1"] if quick else []),
              ("data",)),
        Bench("ticketing", [PY, str(REPO / "bench" / "ticketing.py")] + (["--orders", "60"] if quick else []),
              ("postgres",)),
        Bench("clearing", [PY, str(REPO / "bench" / "clearing.py")] + (["--legs", "100000"] if quick else []),
              ("postgres",)),
        Bench("load", [PY, str(REPO / "bench" / "load.py")] + (["--duration", "20"] if quick else []),
              ("postgres",)),
        Bench("faults", [PY, str(REPO / "bench" / "faults.py")], ("postgres",), opt_in=True),
    ]
    if quick:
        out = [b for b in out if b.name not in ("routing_city", "peer_ferrobus_city")]
    return out


def _postgres_ok() -> tuple[bool, str]:
    url = os.environ.get("MAAS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import sqlalchemy as sa

        with sa.create_engine(url).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True, ""
    except Exception as exc:  # noqa: BLE001 - any failure means: skip
        return False, f"PostgreSQL not reachable at {url}: {type(exc).__name__}"


def _peer_ok(peer_python: str | None) -> tuple[bool, str]:
    if not peer_python:
        return False, "no Python with ferrobus (--peer-python or BENCH_PEER_PYTHON)"
    try:
        r = subprocess.run([peer_python, "-c", "import ferrobus, osmium"], capture_output=True, text=True)
    except OSError as exc:
        return False, f"{peer_python} cannot run ({exc.strerror}): no Python with ferrobus"
    return (r.returncode == 0, "" if r.returncode == 0 else f"{peer_python} cannot import ferrobus/osmium")


def _parse_json(stdout: str) -> object | None:
    text = stdout.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("RESULT "):
            line = line[len("RESULT "):]
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def _dig(obj: object, *path: str) -> object | None:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def ratios(results: dict[str, dict]) -> dict[str, object]:
    """The side-by-side figures: ours / peer (ferrobus), first request / median after start-up."""
    out: dict[str, object] = {}
    for net in ("subway", "city"):
        summary = _dig(results, f"peer_ferrobus_{net}", "result")
        if isinstance(summary, dict):
            out[f"peer_ferrobus_{net}"] = {k: v for k, v in _flatten(summary).items()
                                           if "ratio" in k.lower()}
    cold = _dig(results, "cold_start", "result", "modes")
    if isinstance(cold, dict):
        out["cold_start_first_over_median"] = {
            f"{mode}/{kind}": v.get("first_over_median") for mode, m in cold.items()
            for kind, v in (m.get("kinds") or {}).items()}
    fr = _dig(results, "fares_routing", "result")
    if isinstance(fr, dict):
        out["fares_routing"] = {k: v for k, v in _flatten(fr).items() if "ratio" in k.lower()}
    return out


def _flatten(obj: object, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            flat.update(_flatten(v, f"{prefix}{k}." if isinstance(v, dict) else f"{prefix}{k}"))
    else:
        flat[prefix.rstrip(".")] = obj
    return flat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench-summary.json")
    ap.add_argument("--only", default="", help="comma list of benchmark names")
    ap.add_argument("--skip", default="", help="comma list of benchmark names")
    ap.add_argument("--quick", action="store_true", help="smaller runs (smoke test of the whole set)")
    ap.add_argument("--peer-python", default=os.environ.get("BENCH_PEER_PYTHON"))
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("MAAS_SHARED_DATA", DEFAULT_DATA)))
    ap.add_argument("--list", action="store_true", help="print the benchmarks and exit")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="maas-bench-"))
    only = {x for x in args.only.split(",") if x}
    skip = {x for x in args.skip.split(",") if x}
    todo = benchmarks(args.data, work, args.peer_python, args.quick)
    if args.list:
        for b in todo:
            print(b.name, " ".join(b.argv), "(opt-in)" if b.opt_in else "")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    summary: dict = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "load_avg": os.getloadavg(), "platform": platform.platform(),
                    "python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip(),
        "quick": args.quick, "results": {}, "skipped": {},
    }
    checks = {"postgres": _postgres_ok, "peer": lambda: _peer_ok(args.peer_python),
              "data": lambda: (args.data.is_dir(), f"no shared data at {args.data}")}
    known: dict[str, tuple[bool, str]] = {}
    for b in todo:
        if (only and b.name not in only) or b.name in skip or (b.opt_in and b.name not in only):
            if b.opt_in and b.name not in only:
                summary["skipped"][b.name] = "opt-in (restarts shared services): --only " + b.name
            continue
        reasons = []
        for need in b.needs:
            if need not in known:
                known[need] = checks[need]()
            ok, why = known[need]
            if not ok:
                reasons.append(why)
        if reasons:
            summary["skipped"][b.name] = "; ".join(reasons)
            print(f"[bench] skip {b.name}: {'; '.join(reasons)}", file=sys.stderr)
            continue
        print(f"[bench] {b.name}: {' '.join(b.argv)}", file=sys.stderr, flush=True)
        load_before = os.getloadavg()
        started = time.perf_counter()
        env = {**os.environ, **b.env}
        try:
            proc = subprocess.run(b.argv, cwd=work, env=env, capture_output=True, text=True, timeout=b.timeout_s)
            code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, stdout, stderr = -1, exc.stdout or "", f"timeout after {b.timeout_s} s"
        seconds = round(time.perf_counter() - started, 1)
        result = None
        if b.result_file and Path(b.result_file).is_file():
            result = json.loads(Path(b.result_file).read_text(encoding="utf-8"))
        if result is None:
            result = _parse_json(stdout if isinstance(stdout, str) else stdout.decode())
        entry = {"command": " ".join(b.argv), "seconds": seconds, "exit_code": code,
                 "load_avg_before": load_before, "load_avg_after": os.getloadavg(), "result": result}
        if code != 0 or result is None:
            entry["stderr_tail"] = (stderr if isinstance(stderr, str) else stderr.decode())[-2000:]
        summary["results"][b.name] = entry
        print(f"[bench] {b.name}: exit {code} in {seconds} s", file=sys.stderr, flush=True)
        args.out.write_text(json.dumps({**summary, "ratios": ratios(summary["results"])}, indent=2,
                                       ensure_ascii=False) + "\n", encoding="utf-8")
    summary["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    summary["ratios"] = ratios(summary["results"])
    args.out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    print(f"[bench] summary: {args.out}", file=sys.stderr)
    failed = [n for n, e in summary["results"].items() if e["exit_code"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
