"""The on-disk timetable cache: round trip, memory mapping, invalidation, atomic writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gtfs_text import stop_times, write_gtfs

import routing.cache as cache_mod
from routing.cache import cache_key, load_or_compile
from routing.compile import CompileOptions
from routing.errors import FeedError
from routing.feeds import FeedSource
from routing.timetable import Timetable

REPO = Path(__file__).resolve().parents[2]

FILES = {
    "stops.txt": """
        stop_id,stop_name,stop_lat,stop_lon
        A,Ä-Platz 站,52.5000,13.4000
        B,Beta,52.5000,13.4030
    """,
    "routes.txt": "route_id,route_short_name,route_type\nR1,1,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T2\n",
    "stop_times.txt": stop_times({"T1": "A 08:00 B 08:10", "T2": "A 09:00 B 09:10"}),
}


@pytest.fixture()
def feed(tmp_path: Path) -> FeedSource:
    return FeedSource("f", write_gtfs(tmp_path / "feed", FILES))


def test_roundtrip_is_memory_mapped_and_equal(feed: FeedSource, tmp_path: Path) -> None:
    tt1, loaded1 = load_or_compile([feed], tmp_path / "cache")
    tt2, loaded2 = load_or_compile([feed], tmp_path / "cache")
    assert (loaded1, loaded2) == (False, True)
    for name in Timetable.array_fields():
        a, b = getattr(tt1, name), getattr(tt2, name)
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), name
    assert isinstance(tt2.pattern_arr, np.memmap) and not tt2.pattern_arr.flags.writeable
    assert tt2.stop_names.tolist()[0] == "Ä-Platz 站"
    assert tt2.first_day_ordinal == tt1.first_day_ordinal
    assert tt2.meta["counts"] == tt1.meta["counts"]
    assert tt2.find_stop("f:B") == 1
    entries = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert len(entries) == 1 and not any(p.name.startswith(".tmp") for p in entries)


def test_content_change_invalidates(feed: FeedSource, tmp_path: Path) -> None:
    _, loaded = load_or_compile([feed], tmp_path / "cache")
    assert not loaded
    (feed.path / "stop_times.txt").write_text(stop_times({"T1": "A 08:00 B 08:12", "T2": "A 09:00 B 09:10"}))
    tt, loaded = load_or_compile([feed], tmp_path / "cache")
    assert not loaded
    assert tt.pattern_arr.tolist() == [8 * 3600, 9 * 3600, 8 * 3600 + 720, 9 * 3600 + 600]
    _, loaded = load_or_compile([feed], tmp_path / "cache")
    assert loaded


def test_options_and_feed_ids_are_part_of_the_key(feed: FeedSource) -> None:
    k = cache_key([feed], CompileOptions())
    assert k == cache_key([feed], CompileOptions())
    assert k != cache_key([feed], CompileOptions(walk_radius_m=300))
    assert k != cache_key([FeedSource("g", feed.path)], CompileOptions())
    assert k != cache_key([FeedSource("f", feed.path, "other_operator")], CompileOptions())


def test_crash_mid_write_leaves_no_cache(feed: FeedSource, tmp_path: Path, monkeypatch) -> None:
    real_save = np.save
    calls = {"n": 0}

    def failing_save(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 10:
            raise OSError("disk full")
        return real_save(*args, **kw)

    monkeypatch.setattr(cache_mod.np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        load_or_compile([feed], tmp_path / "cache")
    monkeypatch.setattr(cache_mod.np, "save", real_save)
    assert [p for p in (tmp_path / "cache").iterdir() if p.is_dir()] == []
    _, loaded = load_or_compile([feed], tmp_path / "cache")
    assert not loaded


def test_broken_feed_is_not_cached(tmp_path: Path) -> None:
    bad = write_gtfs(tmp_path / "bad", {k: v for k, v in FILES.items() if k != "trips.txt"})
    with pytest.raises(FeedError) as ei:
        load_or_compile([FeedSource("bad", bad)], tmp_path / "cache")
    assert "trips.txt" in ei.value.message
    assert [p for p in (tmp_path / "cache").iterdir() if p.is_dir()] == []


_LOAD = r"""
import json, sys, time
from pathlib import Path
from routing.feeds import FeedSource


def hwm_mb():
    # VmHWM: peak RSS of this process image (ru_maxrss would include the parent's peak before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


from routing.cache import load_or_compile
srcs = [FeedSource(Path(p).stem, Path(p)) for p in sys.argv[2:]]
t = time.perf_counter()
tt, loaded = load_or_compile(srcs, Path(sys.argv[1]))
s = time.perf_counter() - t
print(json.dumps({"loaded": loaded, "s": s, "rss_mb": hwm_mb(),
                  "trips": tt.n_trips}))
"""


@pytest.mark.slow
def test_new_york_subway_cache_loads_fast(shared_data: Path, tmp_path: Path) -> None:
    feeds = [str(shared_data / "nyc-mta/subway.zip"), str(shared_data / "nyc-mta/lirr.zip")]
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _LOAD, str(tmp_path / "cache"), *feeds], cwd=REPO,
                             capture_output=True, text=True, check=True, timeout=300)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert [r["loaded"] for r in runs] == [False, True]
    assert runs[1]["trips"] == runs[0]["trips"] == 20621 + 2081
    print(f"subway+lirr: compile {runs[0]['s']:.1f} s, load {runs[1]['s']:.3f} s, load RSS {runs[1]['rss_mb']:.0f} MB")
    assert runs[1]["rss_mb"] < 400  # the load time is printed above and measured by the benchmarks


def test_old_entries_and_stale_temp_dirs_are_pruned(feed: FeedSource, tmp_path: Path) -> None:
    import os

    cache = tmp_path / "cache"
    stale = cache / ".tmp-crashed-writer"
    stale.mkdir(parents=True)
    old = cache_mod.filesystem_now(cache) - 2 * cache_mod.STALE_TMP_S  # ages are on the files' clock
    os.utime(stale, (old, old))
    fresh = cache / ".tmp-writing-now"
    fresh.mkdir()
    keys = []
    for radius in (100.0, 200.0, 300.0, 400.0, 500.0):
        tt, loaded = load_or_compile([feed], cache, CompileOptions(walk_radius_m=radius))
        assert not loaded
        keys.append(Path(tt.meta["cache_dir"]).name)
        d = cache / keys[-1]
        t = cache_mod.filesystem_now(cache) - 100 + len(keys)  # distinct mtimes, newest last
        os.utime(d, (t, t))
    left = sorted(p.name for p in cache.iterdir() if p.is_dir())
    assert not stale.exists() and fresh.exists()
    assert sorted(k for k in keys if k in left) == sorted(keys[-3:])
