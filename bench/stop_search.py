"""Stop search speed: queries per second of ``routing.stop_search.search_stops`` on a real feed set.

Usage::

    .venv/bin/python bench/stop_search.py [--feed PATH ...] [--queries 2000] [--seed 3] [--cache-dir DIR]

Default feeds: the whole-city NYC set of ../shared/data/nyc-mta (subway + the six bus zips, ~15,000 stop
rows), compiled once into ``--cache-dir`` (default: a temporary folder kept between runs under /tmp).

Query mix (drawn from the feeds' own names, so most find something): a name's first 3-8 characters,
a word from the middle of a name, two words in another order, a name with its accents removed, one or two
letters (the worst case: thousands of hits to rank), and "near" queries (a stop's location, 500 m)
with and without a name. Prints one JSON object: the index build time (once per timetable), queries/s
per kind and overall, the p50/p99 latency, and the machine's load average (the figures depend on what
else runs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NYC = ["subway", "bus_brooklyn", "bus_bronx", "bus_manhattan", "bus_queens", "bus_staten_island",
       "bus_mta_bus_company"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feed", action="append", type=Path, help="GTFS zip (repeatable; default whole-city NYC)")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "maas-bench-stop-search")
    args = ap.parse_args(argv)

    import numpy as np
    from anyascii import anyascii

    from routing.cache import load_or_compile
    from routing.feeds import FeedSource
    from routing.stop_search import search_stops, stop_index

    feeds = args.feed or [ROOT.parent / "shared" / "data" / "nyc-mta" / f"{n}.zip" for n in NYC]
    t0 = time.perf_counter()
    tt, cached = load_or_compile([FeedSource(p.stem, p, p.stem) for p in feeds], args.cache_dir)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx = stop_index(tt)
    build_s = time.perf_counter() - t0

    rng = random.Random(args.seed)
    places = idx.places.tolist()
    names = [str(tt.stop_names[s]) for s in places]

    def query(kind: str) -> tuple[str | None, tuple[float, float] | None]:
        name = rng.choice(names)
        words = name.split()
        s = places[rng.randrange(len(places))]
        here = (float(tt.stop_lat[s]), float(tt.stop_lon[s]))
        return {
            "prefix": lambda: (name[:rng.randint(3, 8)], None),
            "word": lambda: (rng.choice(words), None),
            "two_words": lambda: (" ".join(rng.sample(words, 2)) if len(words) > 1 else name, None),
            "unaccented": lambda: (anyascii(name).lower(), None),
            "one_or_two_letters": lambda: (name[:rng.randint(1, 2)], None),
            "near": lambda: (None, here),
            "near_and_name": lambda: (str(tt.stop_names[s])[:4], here),
        }[kind]()

    kinds = ["prefix", "word", "two_words", "unaccented", "one_or_two_letters", "near", "near_and_name"]
    per_kind: dict[str, float] = {}
    latencies: list[float] = []
    found = 0
    for kind in kinds:
        qs = [query(kind) for _ in range(max(1, args.queries // len(kinds)))]
        start = time.perf_counter()
        for q, near in qs:
            t = time.perf_counter()
            found += bool(search_stops(tt, q, near=near, radius_m=500, limit=10))
            latencies.append(time.perf_counter() - t)
        per_kind[kind] = round(len(qs) / (time.perf_counter() - start), 1)
    lat_ms = np.asarray(latencies) * 1000
    print(json.dumps({
        "feeds": [p.name for p in feeds], "stops": int(tt.n_stops), "places": len(places),
        "timetable_s": round(load_s, 2), "timetable_from_cache": cached, "index_build_s": round(build_s, 2),
        "queries": len(latencies), "queries_per_s": round(len(latencies) / float(lat_ms.sum() / 1000), 1),
        "queries_per_s_by_kind": per_kind, "p50_ms": round(float(np.percentile(lat_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 2), "answered": found,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
