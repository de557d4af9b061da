"""Naive reference search (the oracle) for the RAPTOR kernels.

Deliberately simple and slow: it reads plain GTFS with pandas (no compiled
timetable), expands every trip running on the service days around the query
date into *connections* (one vehicle hop between consecutive stops, in
absolute UTC epoch seconds) and runs a round-based connection scan:

* round ``k`` may use exactly one more vehicle than round ``k-1``;
* a vehicle can be boarded at stop ``s`` when the passenger is *ready* there,
  i.e. ``ready[k-1][s] <= departure`` (trip continuation inside a round needs
  no readiness);
* after a round, every stop reached by vehicle at time ``a`` makes the
  passenger ready at the same stop at ``a + max(change(s), min_change_s)``
  (unless changing there is forbidden) and at each footpath neighbour ``v`` at
  ``a + max(walk(s, v), min_change_s)``; one footpath between two rides;
* the destination is reached on alighting at one of its stops, or by one
  footpath (plain walking time) from the alighting stop.

The walking graph (footpaths, per-stop change times, forbidden changes) is an
input, not recomputed here: the oracle checks the *search*, the compiler has
its own tests. Everything else — calendars, stop_times, time zones, pickup /
drop-off types, trips past midnight — is read from the GTFS text.

Not supported (raises): frequencies.txt, blank stop times.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

INF = 1 << 62


def read_table(path: Path, name: str) -> pd.DataFrame | None:
    """One GTFS table as all-string DataFrame (``None`` when the file is absent)."""
    path = Path(path)
    if path.is_dir():
        f = path / name
        if not f.exists():
            return None
        return pd.read_csv(f, dtype=str, keep_default_na=False, skipinitialspace=False)
    with zipfile.ZipFile(path) as zf:
        names = {Path(n).name: n for n in zf.namelist()}
        if name not in names:
            return None
        data = zf.read(names[name])
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _seconds(hms: str) -> int:
    h, m, s = (int(x) for x in hms.strip().split(":"))
    return h * 3600 + m * 60 + s


def active_services(path: Path, d: date) -> set[str]:
    """service_ids running on date ``d`` (calendar.txt + calendar_dates.txt exceptions)."""
    out: set[str] = set()
    ymd = d.strftime("%Y%m%d")
    cal = read_table(path, "calendar.txt")
    if cal is not None and len(cal):
        wd = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][d.weekday()]
        for row in cal.itertuples(index=False):
            r = row._asdict()
            if r["start_date"].strip() <= ymd <= r["end_date"].strip() and r[wd].strip() == "1":
                out.add(r["service_id"].strip())
    cd = read_table(path, "calendar_dates.txt")
    if cd is not None and len(cd):
        for sid, dd, et in zip(cd["service_id"], cd["date"], cd["exception_type"]):
            if dd.strip() != ymd:
                continue
            if et.strip() == "1":
                out.add(sid.strip())
            elif et.strip() == "2":
                out.discard(sid.strip())
    return out


def day_start_epoch(tz: str, d: date) -> int:
    """UTC epoch seconds of GTFS time 0 of service day ``d``: local noon minus 12 h."""
    noon = datetime.combine(d, time(12), tzinfo=ZoneInfo(tz))
    return int(noon.timestamp()) - 12 * 3600


@dataclass
class RefNetwork:
    """Connections of every trip running on the given service days of the given feeds.

    Arrays are sorted by departure; times are UTC epoch seconds.
    """

    stop_ids: list[str]
    stop_index: dict[str, int]
    children: dict[str, list[str]]  # parent station id -> platform ids (both namespaced)
    dep: np.ndarray
    arr: np.ndarray
    frm: np.ndarray
    to: np.ndarray
    trip: np.ndarray  # index into trip_keys
    pickup_ok: np.ndarray
    dropoff_ok: np.ndarray
    trip_keys: list[tuple[str, date]]  # (namespaced trip_id, service date)
    trip_route: list[str]  # namespaced route_id per trip key
    stop_times: dict[str, pd.DataFrame] | None = None  # feed_id -> stop_times (seconds), for check_feasible
    day_starts: dict[tuple[str, date], int] | None = None  # (feed_id, day) -> epoch of GTFS time 0
    stop_coords: dict[str, tuple[float, float]] | None = None
    #: real time: (trip_id, service date) -> {"stops", "arr", "dep" (epoch), "pu", "do", "skipped"}
    #: replacing the schedule
    rt_trips: dict[tuple[str, date], dict] | None = None

    @classmethod
    def from_gtfs(cls, feeds: list[tuple[str, Path]], d: date, trip_ids: set[str] | None = None,
                  offsets: tuple[int, ...] = (-1, 0, 1)) -> RefNetwork:
        """Build from ``[(feed_id, path), ...]`` for the service days ``d + offsets``.

        ``trip_ids`` (namespaced) restricts the trips that may be used.
        """
        stop_ids: list[str] = []
        children: dict[str, list[str]] = {}
        parts = []
        trip_keys: list[tuple[str, date]] = []
        trip_route: list[str] = []
        st_by_feed: dict[str, pd.DataFrame] = {}
        day_starts: dict[tuple[str, date], int] = {}
        coords: dict[str, tuple[float, float]] = {}
        for feed_id, path in feeds:
            if read_table(path, "frequencies.txt") is not None:
                raise NotImplementedError("the oracle does not expand frequencies.txt")
            stops = read_table(path, "stops.txt")
            lt = stops["location_type"] if "location_type" in stops else pd.Series([""] * len(stops))
            par = stops["parent_station"] if "parent_station" in stops else pd.Series([""] * len(stops))
            for sid, loc, p, la, lo in zip(stops["stop_id"], lt, par, stops["stop_lat"], stops["stop_lon"]):
                sid = f"{feed_id}:{sid.strip()}"
                coords[sid] = (float(la) if la.strip() else float("nan"), float(lo) if lo.strip() else float("nan"))
                stop_ids.append(sid)
                if loc.strip() in ("", "0") and p.strip():
                    children.setdefault(f"{feed_id}:{p.strip()}", []).append(sid)
            tz = read_table(path, "agency.txt")["agency_timezone"].iloc[0].strip()
            trips = read_table(path, "trips.txt")
            st = read_table(path, "stop_times.txt")
            if (st["arrival_time"].str.strip() == "").any() or (st["departure_time"].str.strip() == "").any():
                raise NotImplementedError("the oracle needs every stop time filled in")
            st = st.assign(
                seq=st["stop_sequence"].astype(int),
                a=st["arrival_time"].map(_seconds),
                dp=st["departure_time"].map(_seconds),
                pu=(st["pickup_type"].str.strip() if "pickup_type" in st else pd.Series("", index=st.index)),
                do=(st["drop_off_type"].str.strip() if "drop_off_type" in st else pd.Series("", index=st.index)),
            ).sort_values(["trip_id", "seq"], kind="stable")
            st_by_feed[feed_id] = st[["trip_id", "stop_id", "seq", "a", "dp", "pu", "do"]].set_index("trip_id")
            # one row per hop: this stop -> next stop of the same trip
            nxt = st.shift(-1)
            hop = st[(nxt["trip_id"] == st["trip_id"]).to_numpy()]
            nxt = nxt[(nxt["trip_id"] == st["trip_id"]).to_numpy()]
            hops = pd.DataFrame({
                "trip_id": hop["trip_id"].to_numpy(),
                "dep": hop["dp"].to_numpy(dtype=np.int64),
                "arr": nxt["a"].to_numpy(dtype=np.int64),
                "frm": (feed_id + ":" + hop["stop_id"].str.strip()).to_numpy(),
                "to": (feed_id + ":" + nxt["stop_id"].str.strip()).to_numpy(),
                "pu": (hop["pu"] != "1").to_numpy(),
                "do": (nxt["do"] != "1").to_numpy(),
            })
            trip_service = dict(zip(trips["trip_id"], trips["service_id"].str.strip()))
            trip_route_of = dict(zip(trips["trip_id"], trips["route_id"].str.strip()))
            for off in offsets:
                day = d + timedelta(days=off)
                running = active_services(path, day)
                base = day_start_epoch(tz, day)
                day_starts[(feed_id, day)] = base
                tids = [t for t, s in trip_service.items() if s in running
                        and (trip_ids is None or f"{feed_id}:{t.strip()}" in trip_ids)]
                if not tids:
                    continue
                key0 = len(trip_keys)
                key_of = {t: key0 + i for i, t in enumerate(tids)}
                trip_keys.extend((f"{feed_id}:{t.strip()}", day) for t in tids)
                trip_route.extend(f"{feed_id}:{trip_route_of[t]}" for t in tids)
                h = hops[hops["trip_id"].isin(key_of)]
                parts.append(pd.DataFrame({
                    "dep": h["dep"].to_numpy() + base, "arr": h["arr"].to_numpy() + base,
                    "frm": h["frm"].to_numpy(), "to": h["to"].to_numpy(),
                    "trip": h["trip_id"].map(key_of).to_numpy(), "pu": h["pu"].to_numpy(), "do": h["do"].to_numpy(),
                }))
        stop_index = {s: i for i, s in enumerate(stop_ids)}
        c = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            {"dep": [], "arr": [], "frm": [], "to": [], "trip": [], "pu": [], "do": []})
        c = c.sort_values(["dep", "arr"], kind="stable")
        return cls(
            stop_ids=stop_ids, stop_index=stop_index, children=children,
            dep=c["dep"].to_numpy(dtype=np.int64), arr=c["arr"].to_numpy(dtype=np.int64),
            frm=c["frm"].map(stop_index).to_numpy(dtype=np.int64), to=c["to"].map(stop_index).to_numpy(dtype=np.int64),
            trip=c["trip"].to_numpy(dtype=np.int64), pickup_ok=c["pu"].to_numpy(dtype=bool),
            dropoff_ok=c["do"].to_numpy(dtype=bool), trip_keys=trip_keys, trip_route=trip_route,
            stop_times=st_by_feed, day_starts=day_starts, stop_coords=coords,
        )

    def platforms(self, stop_id: str) -> list[str]:
        """A parent station stands for its platforms; a platform for itself."""
        return self.children.get(stop_id, [stop_id])


def earliest_arrivals(
    net: RefNetwork,
    origin: str,
    destination: str,
    t0: int,
    max_rides: int,
    footpaths: dict[str, list[tuple[str, int]]],
    change_s: dict[str, int | None],
    min_change_s: int = 0,
    horizon_s: int = 12 * 3600,
    walk_only: bool = True,
) -> list[int | None]:
    """Earliest arrival (epoch s) at ``destination`` using at most ``k`` rides, for k = 0..max_rides.

    ``footpaths[u]`` lists ``(v, seconds)``; ``change_s[u]`` is the minimum
    change time at ``u`` (``None`` = changing vehicles at ``u`` is forbidden;
    absent = 0). Departures later than ``t0 + horizon_s`` are not considered.
    ``walk_only=False`` leaves out journeys without any ride.
    """
    n = len(net.stop_ids)
    idx = net.stop_index
    fp: dict[int, list[tuple[int, int]]] = {
        idx[u]: [(idx[v], w) for v, w in lst] for u, lst in footpaths.items() if u in idx}
    orig = [idx[s] for s in net.platforms(origin)]
    dest = {idx[s] for s in net.platforms(destination)}
    egress: dict[int, int] = {s: 0 for s in dest}
    for u, lst in fp.items():
        for v, w in lst:
            if v in dest:
                egress[u] = min(egress.get(u, INF), w)

    lo = int(np.searchsorted(net.dep, t0, side="left"))
    hi = int(np.searchsorted(net.dep, t0 + horizon_s, side="right"))
    conns = list(zip(net.dep[lo:hi].tolist(), net.arr[lo:hi].tolist(), net.frm[lo:hi].tolist(),
                     net.to[lo:hi].tolist(), net.trip[lo:hi].tolist(),
                     net.pickup_ok[lo:hi].tolist(), net.dropoff_ok[lo:hi].tolist()))

    ready = [INF] * n
    for o in orig:
        ready[o] = t0
    for o in orig:
        for v, w in fp.get(o, []):
            ready[v] = min(ready[v], t0 + w)
    best = min((t0 + egress[o] for o in orig if o in egress), default=INF) if walk_only else INF
    out: list[int | None] = [None if best >= INF else best]
    for _k in range(1, max_rides + 1):
        on_board: set[int] = set()
        rode = [INF] * n
        for dep, arr, u, v, trip, pu, do in conns:
            if trip in on_board or (pu and ready[u] <= dep):
                on_board.add(trip)
                if do and arr < rode[v]:
                    rode[v] = arr
        new_ready = list(ready)
        for u in range(n):
            a = rode[u]
            if a >= INF:
                continue
            if u in egress:
                best = min(best, a + egress[u])
            c = change_s.get(net.stop_ids[u], 0)
            if c is not None:
                new_ready[u] = min(new_ready[u], a + max(c, min_change_s))
            for v, w in fp.get(u, []):
                new_ready[v] = min(new_ready[v], a + max(w, min_change_s))
        ready = new_ready
        out.append(None if best >= INF else best)
    return out


# ---------------------------------------------------------------------------------------------
# real time: the oracle's own reading of a TripUpdates message


def with_trip_updates(net: RefNetwork, feed_id: str, data: bytes) -> tuple[RefNetwork, dict]:
    """A copy of ``net`` with a GTFS-Realtime TripUpdates message applied, read independently of ``routing``.

    Per TripUpdate (matched by trip_id and start_date, else the local date of
    the header timestamp; without trip_id by route_id and start_time):
    CANCELED removes the trip that day; ADDED / NEW add a trip over the stops
    named at the times given; DUPLICATED adds a copy of the trip shifted to
    ``trip_properties.start_time`` (its updates apply to the copy); each
    StopTimeUpdate (matched by stop_sequence, else by stop_id after the
    previous one; a station id matches its platform) sets absolute times or adds its delay; a stop without an
    update takes the delay of the last update before it (none before the
    first); a missing arrival/departure takes the other's delay; SKIPPED stops
    keep the running delay but allow no pickup or drop-off; times never
    decrease along the trip. Returns ``(network, counts)``.
    """
    from google.transit import gtfs_realtime_pb2 as rtpb

    msg = rtpb.FeedMessage()
    msg.ParseFromString(data)
    st = net.stop_times[feed_id]
    known = {k: i for i, k in enumerate(net.trip_keys)}
    drop: set[int] = set()
    hops = []
    rt_trips: dict[tuple[str, date], dict] = dict(net.rt_trips or {})
    counts = {"applied": 0, "cancelled": 0, "not_running": 0}
    added_keys: list[tuple[str, date]] = []
    added_routes: list[str] = []
    for ent in msg.entity:
        if not ent.HasField("trip_update"):
            continue
        tu = ent.trip_update
        rel = tu.trip.schedule_relationship
        tid = f"{feed_id}:{tu.trip.trip_id}"
        if tu.trip.start_date:
            day = datetime.strptime(tu.trip.start_date, "%Y%m%d").date()
        else:
            day = None
            for (f, d0), base in net.day_starts.items():
                if f == feed_id and base <= msg.header.timestamp < base + 86400 + 12 * 3600:
                    day = d0 if day is None or d0 > day else day
        if rel in (rtpb.TripDescriptor.ADDED, rtpb.TripDescriptor.NEW):
            # a trip of its own: the stops named, at the (absolute) times given
            base = net.day_starts[(feed_id, day)]
            rows = [(f"{feed_id}:{u.stop_id}", u.arrival.time or u.departure.time, u.departure.time or u.arrival.time)
                    for u in tu.stop_time_update if u.schedule_relationship != rtpb.TripUpdate.StopTimeUpdate.SKIPPED]
            key = (tid, day)
            known[key] = len(net.trip_keys) + counts.setdefault("added", 0)
            added_keys.append(key)
            added_routes.append(f"{feed_id}:{tu.trip.route_id}")
            counts["added"] += 1
            stops = [r[0] for r in rows]
            arr = [int(r[1]) for r in rows]
            dep = [max(int(r[1]), int(r[2])) for r in rows]
            pu = do = ["0"] * len(rows)
            rt_trips[key] = {"stops": stops, "arr": arr, "dep": dep, "pu": pu, "do": do, "skipped": [False] * len(rows)}
            for j in range(len(stops) - 1):
                hops.append((dep[j], arr[j + 1], net.stop_index[stops[j]], net.stop_index[stops[j + 1]], known[key],
                             True, True))
            continue
        if not tu.trip.trip_id:  # route + start time
            firsts = st.sort_values("seq").groupby(level=0)["dp"].first()
            hits = [k for k, r in zip(net.trip_keys, net.trip_route) if k[1] == day
                    and r == f"{feed_id}:{tu.trip.route_id}"
                    and _seconds(tu.trip.start_time) == int(firsts[k[0].split(":", 1)[1]])]
            if len(hits) != 1:
                counts["not_running"] += 1
                continue
            tid = hits[0][0]
        key = (tid, day)
        if key not in known:
            counts["not_running"] += 1
            continue
        raw = tid.split(":", 1)[1]
        shift = 0
        if rel == rtpb.TripDescriptor.DUPLICATED:
            tp = tu.trip_properties
            first = int(st.loc[[raw]].sort_values("seq")["dp"].iloc[0])
            shift = _seconds(tp.start_time) - first if tp.start_time else 0
            key = (f"{feed_id}:{tp.trip_id}", datetime.strptime(tp.start_date, "%Y%m%d").date() if tp.start_date
                   else day)
            known[key] = len(net.trip_keys) + counts.setdefault("added", 0)
            added_keys.append(key)
            added_routes.append(net.trip_route[known[(tid, day)]])
            counts["added"] += 1
            day = key[1]
        else:
            drop.add(known[key])
        if rel == rtpb.TripDescriptor.CANCELED:
            counts["cancelled"] += 1
            continue
        rows = st.loc[[raw]].sort_values("seq")
        base = net.day_starts[(feed_id, day)] + shift
        stops = (feed_id + ":" + rows["stop_id"].str.strip()).tolist()
        seqs = rows["seq"].tolist()
        sa = (rows["a"].to_numpy() + base).tolist()
        sdp = (rows["dp"].to_numpy() + base).tolist()
        arr, dep = list(sa), list(sdp)
        pu = rows["pu"].tolist()
        do = rows["do"].tolist()
        skipped = [False] * len(stops)
        delay = None
        pos = 0
        for u in tu.stop_time_update:
            if u.HasField("stop_sequence") and u.stop_sequence in seqs:
                i = seqs.index(u.stop_sequence)
            elif f"{feed_id}:{u.stop_id}" in stops[pos:]:
                i = stops.index(f"{feed_id}:{u.stop_id}", pos)
            elif any(x in net.children.get(f"{feed_id}:{u.stop_id}", ()) for x in stops[pos:]):  # a station
                i = next(j for j in range(pos, len(stops)) if stops[j] in net.children[f"{feed_id}:{u.stop_id}"])
            else:
                continue
            for j in range(pos, i):
                if delay is not None:
                    arr[j], dep[j] = sa[j] + delay, sdp[j] + delay
            if u.schedule_relationship == rtpb.TripUpdate.StopTimeUpdate.NO_DATA:
                delay = None
            elif u.schedule_relationship == rtpb.TripUpdate.StopTimeUpdate.SKIPPED:
                pu[i] = do[i] = "1"
                skipped[i] = True
                if delay is not None:
                    arr[i], dep[i] = sa[i] + delay, sdp[i] + delay
            else:
                def ev(e, sched):
                    if e.time:
                        return int(e.time)
                    if e.HasField("delay"):
                        return sched + int(e.delay)
                    return None
                a = ev(u.arrival, sa[i]) if u.HasField("arrival") else None
                d = ev(u.departure, sdp[i]) if u.HasField("departure") else None
                if a is None and d is None:
                    pos = i + 1
                    continue
                if a is None:
                    a = min(d, sa[i] + (d - sdp[i]))
                if d is None:
                    d = max(a, sdp[i] + (a - sa[i]))
                arr[i], dep[i] = a, max(a, d)
                delay = dep[i] - sdp[i]
            pos = i + 1
        if delay is not None:
            for j in range(pos, len(stops)):
                arr[j], dep[j] = sa[j] + delay, sdp[j] + delay
        run = -INF
        for j in range(len(stops)):
            run = max(run, arr[j])
            arr[j] = run
            run = max(run, dep[j])
            dep[j] = run
        rt_trips[key] = {"stops": stops, "arr": arr, "dep": dep, "pu": pu, "do": do, "skipped": skipped}
        counts["applied"] += 1
        for j in range(len(stops) - 1):
            hops.append((dep[j], arr[j + 1], net.stop_index[stops[j]], net.stop_index[stops[j + 1]], known[key],
                         pu[j] != "1", do[j + 1] != "1"))
    keep = ~np.isin(net.trip, np.fromiter(drop, dtype=np.int64, count=len(drop)))
    cols = [net.dep[keep], net.arr[keep], net.frm[keep], net.to[keep], net.trip[keep], net.pickup_ok[keep],
            net.dropoff_ok[keep]]
    if hops:
        h = list(zip(*hops))
        cols = [np.concatenate([c, np.asarray(x, dtype=c.dtype)]) for c, x in zip(cols, h)]
    order = np.lexsort((cols[1], cols[0]))
    cols = [c[order] for c in cols]
    import dataclasses

    out = dataclasses.replace(net, dep=cols[0], arr=cols[1], frm=cols[2], to=cols[3], trip=cols[4],
                              pickup_ok=cols[5], dropoff_ok=cols[6], rt_trips=rt_trips,
                              trip_keys=net.trip_keys + added_keys, trip_route=net.trip_route + added_routes)
    return out, counts


# ---------------------------------------------------------------------------------------------
# random small networks (property tests)


def _hms(s: int) -> str:
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def random_feed_tables(rng: np.random.Generator) -> dict[str, str]:
    """GTFS tables (name -> CSV text) of a random small network.

    Stops scattered over ~1.5 km (so some are within walking distance), a few
    routes with random stop sequences (loops excluded), trips that may
    overtake one another, dwell times, trips running past midnight, random
    pickup/drop-off restrictions, two calendars plus exceptions, and
    transfers.txt rules (minimum change time, forbidden change, minimum
    walking time between two stops).
    """
    n_stops = int(rng.integers(4, 11))
    lat = 48.0 + rng.uniform(0, 0.012, n_stops)
    lon = 11.0 + rng.uniform(0, 0.018, n_stops)
    stops = ["stop_id,stop_name,stop_lat,stop_lon"] + [
        f"S{i},Stop {i},{lat[i]:.6f},{lon[i]:.6f}" for i in range(n_stops)]
    n_routes = int(rng.integers(2, 6))
    routes = ["route_id,route_short_name,route_type"] + [f"R{r},{r},{int(rng.choice([3, 1, 2]))}" for r in range(n_routes)]
    trips = ["route_id,service_id,trip_id"]
    st = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence,pickup_type,drop_off_type"]
    tid = 0
    for r in range(n_routes):
        length = int(rng.integers(2, min(n_stops, 6) + 1))
        seq = rng.permutation(n_stops)[:length]
        pu_pattern = [int(rng.random() < 0.1) for _ in range(length)]
        do_pattern = [int(rng.random() < 0.1) for _ in range(length)]
        for _ in range(int(rng.integers(1, 7))):
            service = "WK" if rng.random() < 0.7 else "WE"
            trips.append(f"R{r},{service},T{tid}")
            t = int(rng.integers(6 * 3600, 26 * 3600)) // 60 * 60
            for i, s in enumerate(seq):
                arr = t
                dep = t + (int(rng.integers(0, 3)) * 60 if rng.random() < 0.3 else 0)
                st.append(f"T{tid},{_hms(arr)},{_hms(dep)},S{s},{i + 1},{pu_pattern[i]},{do_pattern[i]}")
                t = dep + int(rng.integers(0, 15)) * 60
            tid += 1
    cal = ["service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date",
           "WK,1,1,1,1,1,0,0,20250101,20251231", "WE,0,0,0,0,0,1,1,20250101,20251231"]
    cd = ["service_id,date,exception_type", "WE,20250305,1", "WK,20250306,2"]
    tr = ["from_stop_id,to_stop_id,transfer_type,min_transfer_time"]
    for _ in range(int(rng.integers(0, 4))):
        a, b = int(rng.integers(0, n_stops)), int(rng.integers(0, n_stops))
        kind = int(rng.choice([2, 2, 3]))
        tr.append(f"S{a},S{b},{kind},{int(rng.integers(0, 10)) * 60 if kind == 2 else ''}")
    return {"stops.txt": "\n".join(stops), "routes.txt": "\n".join(routes), "trips.txt": "\n".join(trips),
            "stop_times.txt": "\n".join(st), "calendar.txt": "\n".join(cal), "calendar_dates.txt": "\n".join(cd),
            "transfers.txt": "\n".join(tr)}


def walking_graph(tt, walk_speed_m_s: float = 1.3, max_walk_m: float = 1e9):
    """The compiled footpaths and change rules as oracle input (ids, seconds)."""
    import math

    footpaths: dict[str, list[tuple[str, int]]] = {}
    ids = tt.stop_ids.tolist()
    for u in range(tt.n_stops):
        for e in range(int(tt.footpath_offsets[u]), int(tt.footpath_offsets[u + 1])):
            m = float(tt.footpath_m[e])
            if m > max_walk_m:
                continue
            w = max(int(tt.footpath_s[e]), math.ceil(m / walk_speed_m_s))
            footpaths.setdefault(ids[u], []).append((ids[int(tt.footpath_to[e])], w))
    change = {ids[s]: (None if bool(tt.stop_no_transfer[s]) else int(tt.stop_min_change_s[s]))
              for s in range(tt.n_stops)}
    return footpaths, change


# ---------------------------------------------------------------------------------------------
# feasibility of an itinerary


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def check_feasible(
    itinerary: dict,
    net: RefNetwork,
    footpaths: dict[str, list[tuple[str, int]]],
    change_s: dict[str, int | None],
    *,
    walk_speed_m_s: float = 1.3,
    min_change_s: int = 0,
) -> None:
    """Raise AssertionError unless ``itinerary`` (API.md shape) can really be travelled.

    Checks, against the GTFS text: every ride's trip runs on its service date,
    boards and alights at the scheduled times at those stops, in stop order,
    where pickup / drop-off is allowed, intermediate stops are the ones in
    between; legs follow each other in time; a change at the same stop takes
    at least ``max(change, min_change_s)`` and is not forbidden; a walk between
    two rides follows a footpath and the next ride leaves no earlier than
    ``max(walk, min_change_s)`` after the arrival; no walk is faster than
    ``walk_speed_m_s`` (straight line).
    """
    import math

    keys = set(net.trip_keys)
    legs = itinerary["legs"]
    assert legs, "an itinerary has legs"
    prev_arr = None
    for k, leg in enumerate(legs):
        # an in-seat leg (transfers.txt type 4) continues the ride before it: the rider neither boards nor
        # alights at the stops where one part hands over to the next
        stays_on = k + 1 < len(legs) and bool(legs[k + 1].get("in_seat"))
        dep, arr = _epoch(leg["departure"]), _epoch(leg["arrival"])
        assert arr >= dep, f"leg arrives before it departs: {leg}"
        if prev_arr is not None:
            assert dep >= prev_arr, "legs overlap in time"
        prev_arr = arr
        if leg["mode"] == "WALK":
            a, b = leg["from"], leg["to"]
            m = _haversine(a["lat"], a["lon"], b["lat"], b["lon"])
            assert m <= walk_speed_m_s * (arr - dep) + 1.0, f"walk faster than {walk_speed_m_s} m/s: {leg}"
            continue
        trip_id = leg["trip_id"]
        sdate = date.fromisoformat(leg["service_date"])
        assert (trip_id, sdate) in keys, f"trip {trip_id} does not run on {sdate}"
        feed_id, raw = trip_id.split(":", 1)
        if net.rt_trips and (trip_id, sdate) in net.rt_trips:
            r = net.rt_trips[(trip_id, sdate)]
            stops, deps, arrs, pu, do = r["stops"], r["dep"], r["arr"], r["pu"], r["do"]
            skipped = r["skipped"]
        else:
            rows = net.stop_times[feed_id].loc[[raw]].sort_values("seq")
            base = net.day_starts[(feed_id, sdate)]
            stops = (feed_id + ":" + rows["stop_id"].str.strip()).tolist()
            deps = (rows["dp"].to_numpy() + base).tolist()
            arrs = (rows["a"].to_numpy() + base).tolist()
            pu = rows["pu"].tolist()
            do = rows["do"].tolist()
            skipped = [False] * len(stops)
        board = [i for i, s in enumerate(stops) if s == leg["from"]["stop_id"] and deps[i] == dep
                 and (pu[i] != "1" or leg.get("in_seat"))]
        assert board, f"{trip_id} does not leave {leg['from']['stop_id']} at {leg['departure']}"
        i = board[0]
        alight = [j for j in range(i + 1, len(stops))
                  if stops[j] == leg["to"]["stop_id"] and arrs[j] == arr and (do[j] != "1" or stays_on)]
        assert alight, f"{trip_id} does not reach {leg['to']['stop_id']} at {leg['arrival']} after boarding"
        j = alight[0]
        assert [x["stop_id"] for x in leg["intermediate_stops"]] == [
            s for s, sk in zip(stops[i + 1: j], skipped[i + 1: j]) if not sk], "intermediate stops (not skipped)"
    rides = [k for k, leg in enumerate(legs) if leg["mode"] != "WALK"]
    for x, y in zip(rides, rides[1:]):
        a, b = legs[x], legs[y]
        if b.get("in_seat"):
            assert y == x + 1 and _epoch(b["departure"]) >= _epoch(a["arrival"]), "in seat: the next part, no walk"
            continue
        gap = _epoch(b["departure"]) - _epoch(a["arrival"])
        u, v = a["to"]["stop_id"], b["from"]["stop_id"]
        walks = legs[x + 1: y]
        if u == v and not walks:
            c = change_s.get(u, 0)
            assert c is not None, f"changing at {u} is forbidden"
            assert gap >= max(c, min_change_s), f"change at {u} in {gap}s < {max(c, min_change_s)}s"
        else:
            assert len(walks) == 1, "one footpath between two rides"
            w = [s for t, s in footpaths.get(u, []) if t == v]
            assert w, f"no footpath {u} -> {v}"
            assert gap >= max(min(w), min_change_s), f"walk {u}->{v} in {gap}s"
    assert itinerary["transfers"] == max(0, sum(not legs[k].get("in_seat") for k in rides) - 1)
    assert _epoch(itinerary["departure"]) == _epoch(legs[0]["departure"])
    assert _epoch(itinerary["arrival"]) == _epoch(legs[-1]["arrival"])
    assert itinerary["duration_s"] == _epoch(itinerary["arrival"]) - _epoch(itinerary["departure"])
    assert not math.isnan(itinerary["walk_m"])


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    import math

    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(h)))


# ---------------------------------------------------------------------------------------------
# Pareto front over (arrival, rides, walking metres): the McRAPTOR oracle


def _pareto_insert(bag: list[tuple[int, int]], item: tuple[int, int]) -> bool:
    """Keep ``bag`` the minimal (time, walk) pairs; True if ``item`` entered."""
    t, w = item
    if any(t2 <= t and w2 <= w for t2, w2 in bag):
        return False
    bag[:] = [(t2, w2) for t2, w2 in bag if not (t <= t2 and w <= w2)]
    bag.append(item)
    return True


def pareto_front(
    net: RefNetwork,
    origin: str,
    destination: str,
    t0: int,
    max_rides: int,
    footpaths: dict[str, list[tuple[str, int, int]]],
    change_s: dict[str, int | None],
    min_change_s: int = 0,
    horizon_s: int = 12 * 3600,
) -> set[tuple[int, int, int]]:
    """Every (arrival, walking metres, rides) Pareto-optimal journey with 1..max_rides rides.

    Same rules as :func:`earliest_arrivals`; ``footpaths[u]`` lists
    ``(v, seconds, metres)``. Walking from the origin stop / to the destination
    stop is one footpath; changing at a stop walks 0 m.
    """
    idx = net.stop_index
    fp = {idx[u]: [(idx[v], w, m) for v, w, m in lst] for u, lst in footpaths.items() if u in idx}
    orig = [idx[s] for s in net.platforms(origin)]
    dest = {idx[s] for s in net.platforms(destination)}
    egress: dict[int, list[tuple[int, int]]] = {s: [(0, 0)] for s in dest}
    for u, lst in fp.items():
        for v, w, m in lst:
            if v in dest:
                _pareto_insert(egress.setdefault(u, []), (w, m))
    lo = int(np.searchsorted(net.dep, t0, side="left"))
    hi = int(np.searchsorted(net.dep, t0 + horizon_s, side="right"))
    conns = list(zip(net.dep[lo:hi].tolist(), net.arr[lo:hi].tolist(), net.frm[lo:hi].tolist(),
                     net.to[lo:hi].tolist(), net.trip[lo:hi].tolist(),
                     net.pickup_ok[lo:hi].tolist(), net.dropoff_ok[lo:hi].tolist()))
    ready: dict[int, list[tuple[int, int]]] = {}
    for o in orig:
        _pareto_insert(ready.setdefault(o, []), (t0, 0))
        for v, w, m in fp.get(o, []):
            _pareto_insert(ready.setdefault(v, []), (t0 + w, m))
    targets: list[tuple[int, int, int]] = []
    for k in range(1, max_rides + 1):
        trip_walk: dict[int, int] = {}
        rode: dict[int, list[tuple[int, int]]] = {}
        for dep, arr, u, v, trip, pu, do in conns:
            if pu and u in ready:
                best = min((w for t, w in ready[u] if t <= dep), default=None)
                if best is not None and (trip not in trip_walk or best < trip_walk[trip]):
                    trip_walk[trip] = best
            if trip in trip_walk and do:
                _pareto_insert(rode.setdefault(v, []), (arr, trip_walk[trip]))
        new_ready: dict[int, list[tuple[int, int]]] = {}
        for u, bag in rode.items():
            for a, w in bag:
                for ew, em in egress.get(u, []):
                    targets.append((a + ew, w + em, k))
                c = change_s.get(net.stop_ids[u], 0)
                if c is not None:
                    _pareto_insert(new_ready.setdefault(u, []), (a + max(c, min_change_s), w))
                for v, fw, fm in fp.get(u, []):
                    _pareto_insert(new_ready.setdefault(v, []), (a + max(fw, min_change_s), w + fm))
        ready = new_ready  # boarding in round k+1 needs exactly k rides before (fewer were tried already)
    return {x for x in targets
            if not any(y != x and y[0] <= x[0] and y[1] <= x[1] and y[2] <= x[2] for y in targets)}


def walking_graph_m(tt, walk_speed_m_s: float = 1.3, max_walk_m: float = 1e9):
    """Like :func:`walking_graph` with walking metres (rounded up) on each footpath."""
    import math

    footpaths: dict[str, list[tuple[str, int, int]]] = {}
    ids = tt.stop_ids.tolist()
    for u in range(tt.n_stops):
        for e in range(int(tt.footpath_offsets[u]), int(tt.footpath_offsets[u + 1])):
            m = float(tt.footpath_m[e])
            if m > max_walk_m:
                continue
            w = max(int(tt.footpath_s[e]), math.ceil(m / walk_speed_m_s))
            footpaths.setdefault(ids[u], []).append((ids[int(tt.footpath_to[e])], w, math.ceil(m)))
    return footpaths


# ---------------------------------------------------------------------------------------------
# transfers.txt rules keyed by routes / trips, and linked trips (in-seat transfers)


@dataclass
class TransferRules:
    """transfers.txt read from the GTFS text, independently of ``routing``.

    ``rules``: ``(from_stop, to_stop, from_route, to_route, from_trip, to_trip, type, min_s)``
    (namespaced ids, ``""`` = not given). ``time(...)`` picks the most specific rule
    for a transfer between two trips (GTFS ranking: both trips > a trip and a route >
    one trip > both routes > one route > stops only; within a rank a rule naming the
    platform beats one naming its station) and returns the seconds it needs
    (``None`` = not possible, ``"generic"`` = no rule applies: the walking graph decides).
    ``in_seat`` holds ``(from_trip, to_trip)`` pairs of type 4: the rider stays aboard
    at the last stop of the first trip onto the next without it counting as a transfer.
    """

    rules: list[tuple]
    parent: dict[str, str]
    in_seat: set[tuple[str, str]]

    @classmethod
    def from_gtfs(cls, feeds: list[tuple[str, Path]], blocks: bool = False) -> TransferRules:
        """``blocks``: also the in-seat pairs inferred from trips.txt ``block_id`` (:func:`block_in_seat_pairs`)."""
        rules, parent, in_seat = [], {}, set()
        for feed_id, path in feeds:
            if blocks:
                in_seat |= block_in_seat_pairs(feed_id, path)
            stops = read_table(path, "stops.txt")
            if "parent_station" in stops:
                for sid, p in zip(stops["stop_id"], stops["parent_station"]):
                    if p.strip():
                        parent[f"{feed_id}:{sid.strip()}"] = f"{feed_id}:{p.strip()}"
            tr = read_table(path, "transfers.txt")
            if tr is None:
                continue
            for r in tr.to_dict("records"):
                def g(c, r=r):
                    v = str(r.get(c, "") or "").strip()
                    return f"{feed_id}:{v}" if v else ""
                ty = int(str(r.get("transfer_type", "") or "0").strip() or 0)
                mt = int(str(r.get("min_transfer_time", "") or "0").strip() or 0)
                rules.append((g("from_stop_id"), g("to_stop_id"), g("from_route_id"), g("to_route_id"),
                              g("from_trip_id"), g("to_trip_id"), ty, mt))
                if ty == 4:
                    in_seat.add((g("from_trip_id"), g("to_trip_id")))
        return cls(rules, parent, in_seat)

    def _stop_rank(self, rule_stop: str, stop: str) -> int | None:
        if not rule_stop:
            return 0
        if rule_stop == stop:
            return 2
        if self.parent.get(stop) == rule_stop:
            return 1
        return None

    def time(self, q: str, u: str, from_trip: str, from_route: str, to_trip: str, to_route: str,
             min_change_s: int = 0, walk_s: int = 0):
        """Seconds the most specific matching rule needs: types 0/1 nothing at one stop and the
        straight-line walk ``walk_s`` between two, type 2 ``min_transfer_time``, never less than
        ``min_change_s`` nor ``walk_s``; type 3 ``None`` (not possible); no rule ``"generic"``."""
        best, best_key = "generic", None
        for fs, ts, fr, tr, ft, tt, ty, mt in self.rules:
            if ty > 3 or (ft and ft != from_trip) or (tt and tt != to_trip) or (fr and fr != from_route) \
                    or (tr and tr != to_route):
                continue
            a, b = self._stop_rank(fs, q), self._stop_rank(ts, u)
            if a is None or b is None or not fs or not ts:
                continue
            # a side naming its trip and route ranks as the trip (GTFS: from_trip_id takes precedence)
            trips, routes = bool(ft) + bool(tt), bool(fr and not ft) + bool(tr and not tt)
            rank = {(2, 0): 6, (1, 1): 5, (1, 0): 4, (0, 2): 3, (0, 1): 2, (0, 0): 1}[(trips, routes)]
            key = (rank, a + b)
            if best_key is None or key > best_key:
                best_key = key
                walk = walk_s if q != u else 0
                best = None if ty == 3 else max(mt if ty == 2 else 0, min_change_s, walk)
        return best


def block_in_seat_pairs(feed_id: str, path: Path) -> set[tuple[str, str]]:
    """In-seat pairs ``(from_trip, to_trip)`` (namespaced) a block-aware reading of the feed infers, as the
    written rule says: same non-empty ``block_id`` and ``service_id``, neither frequency-based (nor without
    two stop times: such trips are left out before ordering), the second is the next of that block and
    service by first departure (ties: trips.txt order), it leaves no earlier than the first arrives, from
    the first's last stop or a stop of the same parent station; no pair with a type-5 row, no pair from a
    trip that is ``from_trip_id`` of a type-4 row."""
    def secs(v: str) -> int:
        h, m, s_ = (int(x) for x in v.strip().split(":"))
        return h * 3600 + m * 60 + s_

    trips = read_table(path, "trips.txt")
    if trips is None or "block_id" not in trips:
        return set()
    stops = read_table(path, "stops.txt")
    parent = {}
    if "parent_station" in stops:
        parent = {a.strip(): p.strip() for a, p in zip(stops["stop_id"], stops["parent_station"]) if p.strip()}
    freq = read_table(path, "frequencies.txt")
    freq_trips = set() if freq is None else {x.strip() for x in freq["trip_id"]}
    rows: dict[str, list[tuple[int, str, str, str]]] = {}
    for r in read_table(path, "stop_times.txt").to_dict("records"):
        rows.setdefault(r["trip_id"].strip(), []).append(
            (int(r["stop_sequence"]), r["stop_id"].strip(), r["arrival_time"], r["departure_time"]))
    groups: dict[tuple[str, str], list[tuple[int, int, str, int, str]]] = {}
    for pos, r in enumerate(trips.to_dict("records")):
        tid, blk = r["trip_id"].strip(), (r.get("block_id") or "").strip()
        st = sorted(rows.get(tid, []))
        if not blk or tid in freq_trips or len(st) < 2:
            continue
        groups.setdefault((blk, r["service_id"].strip()), []).append(
            (secs(st[0][3]), pos, tid, secs(st[-1][2]), st[0][1] + "|" + st[-1][1]))
    explicit_from, not_allowed = set(), set()
    tr = read_table(path, "transfers.txt")
    for r in ([] if tr is None else tr.to_dict("records")):
        ft, tt = str(r.get("from_trip_id", "") or "").strip(), str(r.get("to_trip_id", "") or "").strip()
        ty = str(r.get("transfer_type", "") or "0").strip()
        if ty == "4" and ft and tt:
            explicit_from.add(ft)
        if ty == "5":
            not_allowed.add((ft, tt))
    out = set()
    for members in groups.values():
        members.sort()
        for (_d1, _p1, t1, arr1, ends1), (dep2, _p2, t2, _a2, ends2) in zip(members, members[1:]):
            last1, first2 = ends1.split("|")[1], ends2.split("|")[0]
            here = last1 == first2 or (last1 in parent and parent.get(first2) == parent[last1])
            if here and dep2 >= arr1 and t1 not in explicit_from and (t1, t2) not in not_allowed:
                out.add((f"{feed_id}:{t1}", f"{feed_id}:{t2}"))
    return out


def earliest_arrivals_rules(
    net: RefNetwork,
    origin: str,
    destination: str,
    t0: int,
    max_rides: int,
    footpaths: dict[str, list[tuple[str, int]]],
    change_s: dict[str, int | None],
    rules: TransferRules,
    min_change_s: int = 0,
    horizon_s: int = 12 * 3600,
    walk_speed_m_s: float = 1.3,
) -> list[int | None]:
    """Like :func:`earliest_arrivals`, honouring ``rules`` between the two trips of every transfer.

    Labels are per *alighting event* (trip, stop, time), not per stop: a later
    arrival on another trip may allow a transfer an earlier one does not. A
    vehicle is boarded at ``u`` when some arrival of the previous round (or the
    origin) makes the rider ready there for *that* trip. Linked trips (type 4) are
    ridden on without counting a ride. Journeys with no ride are left out.
    """
    idx = net.stop_index
    ids = net.stop_ids
    into: dict[int, list[tuple[int, int]]] = {}  # u -> [(q, walking seconds)]
    for u, lst in footpaths.items():
        if u in idx:
            for v, w in lst:
                into.setdefault(idx[v], []).append((idx[u], w))
    dest = {idx[s] for s in net.platforms(destination)}
    egress: dict[int, int] = {s: 0 for s in dest}
    for q, lst in into.items():
        if q in dest:
            for u, w in lst:
                egress[u] = min(egress.get(u, INF), w)
    start: dict[int, int] = {}
    for o in (idx[s] for s in net.platforms(origin)):
        start[o] = t0
        for v, w in footpaths.get(ids[o], []):
            start[idx[v]] = min(start.get(idx[v], INF), t0 + w)
    lo = int(np.searchsorted(net.dep, t0, side="left"))
    hi = int(np.searchsorted(net.dep, t0 + horizon_s, side="right"))
    conns = list(zip(net.dep[lo:hi].tolist(), net.arr[lo:hi].tolist(), net.frm[lo:hi].tolist(),
                     net.to[lo:hi].tolist(), net.trip[lo:hi].tolist(),
                     net.pickup_ok[lo:hi].tolist(), net.dropoff_ok[lo:hi].tolist()))
    key_trip = [k[0] for k in net.trip_keys]
    linked: dict[int, list[int]] = {}  # trip key -> linked trip keys (same service date)
    by_key = {k: i for i, k in enumerate(net.trip_keys)}
    for a, b in rules.in_seat:
        for i, (t, day) in enumerate(net.trip_keys):
            if t == a and (b, day) in by_key:
                linked.setdefault(i, []).append(by_key[(b, day)])
    memo: dict[tuple, object] = {}

    def ready_for(u: int, trip: int, dep: int, arrivals: dict[int, list[tuple[int, int]]]) -> bool:
        for q, w in [(u, None)] + into.get(u, []):
            for a, t_from in arrivals.get(q, []):
                k = (ids[q], ids[u], t_from, trip)
                if k not in memo:
                    walk = 0
                    if q != u:
                        (la1, lo1), (la2, lo2) = net.stop_coords[ids[q]], net.stop_coords[ids[u]]
                        walk = math.ceil(_haversine(la1, lo1, la2, lo2) / walk_speed_m_s)
                    memo[k] = rules.time(ids[q], ids[u], key_trip[t_from], net.trip_route[t_from],
                                         key_trip[trip], net.trip_route[trip], min_change_s, walk)
                r = memo[k]
                if r == "generic":
                    c = change_s.get(ids[u], 0) if w is None else w
                    if c is None:
                        continue
                    r = max(c, min_change_s)
                if r is not None and a + r <= dep:
                    return True
        return False

    best = INF
    out: list[int | None] = [None]
    arrivals: dict[int, list[tuple[int, int]]] = {}
    for k in range(1, max_rides + 1):
        on_board: set[int] = set()
        new: dict[int, list[tuple[int, int]]] = {}
        for dep, arr, u, v, trip, pu, do in conns:
            if trip not in on_board and pu and (start.get(u, INF) <= dep if k == 1
                                                else ready_for(u, trip, dep, arrivals)):
                on_board.add(trip)
            if trip in on_board:
                on_board.update(linked.get(trip, ()))
                if do:
                    new.setdefault(v, []).append((arr, trip))
                    if v in egress:
                        best = min(best, arr + egress[v])
        arrivals = new
        out.append(None if best >= INF else best)
    return out
