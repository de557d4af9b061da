"""The start-up warm-up compiles (or loads from numba's cache) every kernel a search calls (issue 14, part 2).

Run in a fresh interpreter: kernels other tests compiled in this process would hide a kernel the
warm-up misses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import json
from routing import warmup as rw
before = rw.kernel_signatures()
report = rw.warm_kernels()
print(json.dumps({"before": before, "after": rw.kernel_signatures(), "report": report}))
"""


def _entry_kernels() -> set[str]:
    """Every kernel the Python side of routing calls (``K._x(`` / ``kernels._x(``), read from the source."""
    names: set[str] = set()
    for path in (REPO / "routing").glob("*.py"):
        if path.name in ("kernels.py", "warmup.py"):
            continue
        names |= set(re.findall(r"\b(?:K|kernels)\.(_[a-z_0-9]+)\(", path.read_text(encoding="utf-8")))
    return names


def test_warm_up_compiles_every_kernel_the_searches_call() -> None:
    entry = _entry_kernels()
    assert {"_raptor", "_raptor_range", "_departures_in_window", "_reverse_patterns", "_mcraptor",
            "_mcraptor_fare"} <= entry, entry  # the scan finds the kernels (it cannot pass vacuously)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=1800, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(not sigs for sigs in result["before"].values()), "nothing is compiled before the warm-up"
    after = result["after"]
    missing = sorted(name for name in entry if not after.get(name))
    assert not missing, f"kernels the warm-up leaves uncompiled: {missing}"
    # every kind of search found something on the tiny network, static and real time (merged or not)
    queries = result["report"]["queries"]
    assert set(queries) == {"static", "realtime", "realtime_merged"}
    for variant, counts in queries.items():
        assert set(counts) >= {"earliest_arrival", "depart_at", "arrive_by", "range", "range_profile", "fare",
                               "max_fare"}, counts
        assert all(n > 0 for n in counts.values()), (variant, counts)
    # and the compiled kernels are on disk: numba's index file of every called kernel exists
    cache_dir = Path(result["report"]["cache_dir"])
    for name in entry:
        assert list(cache_dir.glob(f"kernels.{name}-*.nbi")), f"no cache index for {name} in {cache_dir}"
