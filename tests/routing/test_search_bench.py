"""The routing benchmark harness (``run_benchmark``) on a small real feed."""

from __future__ import annotations

import json
from datetime import date

from routing.bench import feed_sources, random_queries, run_benchmark, served_stops
from routing.cache import load_or_compile

CONTRACT_KEYS = {"queries", "compile_s", "load_s", "p50_ms", "p90_ms", "p99_ms", "range_p50_ms", "peak_rss_mb"}


def test_run_benchmark_reports_the_contract_keys(shared_data, tmp_path):
    out = run_benchmark([shared_data / "caltrain-rt" / "caltrain.zip"], date(2023, 11, 7), queries=40, seed=1,
                        queries_file=None, footpaths_file=None, max_rides=3, cache_dir=tmp_path / "cache",
                        range_queries=10, plan_queries=5)
    assert CONTRACT_KEYS <= set(out)
    assert out["queries"] == 40 and out["found"] > 0
    assert 0 < out["p50_ms"] <= out["p90_ms"] <= out["p99_ms"]
    assert out["range_p50_ms"] > 0 and out["peak_rss_mb"] > 0 and out["compile_s"] >= 0
    json.dumps(out)
    again = run_benchmark([shared_data / "caltrain-rt" / "caltrain.zip"], date(2023, 11, 7), queries=10, seed=1,
                          queries_file=None, footpaths_file=None, max_rides=None, cache_dir=tmp_path / "cache",
                          range_queries=2, plan_queries=2)
    assert again["cached"] is True and again["max_rides"] == 5


def test_queries_are_seeded_and_between_served_stops(shared_data, tmp_path):
    tt, _ = load_or_compile(feed_sources([shared_data / "hk-xrl" / "hk_xrl.zip"]), tmp_path / "cache")
    d = date(2026, 1, 28)
    a = random_queries(tt, d, 20, seed=3)
    assert a == random_queries(tt, d, 20, seed=3) and a != random_queries(tt, d, 20, seed=4)
    served = set(tt.stop_ids[served_stops(tt, d)].tolist())
    assert all(o in served and t in served and o != t for o, t, _ in a)
    assert all(6 <= q[2].hour < 22 for q in a)


def test_queries_file(shared_data, tmp_path):
    qf = tmp_path / "q.jsonl"
    qf.write_text('{"from": "hk_xrl:WEK", "to": "hk_xrl:GZN", "depart": "2026-01-28T08:00:00+08:00"}\n')
    out = run_benchmark([shared_data / "hk-xrl" / "hk_xrl.zip"], date(2026, 1, 28), queries=0, seed=1,
                        queries_file=qf, footpaths_file=None, max_rides=2, cache_dir=tmp_path / "cache",
                        range_queries=1, plan_queries=1)
    assert out["queries"] == 1 and out["found"] == 1
