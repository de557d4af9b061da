"""`make bench` (bench/run_all.py) writes one JSON summary with the machine's cores and load (issue 14, part 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_summary_has_machine_figures_results_and_skip_reasons(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("BENCH_PEER_PYTHON", None)
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run_all.py"), "--quick", "--only", "fares,peer_ferrobus_subway",
         "--peer-python", str(tmp_path / "no-such-python"), "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text(encoding="utf-8"))
    machine = summary["machine"]
    assert machine["cores"] == os.cpu_count() and len(machine["load_avg"]) == 3
    fares = summary["results"]["fares"]
    assert fares["exit_code"] == 0 and isinstance(fares["result"], dict) and fares["result"], fares
    assert "bench/fares.py" in fares["command"] and len(fares["load_avg_before"]) == 3 and fares["seconds"] > 0
    # the peer comparison cannot run without ferrobus: listed as skipped with the reason, not silently dropped
    assert "peer_ferrobus_subway" not in summary["results"]
    assert "ferrobus" in summary["skipped"]["peer_ferrobus_subway"]
    assert set(summary["results"]) == {"fares"}, "--only runs only what it names"
    assert "ratios" in summary
