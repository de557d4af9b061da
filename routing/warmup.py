"""Compile (or load from numba's on-disk cache) every kernel variant before a server says it is ready.

numba compiles a kernel the first time it is called with a new combination of
argument types (its *signature*): a read-only memory-mapped timetable, the
time-reversed network of arrive-by, the real-time view, the fare tables each
give other signatures. Left to the first requests that took seconds each
(issue 14). :func:`warm_kernels` runs every kind of search on a tiny network
that goes through the same path as a served timetable (compiled, saved to a
timetable cache, memory-mapped back) — earliest arrival, several departures
with McRAPTOR, arrive-by, a range (departure window) query, the fare-aware
McRAPTOR — once on the static timetable and once on a real-time view, so every
signature a request can need is compiled (or loaded from the cache) up front.

Compiled kernels are cached on disk (``cache=True`` on every kernel). numba
picks the cache directory: ``NUMBA_CACHE_DIR`` when set, else ``__pycache__``
next to ``routing/kernels.py`` when writable (a source checkout), else a
per-user cache directory. :func:`configure_cache` sends an installed package
(read-only ``site-packages``) to a directory of the caller's choosing instead
(the server passes ``<data_dir>/kernel-cache``, which survives restarts).

``python -m routing.warmup`` warms the cache and prints a JSON report (a
container image runs it at build time).
"""

from __future__ import annotations

import os
import tempfile
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

#: The tiny network's service date (any date of its calendar) and time zone.
_DAY = datetime(2025, 6, 4, tzinfo=timezone.utc)

_FEED = {
    "agency.txt": """
        agency_id,agency_name,agency_url,agency_timezone
        WA,Warm-up,https://example.org,UTC
    """,
    "calendar.txt": """
        service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date
        WK,1,1,1,1,1,1,1,20250101,20251231
    """,
    # A -> B -> C by bus, walk C -> D (about 220 m), D -> E by metro; F a platform of station S.
    "stops.txt": """
        stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station,wheelchair_boarding
        A,A,0.000,0.000,0,,1
        B,B,0.000,0.010,0,,1
        C,C,0.000,0.020,0,,1
        S,S,0.002,0.020,1,,1
        D,D,0.002,0.020,0,S,1
        E,E,0.002,0.040,0,,1
    """,
    "routes.txt": """
        route_id,agency_id,route_short_name,route_type
        R1,WA,1,3
        R2,WA,2,1
    """,
    "trips.txt": """
        route_id,service_id,trip_id,wheelchair_accessible
        R1,WK,T1,1
        R1,WK,T2,1
        R1,WK,T3,1
        R2,WK,U1,1
        R2,WK,U2,1
        R2,WK,U3,2
    """,
    "stop_times.txt": """
        trip_id,arrival_time,departure_time,stop_id,stop_sequence
        T1,08:00:00,08:00:00,A,1
        T1,08:10:00,08:11:00,B,2
        T1,08:20:00,08:20:00,C,3
        T2,08:30:00,08:30:00,A,1
        T2,08:40:00,08:41:00,B,2
        T2,08:50:00,08:50:00,C,3
        T3,23:50:00,23:50:00,A,1
        T3,24:00:00,24:01:00,B,2
        T3,24:10:00,24:10:00,C,3
        U1,08:30:00,08:30:00,D,1
        U1,08:40:00,08:40:00,E,2
        U2,09:00:00,09:00:00,D,1
        U2,09:10:00,09:10:00,E,2
        U3,09:30:00,09:30:00,D,1
        U3,09:40:00,09:40:00,E,2
    """,
}

_LOCK = threading.Lock()
_DONE: dict[str, Any] | None = None


def kernel_dispatchers() -> dict[str, Any]:
    """name -> numba dispatcher of every kernel in :mod:`routing.kernels`."""
    from numba.core.registry import CPUDispatcher

    from routing import kernels

    return {name: obj for name, obj in vars(kernels).items() if isinstance(obj, CPUDispatcher)}


def kernel_signatures() -> dict[str, list[str]]:
    """name -> the signatures compiled (or loaded from the cache) so far in this process."""
    return {name: sorted(str(s) for s in d.signatures) for name, d in kernel_dispatchers().items()}


def cache_dir() -> str | None:
    """Where numba caches the kernels (``None``: caching is off)."""
    from routing import kernels

    return kernels._raptor.stats.cache_path


def use_cache_dir(path: Path | str) -> str:
    """Cache every kernel in ``path`` from now on (signatures already compiled stay in memory)."""
    from numba.core import config

    path = Path(path).resolve()
    path.mkdir(parents=True, exist_ok=True)
    config.CACHE_DIR = str(path)
    for d in kernel_dispatchers().values():
        d.enable_caching()
    return str(path)


def configure_cache(fallback: Path | str | None) -> str | None:
    """Keep numba's choice for a source checkout or an explicit ``NUMBA_CACHE_DIR``; otherwise (an
    installed package, whose ``site-packages`` is read-only) cache the kernels in ``fallback``.
    Returns the cache directory in use."""
    from routing import kernels

    current = cache_dir()
    if os.environ.get("NUMBA_CACHE_DIR") or fallback is None:
        return current
    in_tree = os.path.join(os.path.dirname(os.path.abspath(kernels.__file__)), "__pycache__")
    if current is not None and os.path.abspath(current) == in_tree:
        return current
    try:
        return use_cache_dir(fallback)
    except OSError:  # not writable: keep numba's per-user directory
        return current


def tiny_timetable(directory: Path):  # noqa: ANN201 - a routing.timetable.Timetable
    """The warm-up network, compiled, saved to a timetable cache in ``directory`` and memory-mapped back
    (read-only arrays, as served)."""
    from routing.cache import load_or_compile
    from routing.feeds import FeedSource

    feed = directory / "warmup-feed"
    feed.mkdir(parents=True, exist_ok=True)
    for name, text in _FEED.items():
        lines = [ln.strip() for ln in textwrap.dedent(text).splitlines() if ln.strip()]
        (feed / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    tt, _ = load_or_compile([FeedSource("wu", feed, "wu")], directory / "timetables")
    return tt


def _trip_updates(part: int) -> bytes:
    """Part 1: T1 late by 3 min from B on, U2 cancelled; part 2: U1 late by 1 min at E."""
    from google.transit import gtfs_realtime_pb2 as rt

    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int((_DAY + timedelta(hours=7)).timestamp())
    day = _DAY.strftime("%Y%m%d")
    if part == 1:
        e = m.entity.add()
        e.id = "1"
        e.trip_update.trip.trip_id = "T1"
        e.trip_update.trip.start_date = day
        u = e.trip_update.stop_time_update.add()
        u.stop_id = "B"
        u.arrival.delay = 180
        u.departure.delay = 180
        e = m.entity.add()
        e.id = "2"
        e.trip_update.trip.trip_id = "U2"
        e.trip_update.trip.start_date = day
        e.trip_update.trip.schedule_relationship = rt.TripDescriptor.CANCELED
    else:
        e = m.entity.add()
        e.id = "3"
        e.trip_update.trip.trip_id = "U1"
        e.trip_update.trip.start_date = day
        u = e.trip_update.stop_time_update.add()
        u.stop_id = "E"
        u.arrival.delay = 60
    return m.SerializeToString()


def _fare_tables(tt):  # noqa: ANN001, ANN202
    """One flat-fare network over every route, transfers free within 90 minutes (a timed rule)."""
    import dataclasses

    import numpy as np

    from routing.fares import XFER_REPLACE, empty_tables

    base = empty_tables(int(tt.route_ids.shape[0]), int(tt.n_stops), currency="CNY")
    return dataclasses.replace(
        base, route_network=np.zeros(base.route_network.shape, dtype=np.int32),
        network_feed=np.zeros(1, dtype=np.int32), network_kind=np.zeros(1, dtype=np.int8),
        network_group=np.full(1, -1, dtype=np.int32), leg_price=np.full((1, 1, 1), 200, dtype=np.int64),
        leg_group=np.zeros((1, 1, 1), dtype=np.int32), band_offsets=np.zeros(2, dtype=np.int64),
        join=np.zeros((1, 1), dtype=bool), xfer_kind=np.full((1, 1), XFER_REPLACE, dtype=np.int8),
        xfer_amount=np.zeros((1, 1), dtype=np.int64), xfer_limit_s=np.full((1, 1), 5400, dtype=np.int64),
        xfer_limit_type=np.zeros((1, 1), dtype=np.int8), xfer_count=np.full((1, 1), -1, dtype=np.int32),
        meta={})


def _queries(tt, realtime, fares) -> dict[str, int]:  # noqa: ANN001
    """Every kind of search once; returns the number of itineraries (or profile rows) per kind."""
    from routing.search import PlanRequest, earliest_arrival, plan, range_profile

    dep = _DAY + timedelta(hours=7, minutes=55)
    out = {
        "earliest_arrival": sum(a is not None for a in earliest_arrival(
            tt, PlanRequest("wu:A", "wu:E", depart_at=dep), realtime=realtime)),
        "depart_at": len(plan(tt, PlanRequest("wu:A", "wu:E", depart_at=dep), realtime=realtime)),
        "depart_at_filtered": len(plan(tt, PlanRequest("wu:A", "wu:S", depart_at=dep, wheelchair=True,
                                                       modes=frozenset({"BUS", "SUBWAY"})), realtime=realtime)),
        "from_coordinates": len(plan(tt, PlanRequest("0.0001,0.0001", "wu:E", depart_at=dep), realtime=realtime)),
        "arrive_by": len(plan(tt, PlanRequest("wu:A", "wu:E", arrive_by=dep + timedelta(hours=2)),
                              realtime=realtime)),
        "range": len(plan(tt, PlanRequest("wu:A", "wu:E", depart_at=dep, window_s=3600), realtime=realtime)),
        "range_profile": len(range_profile(tt, PlanRequest("wu:A", "wu:E", depart_at=dep, window_s=3600),
                                           realtime=realtime)),
        "fare": len(plan(tt, PlanRequest("wu:A", "wu:E", depart_at=dep, optimize="fare"), realtime=realtime,
                         fares=fares)),
        "max_fare": len(plan(tt, PlanRequest("wu:A", "wu:E", depart_at=dep, max_fare=1000), realtime=realtime,
                             fares=fares)),
    }
    return out


def warm_kernels(force: bool = False) -> dict[str, Any]:
    """Compile or load every kernel variant (once per process; ``force`` runs the searches again).

    Returns ``{"seconds", "cache_dir", "signatures", "queries": {"static": {...}, "realtime": {...}}}``
    where ``queries`` counts what each kind of search found on the tiny network (all must be > 0).
    """
    global _DONE
    with _LOCK:
        if _DONE is not None and not force:
            return _DONE
        from routing.realtime import apply_trip_updates, merge_overlays

        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="routing-warmup-") as tmp:
            tt = tiny_timetable(Path(tmp))
            fares = _fare_tables(tt)
            overlay = apply_trip_updates(tt, _trip_updates(1), "wu")
            queries = {"static": _queries(tt, None, fares), "realtime": _queries(tt, overlay, fares)}
            # the planner serves every feed's latest overlay merged into one
            merged = merge_overlays(tt, [overlay, apply_trip_updates(tt, _trip_updates(2), "wu")])
            queries["realtime_merged"] = _queries(tt, merged, fares)
            del tt, overlay, merged
        sigs = kernel_signatures()
        _DONE = {"seconds": round(time.perf_counter() - started, 3), "cache_dir": cache_dir(),
                 "signatures": sum(len(v) for v in sigs.values()), "queries": queries}
        return _DONE


def main() -> None:
    import json
    import sys

    target = sys.argv[1] if len(sys.argv) > 1 else None
    if target:
        use_cache_dir(target)
    print(json.dumps(warm_kernels(), indent=2))


if __name__ == "__main__":
    main()
