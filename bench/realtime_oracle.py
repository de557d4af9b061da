"""Real time on the staged snapshots: matched / unmatched updates by cause, and real-time answers against
the connection-scan oracle of tests/routing/reference.py run on the real-time-adjusted timetable.

    .venv/bin/python bench/realtime_oracle.py [--queries 240] [--data ../shared/data]

* Caltrain: caltrain.zip + ct-trip-updates.pb (2023-11-07), as staged.
* NYC subway 2021 (a_division, b_division) on the 2026 static subway.zip, as staged: the dates do not
  match, so nothing applies; the counts say why (A-division ids are matched to the tail of the static ids,
  B-division ones by route + start time, and then fall on a date outside the timetable).
* NYC "date-shifted" experiment: the same messages moved to Friday 2026-10-02 (same weekday, every
  absolute time moved by the same local-time offset); updates whose trip_id is the tail of a static
  one (A division) or that name route + start time (B division) find the static trip; the experiment
  writes the static trip_id into those updates so the oracle (which matches trip ids only) applies
  exactly the same ones, then compares.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from google.transit import gtfs_realtime_pb2 as rt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "routing"))

from reference import RefNetwork, earliest_arrivals, walking_graph, with_trip_updates  # noqa: E402

from routing.compile import compile_timetable  # noqa: E402
from routing.feeds import FeedSource  # noqa: E402
from routing.realtime import apply_trip_updates, merge_overlays  # noqa: E402
from routing.search import PlanRequest, earliest_arrival  # noqa: E402


def compare(tt, ov, net, tz, day, n, seed, lo_h, hi_h, horizon_h=14) -> dict:
    fp, change = walking_graph(tt)
    rng = np.random.default_rng(seed)
    served = np.flatnonzero(np.diff(tt.stop_pattern_offsets) > 0)
    parents = sorted({int(tt.stop_parent[s]) for s in served if tt.stop_parent[s] >= 0})
    cand = np.array(sorted(set(served.tolist()) | set(parents)))
    equal = changed = found = 0
    diffs = []
    started = time.perf_counter()
    done = 0
    while done < n:
        o, d = rng.choice(cand, 2, replace=False)
        if o == tt.stop_parent[d] or d == tt.stop_parent[o] or (tt.stop_parent[o] >= 0 and tt.stop_parent[o] == d):
            continue
        t0 = datetime.combine(day, datetime.min.time(), tzinfo=tz) + timedelta(
            seconds=int(rng.integers(lo_h * 3600, hi_h * 3600)))
        req = PlanRequest(str(tt.stop_ids[o]), str(tt.stop_ids[d]), depart_at=t0, max_transfers=int(rng.integers(0, 4)))
        e0 = int(t0.timestamp())
        cut = e0 + horizon_h * 3600
        want = earliest_arrivals(net, req.origin, req.destination, e0, req.max_transfers + 1, fp, change,
                                 horizon_s=horizon_h * 3600)
        got, static = earliest_arrival(tt, req, realtime=ov), earliest_arrival(tt, req)
        got, want, static = ([x if x is not None and x <= cut else None for x in v] for v in (got, want, static))
        done += 1
        equal += got == want
        changed += got != static
        found += want[-1] is not None
        if got != want and len(diffs) < 5:
            diffs.append({"query": [req.origin, req.destination, t0.isoformat(), req.max_transfers],
                          "got": got, "oracle": want})
    return {"queries": n, "equal_to_oracle": equal, "changed_by_real_time": changed, "with_a_journey": found,
            "seconds": round(time.perf_counter() - started, 1), "differences": diffs}


def counts(ov) -> dict:
    c = ov.counts
    return {"trip_updates": c["trip_updates"], "matched": c["matched"], "cancelled": c["cancelled"],
            "added": c.get("added", 0), "duplicated": c.get("duplicated", 0),
            "matched_by_route_start": c.get("matched_by_route_start", 0),
            "matched_by_trip_id_suffix": c.get("matched_by_trip_id_suffix", 0), "unmatched": c["unmatched"],
            "unmatched_by_cause": c.get("unmatched_by_cause", {}), "stop_updates": c["stop_updates"],
            "stop_updates_unmatched": c["stop_updates_unmatched"], "skipped_stops": c["skipped_stops"],
            "entities": c.get("kinds", {})}


def shifted(tt, data: bytes, feed_id: str, tz: ZoneInfo, old: date, new: date) -> bytes:
    """The message moved from service day ``old`` to ``new``; route + start-time updates get the static trip_id."""
    m = rt.FeedMessage()
    m.ParseFromString(data)
    off = int(tt.day_start_utc(tt.feed_index[feed_id], tt.day_index(new)).timestamp()) - int(
        datetime.combine(old, datetime.min.time().replace(hour=12), tzinfo=tz).timestamp() - 12 * 3600)
    m.header.timestamp += off
    day = tt.day_index(new)
    route_start: dict[tuple[int, int], list[int]] = {}
    for t, (r, s) in enumerate(zip(tt.trip_route.tolist(), tt.trip_start_s.tolist())):
        route_start.setdefault((r, s), []).append(t)
    exact = set(tt.trip_ids.tolist())
    tails: dict[str, list[int]] = {}
    for t, tid in enumerate(tt.trip_ids.tolist()):
        raw = tid.split(":", 1)[1]
        for i, ch in enumerate(raw):
            if ch == "_":
                tails.setdefault(raw[i + 1:], []).append(t)
    for e in m.entity:
        if e.HasField("vehicle"):
            e.vehicle.timestamp += off if e.vehicle.timestamp else 0
        if not e.HasField("trip_update"):
            continue
        tu = e.trip_update
        tu.trip.start_date = new.strftime("%Y%m%d")
        for u in tu.stop_time_update:
            for ev in (u.arrival, u.departure):
                if ev.time:
                    ev.time += off
        r = tt.route_index.get(f"{feed_id}:{tu.trip.route_id}")
        by_tail = [t for t in tails.get(tu.trip.trip_id, []) if tt.service_days[tt.trip_service[t], day]]
        if f"{feed_id}:{tu.trip.trip_id}" not in exact and len(by_tail) == 1:  # NYCT: the tail of the static id
            tu.trip.trip_id = str(tt.trip_ids[by_tail[0]]).split(":", 1)[1]
        elif f"{feed_id}:{tu.trip.trip_id}" not in exact and tu.trip.start_time and r is not None:
            h, mi, se = (int(x) for x in tu.trip.start_time.split(":"))
            c = [t for t in route_start.get((r, h * 3600 + mi * 60 + se), [])
                 if tt.service_days[tt.trip_service[t], day]]
            if len(c) > 1:  # the direction: the trips calling at the stops named
                named = {tt.find_stop(f"{feed_id}:{u.stop_id}") for u in tu.stop_time_update} - {None}
                c = [t for t in c if named & set(tt.pattern_stops[tt.pattern_stop_slice(int(tt.trip_pattern[t]))]
                                                 .tolist())] or c
            if len(c) == 1:
                tu.trip.trip_id = str(tt.trip_ids[c[0]]).split(":", 1)[1]
    return m.SerializeToString()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=240)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    data = args.data
    out: dict = {}

    ct = data / "caltrain-rt"
    tt = compile_timetable([FeedSource("ct", ct / "caltrain.zip", "caltrain")])
    msg = (ct / "ct-trip-updates.pb").read_bytes()
    ov = apply_trip_updates(tt, msg, "ct")
    day, tz = date(2023, 11, 7), ZoneInfo("America/Los_Angeles")
    net, _ = with_trip_updates(RefNetwork.from_gtfs([("ct", ct / "caltrain.zip")], day), "ct", msg)
    out["caltrain"] = {"updates": counts(ov),
                       "oracle_15_20h": compare(tt, ov, net, tz, day, args.queries, 11, 15, 20),
                       "oracle_all_day": compare(tt, ov, net, tz, day, args.queries, 12, 5, 24)}

    sub = data / "nyc-mta" / "subway.zip"
    tt = compile_timetable([FeedSource("subway", sub, "mta")])
    rt_dir = data / "nyc-subway-gtfsrt-2021"
    msgs = {f: (rt_dir / f"{f}.nyct.gtfsrt").read_bytes() for f in ("a_division", "b_division")}
    out["nyc_as_staged"] = {f: counts(apply_trip_updates(tt, m, "subway")) for f, m in msgs.items()}
    tz, new = ZoneInfo("America/New_York"), date(2026, 10, 2)
    moved = {f: shifted(tt, m, "subway", tz, date(2021, 11, 26), new) for f, m in msgs.items()}
    ovs = {f: apply_trip_updates(tt, m, "subway") for f, m in moved.items()}
    merged = merge_overlays(tt, list(ovs.values()))
    net = RefNetwork.from_gtfs([("subway", sub)], new)
    for m in moved.values():
        net, _ = with_trip_updates(net, "subway", m)
    out["nyc_shifted_to_2026_10_02"] = {
        "updates": {f: counts(o) for f, o in ovs.items()},
        "oracle_15_18h": compare(tt, merged, net, tz, new, args.queries, 13, 15, 18, horizon_h=6)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
