"""Our RAPTOR against ferrobus (Rust RAPTOR, PyPI ``ferrobus``) on the same queries.

Usage::

    .venv/bin/python bench/routing_vs_ferrobus.py   # installs ferrobus (bench-only, not a dependency) [--feed subway.zip] [--osm midtown.osm.pbf]
        [--date 2026-10-07] [--queries 300] [--seed 1] [--max-rides 3] [--walk-s 600] [--debug]

ferrobus needs a street network (OSM) and snaps origins/destinations to it,
so the queries are random pairs of served stops *inside the OSM extract*
(Midtown Manhattan for the NYC data), departing 06:00-22:00.

Same footpaths: ferrobus computes its transfers and access/egress walks on
the OSM street graph and takes no external list. The script therefore
builds our footpaths from ferrobus's *own* stop-to-street snapping: it asks
ferrobus for every stop's nearby stops (``TransitPoint.nearest_stops``) and
the walking time between them (a walk-only ``find_route``), writes them as a
``--footpaths`` file (``from_stop_id,to_stop_id,walk_seconds``) and compiles
our timetable with it; origins/destinations are stop coordinates on both
sides, with the access/egress walks ferrobus reports for the stop itself.
Where that probing cannot give a time (a stop outside the extract), the
stop has no walking links on either side, except 0 s links where ferrobus
itself has one stop: the same stop_id in two feeds (ferrobus merges feeds
into one id space) or platforms at the very same point. transfers.txt minimum change times are
turned off on our side (ferrobus ignores transfers.txt).

Prints one JSON object: per engine p50/p90/p99 ms, the speed ratios, how
often each found a journey, and how often ferrobus's arrival is later than
ours ("not optimal"; also counted beyond 60 s, since ferrobus's own access walk
from the point to the stop costs it a few seconds), with the mean excess.
``ours_later_than_ferrobus`` counts the reverse; with ``--debug`` the first
cases are printed with ferrobus's journey (seen so far: ferrobus rides trips
whose calendar has not started on that date — counted in
``of_which_ferrobus_rides_a_trip_not_running_that_day`` — and changes between
stations linked in transfers.txt in 0 s, ignoring min_transfer_time).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import tempfile
import time
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.compile import CompileOptions, compile_timetable  # noqa: E402
from routing.feeds import FeedSource  # noqa: E402
from routing.search import PlanRequest, earliest_arrival  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 3) if xs else None


def _bbox(osm: Path) -> tuple[float, float, float, float]:
    """(min_lat, min_lon, max_lat, max_lon) of the extract; Midtown's header bbox by default."""
    return (40.7360, -74.0140, 40.7590, -73.9630)


def _extract_stripped(zpath: Path, out: Path) -> None:
    """Unzip a GTFS feed for ferrobus with every CSV cell stripped of padding spaces.

    ferrobus refuses cells such as ``" 40.6"`` (the NYC bus feeds have them); the
    values are unchanged otherwise, and our side reads the original zip.
    """
    import io

    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zpath) as zf:
        for name in zf.namelist():
            if not name.endswith(".txt"):
                continue
            with zf.open(name) as raw, (out / Path(name).name).open("w", newline="", encoding="utf-8") as dst:
                w = csv.writer(dst)
                for row in csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")):
                    w.writerow([c.strip() for c in row])


def _ferrobus():
    """Import ferrobus, installing it from PyPI into this interpreter first if needed (bench-only)."""
    try:
        import ferrobus
    except ImportError:
        import subprocess

        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "ferrobus"], check=True)
        import ferrobus
    return ferrobus


def main(argv: list[str] | None = None) -> int:
    work = Path(tempfile.mkdtemp(prefix="fb_"))
    try:
        return _main(argv, work)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _main(argv: list[str] | None, work: Path) -> int:
    ferrobus = _ferrobus()

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feed", type=Path, action="append",
                    help="GTFS zip (repeatable; default NYC subway); feed id = file stem")
    ap.add_argument("--osm", type=Path, default=DATA / "nyc-midtown-osm" / "manhattan_midtown.osm.pbf")
    ap.add_argument("--date", type=date.fromisoformat, default=date(2026, 10, 7))
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-rides", type=int, default=3)
    ap.add_argument("--walk-s", type=int, default=600, help="max walking time of transfers and access/egress")
    ap.add_argument("--debug", action="store_true")
    a = ap.parse_args(argv)
    feeds = a.feed or [DATA / "nyc-mta" / "subway.zip"]
    dirs = []
    for f in feeds:
        d = work / "gtfs" / f.stem
        _extract_stripped(f, d)
        dirs.append(str(d))
    sources = [FeedSource(f.stem, f, f.stem) for f in feeds]
    t0 = time.perf_counter()
    model = ferrobus.create_transit_model(str(a.osm), dirs, a.date, a.walk_s)
    fb_build_s = time.perf_counter() - t0

    # our timetable without walking links first, to list stops and coordinates
    empty = work / "none.csv"
    empty.write_text("from_stop_id,to_stop_id,walk_seconds\n")
    base = compile_timetable(sources, CompileOptions(footpaths_file=empty))
    lat0, lon0, lat1, lon1 = _bbox(a.osm)
    served = np.flatnonzero(np.diff(base.stop_pattern_offsets) > 0)
    inside = [int(s) for s in served
              if lat0 <= base.stop_lat[s] <= lat1 and lon0 <= base.stop_lon[s] <= lon1]
    # the street data reach a little beyond the header's box: probe walking around it too
    near = [int(s) for s in served
            if lat0 - 0.01 <= base.stop_lat[s] <= lat1 + 0.01 and lon0 - 0.012 <= base.stop_lon[s] <= lon1 + 0.012]

    # ferrobus's walking times between stops inside the extract -> our footpaths file
    points = {}
    for s in near:
        try:
            points[s] = ferrobus.create_transit_point(float(base.stop_lat[s]), float(base.stop_lon[s]), model,
                                                      a.walk_s, 10)
        except (ValueError, RuntimeError):
            continue
    probed = sorted(points)
    usable = [s for s in inside if s in points]
    fp_rows = []
    # walking time does not depend on the hour: ask days after the model's date, when no vehicle runs
    night = 2 * 86400  # (ferrobus refuses much later times)
    for s in probed:
        for t in probed:
            if s == t:
                continue
            if abs(base.stop_lat[s] - base.stop_lat[t]) > 0.01 or abs(base.stop_lon[s] - base.stop_lon[t]) > 0.012:
                continue
            r = ferrobus.find_route(model, points[s], points[t], night, 0)
            if r is not None and not r.get("used_transit") and r["travel_time_seconds"] <= a.walk_s:
                fp_rows.append((str(base.stop_ids[s]), str(base.stop_ids[t]), int(r["travel_time_seconds"])))
            elif r is None and base.stop_lat[s] == base.stop_lat[t] and base.stop_lon[s] == base.stop_lon[t]:
                # platforms at the very same point (NYC: N and S platforms): ferrobus answers nothing
                # for a zero-length trip but reaches both from one point; a 0 s link does the same
                fp_rows.append((str(base.stop_ids[s]), str(base.stop_ids[t]), 0))
    # ferrobus reads every feed into one id space: stops of two feeds with the same stop_id are one
    # stop there (NYC borough bus feeds share edge stops; MTA Bus reuses NYCT ids). Mirror that with
    # 0 s links, and link platforms at the very same point anywhere (no street data outside the extract).
    have = {(f, t) for f, t, _ in fp_rows}
    groups: dict = {}
    for s in served.tolist():
        sid = str(base.stop_ids[s])
        groups.setdefault(("id", sid.split(":", 1)[1]), []).append(sid)
        groups.setdefault(("xy", float(base.stop_lat[s]), float(base.stop_lon[s])), []).append(sid)
    for members in groups.values():
        for x in members:
            for y in members:
                if x != y and (x, y) not in have:
                    have.add((x, y))
                    fp_rows.append((x, y, 0))
    fp_file = work / "footpaths.csv"
    with fp_file.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["from_stop_id", "to_stop_id", "walk_seconds"])
        w.writerows(fp_rows)
    tt = compile_timetable(sources, CompileOptions(footpaths_file=fp_file))
    # ferrobus ignores transfers.txt: drop its minimum times (they override walking times) on our side too
    walk_of = {(f, t): w for f, t, w in fp_rows}
    frm = np.repeat(np.arange(tt.n_stops), np.diff(tt.footpath_offsets))
    fp_s = np.array([walk_of.get((str(tt.stop_ids[u]), str(tt.stop_ids[v])), int(x))
                     for u, v, x in zip(frm, tt.footpath_to, tt.footpath_s)], dtype=np.int32)
    tt = dataclasses.replace(tt, stop_min_change_s=np.zeros_like(tt.stop_min_change_s),
                             stop_no_transfer=np.zeros_like(tt.stop_no_transfer), footpath_s=fp_s,
                             footpath_m=np.zeros_like(tt.footpath_m))

    rng = np.random.default_rng(a.seed)
    tz = ZoneInfo(str(tt.feed_timezones[0]))
    midnight = datetime.combine(a.date, datetime.min.time(), tzinfo=tz)
    qs = []
    for _ in range(a.queries):
        o, d = rng.choice(usable, 2, replace=False)
        qs.append((int(o), int(d), int(rng.integers(6 * 3600, 22 * 3600))))

    def ours(o: int, d: int, sec: int) -> int | None:
        req = PlanRequest(str(tt.stop_ids[o]), str(tt.stop_ids[d]), depart_at=midnight + timedelta(seconds=sec),
                          max_transfers=a.max_rides - 1, max_walk_m=1e9)
        r = earliest_arrival(tt, req)[-1]
        return None if r is None else r - int(midnight.timestamp())

    for o, d, sec in qs[:5]:  # warm-up (numba)
        ours(o, d, sec)
        ferrobus.find_route(model, points[o], points[d], sec, a.max_rides - 1)
    ms_ours, ms_fb, late, excess, ours_later = [], [], 0, [], 0
    fb_not_running = 0  # ferrobus journeys riding a trip that does not run on the date
    day = tt.day_index(a.date)
    running = {str(x).split(":", 1)[1] for x in tt.trip_ids[tt.trips_running(day)].tolist()}
    found_ours = found_fb = 0
    for o, d, sec in qs:
        t1 = time.perf_counter()
        ra = ours(o, d, sec)
        ms_ours.append((time.perf_counter() - t1) * 1000)
        t1 = time.perf_counter()
        rf = ferrobus.find_route(model, points[o], points[d], sec, a.max_rides - 1)
        ms_fb.append((time.perf_counter() - t1) * 1000)
        fa = None if rf is None else sec + int(rf["travel_time_seconds"])
        found_ours += ra is not None
        found_fb += fa is not None
        if ra is not None and (fa is None or fa > ra):
            late += 1
            if fa is not None:
                excess.append(fa - ra)
        if fa is not None and (ra is None or ra > fa):
            ours_later += 1
            fj = json.loads(ferrobus.detailed_journey(model, points[o], points[d], sec, a.max_rides - 1) or "null")
            trips = [f["properties"].get("trip_id") for f in (fj or {}).get("features", [])
                     if f["properties"].get("leg_type") == "transit"]
            if any(t not in running for t in trips):
                fb_not_running += 1
            if a.debug and ours_later <= 3:
                print("ours later:", tt.stop_ids[o], tt.stop_ids[d], sec, ra, fa, file=sys.stderr)
                print(ferrobus.detailed_journey(model, points[o], points[d], sec, a.max_rides - 1), file=sys.stderr)
    out = {
        "queries": len(qs), "stops_in_extract": len(usable), "stops_probed": len(probed), "footpaths": len(fp_rows),
        "ferrobus_model_s": round(fb_build_s, 3),
        "ours_p50_ms": _pct(ms_ours, 50), "ours_p90_ms": _pct(ms_ours, 90), "ours_p99_ms": _pct(ms_ours, 99),
        "ferrobus_p50_ms": _pct(ms_fb, 50), "ferrobus_p90_ms": _pct(ms_fb, 90), "ferrobus_p99_ms": _pct(ms_fb, 99),
        "p50_ratio_ours_over_ferrobus": round(float(np.median(ms_ours) / np.median(ms_fb)), 3),
        "found_ours": found_ours, "found_ferrobus": found_fb,
        "ferrobus_not_optimal": late, "ferrobus_not_optimal_pct": round(100.0 * late / len(qs), 2),
        "ferrobus_mean_excess_s": round(float(np.mean(excess)), 1) if excess else 0.0,
        "ferrobus_not_optimal_by_60s_pct": round(100.0 * sum(1 for x in excess if x > 60) / len(qs), 2),
        "ours_later_than_ferrobus": ours_later,
        "of_which_ferrobus_rides_a_trip_not_running_that_day": fb_not_running, "max_rides": a.max_rides,
        "feeds": [f.stem for f in feeds], "stops": tt.n_stops, "stop_times": int(tt.pattern_arr.shape[0]),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
