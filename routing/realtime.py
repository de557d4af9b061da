"""GTFS-Realtime TripUpdates applied to a compiled timetable without recompiling.

``apply_trip_updates(tt, data, feed_id)`` parses a protobuf ``FeedMessage``
(gtfs-realtime-bindings) and returns a :class:`RealtimeOverlay`: copies of only
the affected patterns' time blocks, with the updated trips' columns changed,
plus per-trip cancelled flags. The timetable itself is never written.

Semantics (GTFS-Realtime reference):

* A trip is matched by ``feed_id:trip_id`` (a frequency-based trip also by its
  ``start_time``), else by a static trip_id ending in ``"_" + trip_id`` (NYCT's
  real-time ids are the tail of the static ones), else, without a trip_id or
  with one the feed does not have, by
  ``route_id`` + ``start_time`` (the
  trip of that route leaving its first stop then and running on ``start_date``;
  when the descriptor sets ``direction_id``, of those the trips of that
  direction or of unknown direction (``Timetable.trip_direction`` -1: blank,
  absent or invalid in trips.txt); as the last resort, of several such trips,
  the ones calling at the stops the update names).
  Updates that match nothing are counted by cause in
  ``counts["unmatched_by_cause"]`` (``unknown_trip_id``, ``ambiguous_trip``,
  ``not_running_that_day``, ``date_outside_timetable``, ...), never fatal.
* ``schedule_relationship`` of the trip: CANCELED / DELETED cancel it that day;
  ADDED / NEW add a trip of ``route_id`` with its own stops and absolute times
  (``added``); DUPLICATED adds a copy of the named trip starting at
  ``trip_properties.start_time`` on ``trip_properties.start_date`` (its
  StopTimeUpdates apply to the copy); REPLACEMENT is read as SCHEDULED.
* A StopTimeUpdate is matched to a position of the trip's pattern by
  ``stop_id`` (the next occurrence after the previous update) or else by
  ``stop_sequence`` (a station's id matches its platform; another platform of
  the station does not match). Absolute ``time`` values become seconds after the service
  day's noon-minus-12h (service day = ``start_date``, else of the feed-local
  date of the message timestamp and the day before, the day the trip runs on
  nearest that time); ``delay`` values add to the schedule. A delay
  applies to every later stop until the next update (propagation); stops before
  the first update keep their schedule. SKIPPED marks the stop as not served
  (``skipped``) and carries the delay through; NO_DATA stops propagation.
* Updated times are made non-decreasing along the trip (an inconsistent
  prediction never makes a vehicle travel back in time). Across trips of one
  pattern the order is kept as compiled, so an overlaid pattern may no longer
  be FIFO: ``pattern_fifo[q]`` says whether it still is.
* A TripUpdate with only a trip-level ``delay`` shifts the whole trip.
* An update applies to the trip on ``trip_day`` (service-day index of the
  timetable); on other days the static schedule holds. Planning runs on
  :func:`realtime_view`, which makes that so (and keeps patterns FIFO).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
from google.transit import gtfs_realtime_pb2

from routing.errors import RealtimeError
from routing.timetable import Timetable

_TRIP_SCHEDULED = gtfs_realtime_pb2.TripDescriptor.SCHEDULED
_TRIP_CANCELED = gtfs_realtime_pb2.TripDescriptor.CANCELED
_TRIP_DELETED = getattr(gtfs_realtime_pb2.TripDescriptor, "DELETED", -99)
_TRIP_ADDED = gtfs_realtime_pb2.TripDescriptor.ADDED
_TRIP_NEW = getattr(gtfs_realtime_pb2.TripDescriptor, "NEW", -98)
_TRIP_DUPLICATED = getattr(gtfs_realtime_pb2.TripDescriptor, "DUPLICATED", -97)
_TRIP_REPLACEMENT = getattr(gtfs_realtime_pb2.TripDescriptor, "REPLACEMENT", -96)
_STU = gtfs_realtime_pb2.TripUpdate.StopTimeUpdate
_STOP_SKIPPED = _STU.SKIPPED
_STOP_NO_DATA = _STU.NO_DATA
_MAX_OFFSET_S = 7 * 86400  # predictions further than this from the service day's start are rejected


@dataclass(frozen=True, eq=False)
class RealtimeOverlay:
    """Copy-on-write real-time state over one :class:`Timetable`.

    Sizes: ``T`` trips and ``P`` patterns of the timetable, ``Q`` overlaid
    patterns, ``M`` cells of their time blocks, ``U`` updated trips.
    """

    feed_id: str
    timestamp: int  #: header timestamp, UTC epoch seconds (0 if absent)
    trip_cancelled: np.ndarray  #: (T,) bool  trip cancelled (on its trip_day)
    patterns: np.ndarray  #: (Q,) int32 overlaid pattern indices, ascending
    pattern_slot: np.ndarray  #: (P,) int32 q of an overlaid pattern, -1 otherwise
    time_offsets: np.ndarray  #: (Q+1,) int64 start of pattern q's block in arr/dep/skipped
    arr: np.ndarray  #: (M,) int32 arrival seconds, same stop-major layout as Timetable.pattern_arr
    dep: np.ndarray  #: (M,) int32 departure seconds
    skipped: np.ndarray  #: (M,) bool  stop skipped by that trip (no boarding/alighting)
    pattern_fifo: np.ndarray  #: (Q,) bool  the overlaid block is still FIFO across trips
    updated_trips: np.ndarray  #: (U,) int32 trip indices with updates (incl. cancelled)
    updated_pattern: np.ndarray  #: (U,) int32 their pattern
    updated_column: np.ndarray  #: (U,) int32 their column in the pattern
    trip_day: np.ndarray  #: (U,) int32 service-day index the update is for
    unmatched_trip_ids: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    counts: dict = field(default_factory=dict)
    #: feed_id -> header timestamp of the snapshot each feed's part comes from (several after a merge)
    feed_timestamps: dict = field(default_factory=dict)

    def pattern_times(self, tt: Timetable, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(arr, dep, skipped)`` of pattern ``p`` shaped (stops, trips), or None if not overlaid."""
        q = int(self.pattern_slot[p])
        if q < 0:
            return None
        a, b = int(self.time_offsets[q]), int(self.time_offsets[q + 1])
        n = int(tt.pattern_n_trips[p])
        return self.arr[a:b].reshape(-1, n), self.dep[a:b].reshape(-1, n), self.skipped[a:b].reshape(-1, n)

    def merged_times(self, tt: Timetable) -> tuple[np.ndarray, np.ndarray]:
        """Full ``(pattern_arr, pattern_dep)`` copies of ``tt`` with the overlay written in (cached)."""
        hit = getattr(self, "_merged", None)
        if hit is not None and hit[0] is tt:
            return hit[1], hit[2]
        arr = np.array(tt.pattern_arr, dtype=np.int32, copy=True)
        dep = np.array(tt.pattern_dep, dtype=np.int32, copy=True)
        for q, p in enumerate(self.patterns.tolist()):
            a, b = int(tt.pattern_time_offsets[p]), int(tt.pattern_time_offsets[p + 1])
            arr[a:b] = self.arr[self.time_offsets[q]:self.time_offsets[q + 1]]
            dep[a:b] = self.dep[self.time_offsets[q]:self.time_offsets[q + 1]]
        object.__setattr__(self, "_merged", (tt, arr, dep))
        return arr, dep


_TRIP_INDEX: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _trip_index(tt: Timetable, feed: int) -> dict[str, list[int]]:
    """``gtfs trip_id -> [trip indices]`` for one feed (frequency copies share an id)."""
    per = _TRIP_INDEX.setdefault(tt, {})
    if feed in per:
        return per[feed]
    trip_feed = np.asarray(tt.route_feed)[np.asarray(tt.trip_route)]
    idx = np.flatnonzero((trip_feed == feed) & ~tt.trip_is_combined)  # combined trips follow their parts
    prefix = len(str(tt.feed_ids[feed])) + 1
    out: dict[str, list[int]] = {}
    for t, tid in zip(idx.tolist(), tt.trip_ids[idx].tolist()):
        out.setdefault(tid[prefix:], []).append(t)
    per[feed] = out
    return out


def _parse_hms(s: str) -> int | None:
    try:
        h, m, sec = (int(x) for x in s.strip().split(":"))
        return h * 3600 + m * 60 + sec
    except ValueError:
        return None


def apply_trip_updates(tt: Timetable, data: bytes, feed_id: str) -> RealtimeOverlay:
    """Apply a GTFS-Realtime TripUpdates message of feed ``feed_id`` to ``tt``.

    Raises :class:`~routing.errors.RealtimeError` if ``data`` is not a
    FeedMessage or ``feed_id`` is not in the timetable; anything inside the
    message that does not match is reported, never fatal.
    """
    if feed_id not in tt.feed_index:
        raise RealtimeError(f"unknown feed {feed_id!r}", details={"feed_id": feed_id})
    from routing.alerts import message_kinds, parse_message

    msg = parse_message(data, feed_id)
    kinds = message_kinds(msg)
    if msg.entity and not kinds["trip_update"]:
        # e.g. Service Alerts or VehiclePositions posted as trip updates: applying them would wipe real time
        what = "Service Alerts" if kinds["alert"] else "VehiclePositions" if kinds["vehicle"] else "other entities"
        raise RealtimeError(f"this message holds no TripUpdates but {what}"
                            + ("; post Service Alerts to /v1/realtime/{feed_id}/alerts" if kinds["alert"] else ""),
                            code="not_trip_updates", details={"feed_id": feed_id, "entities": kinds})
    feed = tt.feed_index[feed_id]
    tz = ZoneInfo(str(tt.feed_timezones[feed]))
    ts = int(msg.header.timestamp) if msg.header.HasField("timestamp") else 0
    default_day = tt.day_index(datetime.fromtimestamp(ts, timezone.utc).astimezone(tz).date()) if ts else None
    index = _trip_index(tt, feed)
    day_epoch_cache: dict[int, int] = {}

    def day_epoch(day: int) -> int:
        if day not in day_epoch_cache:
            day_epoch_cache[day] = int(tt.day_start_utc(feed, day).timestamp())
        return day_epoch_cache[day]

    cancelled = np.zeros(tt.n_trips, dtype=bool)
    blocks: dict[int, list[np.ndarray]] = {}  # pattern -> [arr2d, dep2d, skipped2d] (copies)
    upd_trip, upd_day = [], []
    unmatched: list[str] = []
    warnings: list[str] = []
    counts = {"entities": len(msg.entity), "trip_updates": 0, "matched": 0, "cancelled": 0, "unmatched": 0,
              "stop_updates": 0, "stop_updates_unmatched": 0, "stop_updates_rejected": 0,
              "skipped_stops": 0, "added": 0, "duplicated": 0, "matched_by_route_start": 0,
              "matched_by_trip_id_suffix": 0}
    causes: dict[str, int] = {}
    counts["unmatched_by_cause"] = causes
    counts["kinds"] = kinds
    if not msg.entity:
        warnings.append("the message has no entities: every earlier update of this feed is withdrawn")
    if kinds["alert"]:
        warnings.append(f"{kinds['alert']} Service Alert(s) in this message are not kept here: post them to "
                        f"/v1/realtime/{feed_id}/alerts")
    added: list[RtTrip] = []
    seen: set[tuple[int, int]] = set()
    for ent in msg.entity:
        if not ent.HasField("trip_update"):
            continue
        counts["trip_updates"] += 1
        tu = ent.trip_update
        td = tu.trip
        rel = td.schedule_relationship
        label = td.trip_id or f"<entity {ent.id}: route {td.route_id} at {td.start_time}>"

        def miss(cause: str, what: str) -> None:
            unmatched.append(label)
            counts["unmatched"] += 1
            causes[cause] = causes.get(cause, 0) + 1
            if len(warnings) < 200:
                warnings.append(what)

        if rel in (_TRIP_ADDED, _TRIP_NEW):
            trip = _new_trip(tt, feed_id, feed, tu, default_day, day_epoch, miss)
            if trip is not None:
                added.append(trip)
                counts["added"] += 1
                counts["matched"] += 1
            continue
        cands = index.get(td.trip_id.strip(), []) if td.trip_id else []
        if len(cands) > 1 and td.start_time:
            start = _parse_hms(td.start_time)
            cands = [t for t in cands if int(tt.trip_start_s[t]) == start]
        if not cands and td.trip_id:
            # NYCT style: the static trip_id ends with "_" + the real-time one ("...-Weekday-00_090400_1..S03R")
            cands = _by_id_suffix(tt, feed, td.trip_id.strip())
            if len(cands) > 1 and td.start_date:
                try:
                    d0 = tt.day_index(datetime.strptime(td.start_date, "%Y%m%d").date())
                    if 0 <= d0 < tt.n_days:
                        cands = [t for t in cands if tt.service_days[tt.trip_service[t], d0]]
                except ValueError:
                    pass
            if len(cands) == 1:
                counts["matched_by_trip_id_suffix"] += 1
        if cands:
            pass
        elif td.route_id and td.start_time:
            # a trip named by route + start time (+ start date, + direction)
            cands = _by_route_start(tt, feed_id, td.route_id.strip(), _parse_hms(td.start_time))
            if len(cands) > 1 and td.start_date:
                try:
                    d0 = tt.day_index(datetime.strptime(td.start_date, "%Y%m%d").date())
                    if 0 <= d0 < tt.n_days:
                        cands = [t for t in cands if tt.service_days[tt.trip_service[t], d0]]
                except ValueError:
                    pass
            if len(cands) > 1 and td.HasField("direction_id") and td.direction_id in (0, 1):
                # trips of the direction named, or of unknown direction (-1) in the static feed
                cands = [t for t in cands if int(tt.trip_direction[t]) in (int(td.direction_id), -1)]
            if len(cands) > 1:
                # last resort (no or unknown directions): keep the trips that call at the stops named
                named = {tt.find_stop(f"{feed_id}:{u.stop_id.strip()}") for u in tu.stop_time_update if u.stop_id}
                named.discard(None)
                if named:
                    calls = [t for t in cands if named & set(
                        np.asarray(tt.pattern_stops[tt.pattern_stop_slice(int(tt.trip_pattern[t]))]).tolist())]
                    cands = calls or cands
            if len(cands) == 1:
                counts["matched_by_route_start"] += 1
        elif not td.trip_id:
            miss("no_trip_id", f"entity {ent.id}: neither trip_id nor route_id + start_time")
            continue
        if not cands:
            miss("unknown_trip_id" if td.trip_id else "no_trip_at_route_start",
                 f"trip {label}: not in feed {feed_id}" + (" (nor a trip of its route at its start_time)"
                                                           if td.route_id and td.start_time else ""))
            continue
        if len(cands) > 1:
            miss("ambiguous_trip", f"trip {label}: {len(cands)} trips match (give start_time / trip_id)")
            continue
        t = cands[0]
        if td.start_date:
            try:
                day = tt.day_index(datetime.strptime(td.start_date, "%Y%m%d").date())
            except ValueError:
                miss("bad_start_date", f"trip {label}: bad start_date {td.start_date!r}")
                continue
        else:
            day = _current_service_day(tt, t, default_day, ts, day_epoch)
        if day is None:
            miss("no_service_day", f"trip {label}: no start_date and no header timestamp")
            continue
        if not 0 <= day < tt.n_days:
            miss("date_outside_timetable", f"trip {label}: {td.start_date or 'the message day'} is outside "
                 "the timetable's dates")
            continue
        if not tt.service_days[tt.trip_service[t], day]:
            miss("not_running_that_day", f"trip {label} does not run on {td.start_date or 'the message day'} "
                 "by schedule")
            continue
        p = int(tt.trip_pattern[t])
        col = t - int(tt.pattern_trip_offsets[p])
        ps = tt.pattern_stop_slice(p)
        pstops = np.asarray(tt.pattern_stops[ps])
        pseq = np.asarray(tt.pattern_stop_sequence[ps])
        if rel == _TRIP_DUPLICATED:
            # a copy of trip t at another time (trip_properties.start_time / start_date), t itself runs as planned
            tp = tu.trip_properties
            a2s, d2s = tt.pattern_times(p)
            shift = 0
            if tp.start_time:
                st = _parse_hms(tp.start_time)
                if st is None:
                    miss("bad_start_time", f"trip {label}: bad trip_properties.start_time {tp.start_time!r}")
                    continue
                shift = st - int(d2s[0, col])
            dday = day
            if tp.start_date:
                try:
                    dday = tt.day_index(datetime.strptime(tp.start_date, "%Y%m%d").date())
                except ValueError:
                    miss("bad_start_date", f"trip {label}: bad trip_properties.start_date {tp.start_date!r}")
                    continue
            if not 0 <= dday < tt.n_days:
                miss("date_outside_timetable", f"duplicate of {label}: its date is outside the timetable")
                continue
            sa = a2s[:, col].astype(np.int64) + shift
            sd = d2s[:, col].astype(np.int64) + shift
            new_a, new_d, sk = _apply_stop_updates(tt, feed_id, tu, sa, sd, pstops, pseq, day_epoch(dday), counts)
            added.append(RtTrip(
                base=-1, day=int(dday), route=int(tt.trip_route[t]),
                trip_id=f"{feed_id}:{tp.trip_id or td.trip_id + '@' + (tp.start_time or '')}",
                stops=pstops, arr=new_a.astype(np.int32), dep=new_d.astype(np.int32), skipped=sk,
                pickup=np.asarray(tt.pattern_pickup[ps]), dropoff=np.asarray(tt.pattern_dropoff[ps]),
                stop_sequence=pseq, dist_m=np.asarray(tt.pattern_stop_dist_m[ps]),
                headsign=tp.trip_headsign or str(tt.trip_headsigns[t]),
                wheelchair=int(tt.trip_wheelchair_accessible[t]), shape=int(tt.trip_shape[t]), feed_id=feed_id,
                direction=int(tt.trip_direction[t])))
            counts["duplicated"] += 1
            counts["matched"] += 1
            continue
        if (t, day) in seen:
            miss("repeated_trip", f"trip {label}: a second update for the same trip and day (the first holds)")
            continue
        seen.add((t, day))
        counts["matched"] += 1
        upd_trip.append(t)
        upd_day.append(day)
        if rel in (_TRIP_CANCELED, _TRIP_DELETED):
            cancelled[t] = True
            counts["cancelled"] += 1
            continue
        if rel == _TRIP_REPLACEMENT:
            warnings.append(f"trip {label}: REPLACEMENT is read as SCHEDULED (its stop times update the trip)")
        trip_delay = int(tu.delay) if tu.HasField("delay") else None
        if not len(tu.stop_time_update) and (trip_delay is None or abs(trip_delay) > _MAX_OFFSET_S):
            continue
        if p not in blocks:
            a2, d2 = tt.pattern_times(p)
            blocks[p] = [np.array(a2, copy=True), np.array(d2, copy=True), np.zeros(a2.shape, dtype=bool)]
        a2, d2, sk2 = blocks[p]
        new_a, new_d, sk = _apply_stop_updates(tt, feed_id, tu, a2[:, col].astype(np.int64),
                                               d2[:, col].astype(np.int64), pstops, pseq, day_epoch(day), counts,
                                               trip_delay)
        a2[:, col] = new_a
        d2[:, col] = new_d
        sk2[:, col] = sk
    if counts["unmatched"]:
        warnings.insert(0, f"{counts['unmatched']} trip update(s) match no trip of feed {feed_id} running "
                           f"that day: {causes}")
    ov = _build_overlay(tt, feed_id, ts, cancelled, blocks, upd_trip, upd_day, unmatched, warnings, counts)
    object.__setattr__(ov, "added", tuple(added))
    return ov


def _apply_stop_updates(tt: Timetable, feed_id: str, tu, sched_a: np.ndarray, sched_d: np.ndarray,
                        pstops: np.ndarray, pseq: np.ndarray, base: int, counts: dict,
                        trip_delay: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The trip's ``(arr, dep, skipped)`` after its StopTimeUpdates (see the module docstring)."""
    new_a, new_d = sched_a.copy(), sched_d.copy()
    skipped = np.zeros(len(pstops), dtype=bool)
    L = len(pstops)
    cursor = 0
    delay: int | None = None
    last_pos = -1
    if not len(tu.stop_time_update):  # only TripUpdate.delay: the whole trip shifts
        delay = trip_delay
    for stu in tu.stop_time_update:
        counts["stop_updates"] += 1
        pos = _match_position(tt, feed_id, stu, pstops, pseq, cursor)
        if pos is None:
            counts["stop_updates_unmatched"] += 1
            continue
        # propagate the running delay over the stops since the previous update
        if delay is not None:
            new_a[last_pos + 1:pos] = sched_a[last_pos + 1:pos] + delay
            new_d[last_pos + 1:pos] = sched_d[last_pos + 1:pos] + delay
        rel = stu.schedule_relationship
        if rel == _STOP_NO_DATA:
            delay = None
        elif rel == _STOP_SKIPPED:
            skipped[pos] = True
            counts["skipped_stops"] += 1
            if delay is not None:
                new_a[pos] = sched_a[pos] + delay
                new_d[pos] = sched_d[pos] + delay
        else:
            a = _event_time(stu, "arrival", sched_a[pos], base)
            d = _event_time(stu, "departure", sched_d[pos], base)
            if a is None and d is None:
                pass
            elif not all(-_MAX_OFFSET_S <= x <= _MAX_OFFSET_S for x in (a, d) if x is not None):
                counts["stop_updates_rejected"] += 1  # a time days away from the service day
                continue
            else:
                if a is None:
                    a = min(d, sched_a[pos] + (d - sched_d[pos]))
                if d is None:
                    d = max(a, sched_d[pos] + (a - sched_a[pos]))
                new_a[pos], new_d[pos] = a, max(a, d)
                delay = int(new_d[pos] - sched_d[pos])
        last_pos, cursor = pos, pos + 1
    if delay is not None and last_pos + 1 < L:
        new_a[last_pos + 1:] = sched_a[last_pos + 1:] + delay
        new_d[last_pos + 1:] = sched_d[last_pos + 1:] + delay
    # never back in time along the trip
    inter = np.empty(2 * L, dtype=np.int64)
    inter[0::2], inter[1::2] = new_a, new_d
    inter = np.maximum.accumulate(inter)
    return inter[0::2], inter[1::2], skipped


_ID_SUFFIX: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _by_id_suffix(tt: Timetable, feed: int, rt_id: str) -> list[int]:
    """Trips of ``feed`` whose GTFS trip_id ends with ``"_" + rt_id``."""
    per = _ID_SUFFIX.setdefault(tt, {})
    if feed not in per:
        idx: dict[str, list[int]] = {}
        for raw, ts in _trip_index(tt, feed).items():
            for i, ch in enumerate(raw):
                if ch == "_" and i + 1 < len(raw):
                    idx.setdefault(raw[i + 1:], []).extend(ts)
        per[feed] = idx
    return list(per[feed].get(rt_id, []))


_ROUTE_START: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _by_route_start(tt: Timetable, feed_id: str, route_id: str, start: int | None) -> list[int]:
    """Trips of route ``feed_id:route_id`` leaving their first stop at ``start`` (seconds of the service day)."""
    per = _ROUTE_START.get(tt)
    if per is None:
        per = {}
        comb = tt.trip_is_combined
        for t, (r, s) in enumerate(zip(np.asarray(tt.trip_route).tolist(), np.asarray(tt.trip_start_s).tolist())):
            if not comb[t]:
                per.setdefault((r, s), []).append(t)
        _ROUTE_START[tt] = per
    r = tt.route_index.get(f"{feed_id}:{route_id}")
    if r is None or start is None:
        return []
    return list(per.get((r, start), []))


def _new_trip(tt: Timetable, feed_id: str, feed: int, tu, default_day: int | None, day_epoch, miss) -> RtTrip | None:
    """An ADDED / NEW trip: its own stops and (absolute) times from the StopTimeUpdates."""
    td = tu.trip
    route = tt.route_index.get(f"{feed_id}:{td.route_id.strip()}") if td.route_id else None
    if route is None:
        miss("added_trip_unknown_route", f"added trip {td.trip_id}: route {td.route_id!r} is not in feed {feed_id}")
        return None
    day = default_day
    if td.start_date:
        try:
            day = tt.day_index(datetime.strptime(td.start_date, "%Y%m%d").date())
        except ValueError:
            miss("bad_start_date", f"added trip {td.trip_id}: bad start_date {td.start_date!r}")
            return None
    if day is None or not 0 <= day < tt.n_days:
        miss("date_outside_timetable", f"added trip {td.trip_id}: no service day inside the timetable")
        return None
    base = day_epoch(day)
    stops, arr, dep, seq = [], [], [], []
    for i, stu in enumerate(tu.stop_time_update):
        s = tt.find_stop(f"{feed_id}:{stu.stop_id.strip()}") if stu.stop_id else None
        if s is None or stu.schedule_relationship == _STOP_SKIPPED:
            continue
        a = int(stu.arrival.time) - base if stu.HasField("arrival") and stu.arrival.time else None
        d = int(stu.departure.time) - base if stu.HasField("departure") and stu.departure.time else None
        if a is None and d is None:
            continue
        a = d if a is None else a
        d = a if d is None else max(a, d)
        if not -_MAX_OFFSET_S <= a <= _MAX_OFFSET_S:
            continue
        stops.append(s)
        arr.append(a)
        dep.append(d)
        seq.append(int(stu.stop_sequence) if stu.HasField("stop_sequence") else i)
    if len(stops) < 2:
        miss("added_trip_without_stop_times", f"added trip {td.trip_id}: fewer than two stops with times and "
             "known stop_ids")
        return None
    inter = np.maximum.accumulate(np.column_stack([arr, dep]).ravel())
    st = np.asarray(stops, dtype=np.int32)
    lat, lon = np.radians(np.asarray(tt.stop_lat)[st]), np.radians(np.asarray(tt.stop_lon)[st])
    hop = 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.minimum(1.0, np.sin(np.diff(lat) / 2) ** 2 + np.cos(lat[:-1])
                                                          * np.cos(lat[1:]) * np.sin(np.diff(lon) / 2) ** 2)))
    tp = tu.trip_properties
    n = len(stops)
    return RtTrip(
        base=-1, day=int(day), route=int(route), trip_id=f"{feed_id}:{td.trip_id or tp.trip_id or 'added'}",
        stops=st, arr=inter[0::2].astype(np.int32), dep=inter[1::2].astype(np.int32),
        skipped=np.zeros(n, dtype=bool), pickup=np.zeros(n, dtype=np.int8), dropoff=np.zeros(n, dtype=np.int8),
        stop_sequence=np.asarray(seq, dtype=np.int32),
        dist_m=np.concatenate([[0.0], np.cumsum(hop)]).astype(np.float32),
        headsign=tp.trip_headsign if tp.trip_headsign else "", feed_id=feed_id,
        direction=int(td.direction_id) if td.HasField("direction_id") and td.direction_id in (0, 1) else -1)


def _current_service_day(tt: Timetable, t: int, default_day: int | None, ts: int, day_epoch) -> int | None:
    """Service day of a trip update without start_date: of the message's local date and the day before
    (trips past midnight), the one on which the trip runs and is nearest to the message time."""
    if default_day is None:
        return None
    p = int(tt.trip_pattern[t])
    a2, d2 = tt.pattern_times(p)
    c = t - int(tt.pattern_trip_offsets[p])
    lo, hi = int(d2[0, c]), int(a2[-1, c])
    best, best_gap = default_day, None
    for day in (default_day, default_day - 1):
        if not 0 <= day < tt.n_days or not tt.service_days[tt.trip_service[t], day]:
            continue
        x = ts - day_epoch(day)
        gap = 0 if lo <= x <= hi else min(abs(x - lo), abs(x - hi))
        if best_gap is None or gap < best_gap:
            best, best_gap = day, gap
    return best


def _event_time(stu, name: str, scheduled: int, base: int) -> int | None:
    if not stu.HasField(name):
        return None
    ev = getattr(stu, name)
    if ev.HasField("time") and ev.time > 0:
        return int(ev.time) - base
    if ev.HasField("delay"):
        return int(scheduled) + int(ev.delay)
    return None


def _match_position(tt: Timetable, feed_id: str, stu, pstops: np.ndarray, pseq: np.ndarray, cursor: int) -> int | None:
    if stu.stop_id:
        s = tt.find_stop(f"{feed_id}:{stu.stop_id.strip()}")
        if s is not None:
            hit = np.flatnonzero(pstops[cursor:] == s)
            if len(hit):
                return cursor + int(hit[0])
            # the update may name the station (not another platform: that may be the other direction's)
            if tt.stop_location_type[s] == 1:
                hit = np.flatnonzero(np.asarray(tt.stop_parent)[pstops[cursor:]] == s)
                if len(hit):
                    return cursor + int(hit[0])
    if stu.HasField("stop_sequence"):
        hit = np.flatnonzero(pseq == stu.stop_sequence)
        if len(hit):
            return int(hit[0])
    return None


def _build_overlay(tt, feed_id, ts, cancelled, blocks, upd_trip, upd_day, unmatched, warnings, counts):
    pats = np.array(sorted(blocks), dtype=np.int32)
    slot = np.full(tt.n_patterns, -1, dtype=np.int32)
    slot[pats] = np.arange(len(pats), dtype=np.int32)
    sizes = [blocks[p][0].size for p in pats.tolist()]
    offs = np.zeros(len(pats) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offs[1:])
    flat = lambda k, dt: (np.concatenate([blocks[p][k].ravel() for p in pats.tolist()]).astype(dt)  # noqa: E731
                          if len(pats) else np.zeros(0, dt))
    fifo = np.array([
        bool((np.diff(blocks[p][0], axis=1) >= 0).all() and (np.diff(blocks[p][1], axis=1) >= 0).all())
        for p in pats.tolist()], dtype=bool)
    ut = np.asarray(upd_trip, dtype=np.int32)
    up = np.asarray(tt.trip_pattern)[ut].astype(np.int32) if len(ut) else np.zeros(0, np.int32)
    uc = (ut - np.asarray(tt.pattern_trip_offsets)[up]).astype(np.int32) if len(ut) else np.zeros(0, np.int32)
    return RealtimeOverlay(
        feed_id=feed_id, timestamp=ts, trip_cancelled=cancelled, patterns=pats, pattern_slot=slot,
        time_offsets=offs, arr=flat(0, np.int32), dep=flat(1, np.int32), skipped=flat(2, bool),
        pattern_fifo=fifo, updated_trips=ut, updated_pattern=up, updated_column=uc,
        trip_day=np.asarray(upd_day, dtype=np.int32), unmatched_trip_ids=tuple(unmatched),
        warnings=tuple(warnings), counts=counts, feed_timestamps={feed_id: ts},
    )


def merge_overlays(tt: Timetable, overlays) -> RealtimeOverlay | None:
    """One overlay holding several overlays: each feed's (or each source's of a feed) latest snapshot.

    ``None`` for no overlays. The result has the interface of a single overlay
    (``feed_id`` is the feeds joined by ``+``, ``timestamp`` the oldest).
    """
    overlays = [o for o in overlays if o is not None]
    if not overlays:
        return None
    if len(overlays) == 1:
        return overlays[0]
    cancelled = np.zeros(tt.n_trips, dtype=bool)
    blocks: dict[int, list[np.ndarray]] = {}
    upd_trip: list[int] = []
    upd_day: list[int] = []
    for ov in overlays:
        cancelled |= np.asarray(ov.trip_cancelled, dtype=bool)
        for p, c in zip(np.asarray(ov.updated_pattern).tolist(), np.asarray(ov.updated_column).tolist()):
            got = ov.pattern_times(tt, p)
            if got is None:
                continue  # cancelled or confirmed: no times of its own
            if p not in blocks:  # (two sources of one feed may update trips of the same pattern)
                a2, d2 = tt.pattern_times(p)
                blocks[p] = [np.array(a2, copy=True), np.array(d2, copy=True), np.zeros(a2.shape, dtype=bool)]
            for k in range(3):
                blocks[p][k][:, c] = got[k][:, c]
        upd_trip.extend(np.asarray(ov.updated_trips).tolist())
        upd_day.extend(np.asarray(ov.trip_day).tolist())
    counts: dict = {}
    for ov in overlays:
        for k, v in ov.counts.items():
            if isinstance(v, int):
                counts[k] = counts.get(k, 0) + v
    stamps = {k: v for ov in overlays for k, v in ov.feed_timestamps.items()}
    merged = _build_overlay(tt, "+".join(o.feed_id for o in overlays), min(o.timestamp for o in overlays),
                            cancelled, blocks, upd_trip, upd_day,
                            [u for o in overlays for u in o.unmatched_trip_ids],
                            [w for o in overlays for w in o.warnings], counts)
    object.__setattr__(merged, "feed_timestamps", stamps)
    object.__setattr__(merged, "added", tuple(t for o in overlays for t in getattr(o, "added", ())))
    return merged


# --------------------------------------------------------------------------------------------
# the real-time view: a timetable in which updated trips are real-time copies on their service day


@dataclass
class RtTrip:
    """One trip of the real-time view that is not in the static timetable as it is.

    ``base``: the static trip it replaces on ``day`` (-1 for an added trip);
    the arrays are per stop of the trip, ``skipped`` stops are neither boarded
    nor left (pickup and drop-off NONE in the view).
    """

    base: int
    day: int
    route: int
    trip_id: str
    stops: np.ndarray
    arr: np.ndarray
    dep: np.ndarray
    skipped: np.ndarray
    pickup: np.ndarray
    dropoff: np.ndarray
    stop_sequence: np.ndarray
    dist_m: np.ndarray
    headsign: str = ""
    wheelchair: int = 0
    shape: int = -1
    frequency: int = 0
    feed_id: str = ""
    direction: int = -1  #: trips.txt direction_id of the base trip, the TripDescriptor's of an added one; -1 unknown


def overlay_rt_trips(tt: Timetable, ov: RealtimeOverlay) -> tuple[list[RtTrip], list[tuple[int, int]]]:
    """``(real-time trips, [(static trip, day) removed])`` of one overlay."""
    trips: list[RtTrip] = []
    removed: list[tuple[int, int]] = []
    for t, day in zip(np.asarray(ov.updated_trips).tolist(), np.asarray(ov.trip_day).tolist()):
        if not 0 <= day < tt.n_days:
            continue  # the service day is outside the timetable: nothing of it runs anyway
        removed.append((t, day))
        if bool(ov.trip_cancelled[t]):
            continue
        p = int(tt.trip_pattern[t])
        c = t - int(tt.pattern_trip_offsets[p])
        ps = tt.pattern_stop_slice(p)
        blk = ov.pattern_times(tt, p)
        if blk is None:  # matched, nothing changed: the static times, confirmed
            a2, d2 = tt.pattern_times(p)
            a, d, sk = a2[:, c], d2[:, c], np.zeros(a2.shape[0], dtype=bool)
        else:
            a, d, sk = blk[0][:, c], blk[1][:, c], blk[2][:, c]
        trips.append(RtTrip(
            base=t, day=int(day), route=int(tt.trip_route[t]), trip_id=str(tt.trip_ids[t]),
            stops=np.asarray(tt.pattern_stops[ps]), arr=np.asarray(a, dtype=np.int32),
            dep=np.asarray(d, dtype=np.int32), skipped=np.asarray(sk, dtype=bool),
            pickup=np.asarray(tt.pattern_pickup[ps]), dropoff=np.asarray(tt.pattern_dropoff[ps]),
            stop_sequence=np.asarray(tt.pattern_stop_sequence[ps]), dist_m=np.asarray(tt.pattern_stop_dist_m[ps]),
            headsign=str(tt.trip_headsigns[t]), wheelchair=int(tt.trip_wheelchair_accessible[t]),
            shape=int(tt.trip_shape[t]), frequency=int(tt.trip_frequency[t]), feed_id=ov.feed_id,
            direction=int(tt.trip_direction[t])))
    return trips, removed


def realtime_view(tt: Timetable, overlays) -> Timetable:
    """The timetable as real time has it: a new :class:`Timetable` extending ``tt``.

    ``overlays``: one :class:`RealtimeOverlay` or several (one per feed; they
    touch disjoint trips). Everything of ``tt`` keeps its index (stops, routes,
    patterns ``0..P-1``, trips ``0..T-1`` with their static times). A trip an
    update names stops running *on the update's service day only* (its
    service row loses that day); on that day a real-time copy of it runs
    instead (appended trips, in appended patterns). Cancelled trips just lose
    the day. Copies are grouped into patterns by route, stops and pickup /
    drop-off (a skipped stop is pickup and drop-off NONE) and split into FIFO
    lanes, so the kernels' assumption that trips of a pattern do not overtake
    holds under delays as it does for the static timetable.

    ``meta["realtime"]`` of the view: ``base_trip`` ((T',) int32: the static
    trip a trip stands for, -1 for an added trip), ``rt_trip`` ((T',) bool),
    ``skipped`` (set of pattern-stop positions a trip skips), ``feeds``.
    """
    if isinstance(overlays, RealtimeOverlay):
        overlays = [overlays]
    overlays = [o for o in overlays if o is not None]
    rt_trips: list[RtTrip] = []
    removed: list[tuple[int, int]] = []
    for ov in overlays:
        tr, rm = overlay_rt_trips(tt, ov)
        rt_trips.extend(tr)
        removed.extend(rm)
        rt_trips.extend(getattr(ov, "added", ()) or ())
    combined, gone = _combined_rt_trips(tt, rt_trips, removed)
    rt_trips.extend(combined)
    removed.extend(gone)
    stamps = {k: v for o in overlays for k, v in (o.feed_timestamps or {o.feed_id: o.timestamp}).items()}
    return _extend_timetable(tt, rt_trips, removed, stamps)


def _combined_rt_trips(tt: Timetable, rt_trips: list[RtTrip], removed: list[tuple[int, int]]
                       ) -> tuple[list[RtTrip], list[tuple[int, int]]]:
    """A combined (in-seat) trip follows its parts: on a day an update names one of its parts, it stops
    running as scheduled; unless a part is cancelled that day, a real-time copy runs instead whose times
    at each part's positions are that part's real-time times (at a position two parts share, the
    arrival of the earlier and the departure of the later), made non-decreasing along the trip.
    Returns (copies, [(combined trip, day) removed])."""
    comb = np.flatnonzero(tt.trip_is_combined)
    if not len(comb) or not removed:
        return [], []
    of_part: dict[int, list[int]] = {}
    for s in comb.tolist():
        for q, _fp in tt.trip_parts(s):
            of_part.setdefault(q, []).append(s)
    rt_of = {(r.base, r.day): r for r in rt_trips if r.base >= 0}
    hit = sorted({(s, day) for t, day in removed for s in of_part.get(t, ())
                  if tt.service_days[int(tt.trip_service[s]), day]})
    copies: list[RtTrip] = []
    removed_set = set(removed)
    for s, day in hit:
        parts = tt.trip_parts(s)
        if any((q, day) in removed_set and (q, day) not in rt_of for q, _ in parts):
            continue  # a part is cancelled that day: so is the combined trip
        p = int(tt.trip_pattern[s])
        c = s - int(tt.pattern_trip_offsets[p])
        ps = tt.pattern_stop_slice(p)
        a2, d2 = tt.pattern_times(p)
        arr, dep = a2[:, c].astype(np.int64), d2[:, c].astype(np.int64)
        sk = np.zeros(len(arr), dtype=bool)
        for k, (q, fp) in enumerate(parts):
            r = rt_of.get((q, day))
            if r is None:
                continue
            n = len(r.arr)
            shared = k > 0 and parts[k - 1][1] + len(tt.pattern_stops[tt.pattern_stop_slice(
                int(tt.trip_pattern[parts[k - 1][0]]))]) - 1 == fp
            lo = fp + 1 if shared else fp
            arr[lo:fp + n] = r.arr[lo - fp:]
            dep[fp:fp + n] = r.dep
            sk[fp:fp + n] |= r.skipped
        inter = np.empty(2 * len(arr), dtype=np.int64)
        inter[0::2], inter[1::2] = arr, dep
        inter = np.maximum.accumulate(inter)
        copies.append(RtTrip(
            base=s, day=int(day), route=int(tt.trip_route[s]), trip_id=str(tt.trip_ids[s]),
            stops=np.asarray(tt.pattern_stops[ps]), arr=inter[0::2].astype(np.int32),
            dep=inter[1::2].astype(np.int32), skipped=sk,
            pickup=np.asarray(tt.pattern_pickup[ps]), dropoff=np.asarray(tt.pattern_dropoff[ps]),
            stop_sequence=np.asarray(tt.pattern_stop_sequence[ps]), dist_m=np.asarray(tt.pattern_stop_dist_m[ps]),
            headsign=str(tt.trip_headsigns[s]), wheelchair=int(tt.trip_wheelchair_accessible[s]),
            shape=int(tt.trip_shape[s]), frequency=int(tt.trip_frequency[s]),
            feed_id=str(tt.feed_ids[int(tt.route_feed[int(tt.trip_route[s])])]), direction=int(tt.trip_direction[s])))
    return copies, hit


def _extend_timetable(tt: Timetable, rt_trips: list[RtTrip], removed: list[tuple[int, int]],
                      feeds: dict[str, int]) -> Timetable:
    import dataclasses

    T, P, S = tt.n_trips, tt.n_patterns, tt.n_stops
    sd = np.asarray(tt.service_days)
    rows: list[np.ndarray] = []
    row_of: dict[tuple, int] = {}

    def service_row(key: tuple, make) -> int:
        if key not in row_of:
            row_of[key] = sd.shape[0] + len(rows)
            rows.append(make())
        return row_of[key]

    trip_service = np.array(tt.trip_service, dtype=np.int32, copy=True)
    days_of: dict[int, set[int]] = {}
    for t, day in removed:
        days_of.setdefault(t, set()).add(day)
    for t, days in days_of.items():
        base_row = int(tt.trip_service[t])

        def without(base_row=base_row, days=days):
            r = sd[base_row].copy()
            r[sorted(days)] = 0
            return r
        trip_service[t] = service_row(("minus", base_row, tuple(sorted(days))), without)

    # group the real-time trips into patterns: same route, stops, pickup/drop-off; then FIFO lanes
    groups: dict[tuple, list[int]] = {}
    # a trip named by a route/trip-keyed transfer rule keeps a pattern of its own (as in the compiler):
    # the search gives such rules to whole patterns
    ruled = np.concatenate([np.asarray(tt.trip_transfer_from_trip), np.asarray(tt.trip_transfer_to_trip)])
    named = {str(x) for x in np.asarray(tt.trip_ids)[ruled[ruled >= 0].astype(np.int64)]}
    for i, r in enumerate(rt_trips):
        pu = np.where(r.skipped, 1, r.pickup).astype(np.int8)
        do = np.where(r.skipped, 1, r.dropoff).astype(np.int8)
        r.pickup, r.dropoff = pu, do
        key = (r.route, r.stops.astype(np.int32).tobytes(), pu.tobytes(), do.tobytes(),
               r.trip_id if r.trip_id in named else "")
        groups.setdefault(key, []).append(i)
    lanes_all: list[list[int]] = []
    for members in groups.values():
        members.sort(key=lambda i: (int(rt_trips[i].dep[0]), int(rt_trips[i].arr[-1])))
        lanes: list[list[int]] = []
        for i in members:
            a, d = rt_trips[i].arr, rt_trips[i].dep
            for lane in lanes:
                la, ld = rt_trips[lane[-1]].arr, rt_trips[lane[-1]].dep
                if (a >= la).all() and (d >= ld).all():
                    lane.append(i)
                    break
            else:
                lanes.append([i])
        lanes_all.extend(lanes)

    n_new = len(rt_trips)
    new_trip_order = [i for lane in lanes_all for i in lane]
    t_service = np.empty(n_new, dtype=np.int32)
    t_pattern = np.empty(n_new, dtype=np.int32)
    p_route, p_n, p_stop_len, p_blocks_a, p_blocks_d = [], [], [], [], []
    stops_l, pu_l, do_l, seq_l, dist_l = [], [], [], [], []
    skipped_pos: set[int] = set()
    L0 = int(tt.pattern_stop_offsets[-1])
    k = 0
    for q, lane in enumerate(lanes_all):
        r0 = rt_trips[lane[0]]
        for i in lane:
            r = rt_trips[i]
            t_service[k] = service_row(("day", r.day), lambda day=r.day: _only_day(sd.shape[1], day))
            t_pattern[k] = P + q
            k += 1
        n_s = len(r0.stops)
        p_route.append(r0.route)
        p_n.append(len(lane))
        p_stop_len.append(n_s)
        p_blocks_a.append(np.stack([rt_trips[i].arr for i in lane], axis=1).ravel())
        p_blocks_d.append(np.stack([rt_trips[i].dep for i in lane], axis=1).ravel())
        base_l = L0 + sum(p_stop_len[:-1])
        for pos in np.flatnonzero(np.logical_or.reduce([rt_trips[i].skipped for i in lane])).tolist():
            skipped_pos.add(base_l + pos)  # (the whole lane shares pickup/drop-off, so skips are common)
        stops_l.append(r0.stops)
        pu_l.append(r0.pickup)
        do_l.append(r0.dropoff)
        seq_l.append(r0.stop_sequence)
        dist_l.append(r0.dist_m)
    ordered = [rt_trips[i] for i in new_trip_order]

    def cat(base, extra, dtype):
        extra = np.asarray(extra, dtype=dtype) if len(extra) else np.zeros(0, dtype=dtype)
        return np.concatenate([np.asarray(base, dtype=dtype), extra])

    def strcat(base, extra):
        return np.concatenate([np.asarray(base), np.asarray(extra, dtype=str)]) if extra else np.asarray(base)

    ns = np.asarray(p_stop_len, dtype=np.int64)
    nt = np.asarray(p_n, dtype=np.int64)
    stop_off = np.concatenate([np.asarray(tt.pattern_stop_offsets, dtype=np.int64),
                               L0 + np.cumsum(ns)]).astype(tt.pattern_stop_offsets.dtype)
    trip_off = np.concatenate([np.asarray(tt.pattern_trip_offsets, dtype=np.int64),
                               T + np.cumsum(nt)]).astype(tt.pattern_trip_offsets.dtype)
    N0 = int(tt.pattern_time_offsets[-1])
    time_off = np.concatenate([np.asarray(tt.pattern_time_offsets, dtype=np.int64), N0 + np.cumsum(ns * nt)])
    new_pstops = np.concatenate(stops_l).astype(np.int32) if stops_l else np.zeros(0, np.int32)
    # stop -> patterns CSR over the old and the new patterns
    base_counts = np.diff(np.asarray(tt.stop_pattern_offsets, dtype=np.int64))
    base_stop = np.repeat(np.arange(S), base_counts)
    new_pat = np.repeat(np.arange(P, P + len(lanes_all)), ns) if len(lanes_all) else np.zeros(0, np.int64)
    new_pos = (np.arange(len(new_pstops)) - np.repeat(stop_off[P:-1] - L0, ns)) if len(lanes_all) \
        else np.zeros(0, np.int64)
    all_stop = np.concatenate([base_stop, new_pstops.astype(np.int64)])
    all_pat = np.concatenate([np.asarray(tt.stop_patterns, dtype=np.int64), new_pat])
    all_pos = np.concatenate([np.asarray(tt.stop_pattern_pos, dtype=np.int64), new_pos])
    order = np.argsort(all_stop, kind="stable")
    sp_off = np.concatenate([[0], np.cumsum(np.bincount(all_stop, minlength=S))])
    base_trip = np.concatenate([np.full(T, -1, dtype=np.int32), np.asarray([r.base for r in ordered], dtype=np.int32)])
    # a real-time copy of a combined trip has its parts (the static trips: ids, routes and shapes of its legs)
    lo = np.asarray(tt.trip_link_offsets, dtype=np.int64)
    nb = base_trip[T:].astype(np.int64)
    cnt = np.where(nb >= 0, lo[np.maximum(nb, 0) + 1] - lo[np.maximum(nb, 0)], 0)
    src = np.concatenate([np.arange(lo[b], lo[b + 1]) for b, k in zip(nb.tolist(), cnt.tolist()) if k] or
                         [np.zeros(0, np.int64)]).astype(np.int64)
    link_off = np.concatenate([lo, lo[-1] + np.cumsum(cnt)]).astype(tt.trip_link_offsets.dtype)
    meta = dict(tt.meta)
    meta["realtime"] = {"base_trip": base_trip, "rt_trip": np.arange(T + n_new) >= T, "skipped": skipped_pos,
                        "feeds": dict(feeds), "static": tt}
    view = dataclasses.replace(
        tt,
        trip_ids=strcat(tt.trip_ids, [r.trip_id for r in ordered]),
        trip_route=cat(tt.trip_route, [r.route for r in ordered], tt.trip_route.dtype),
        trip_service=np.concatenate([trip_service, t_service]).astype(tt.trip_service.dtype),
        trip_pattern=cat(tt.trip_pattern, t_pattern, tt.trip_pattern.dtype),
        trip_headsigns=strcat(tt.trip_headsigns, [r.headsign for r in ordered]),
        trip_wheelchair_accessible=cat(tt.trip_wheelchair_accessible, [r.wheelchair for r in ordered],
                                       tt.trip_wheelchair_accessible.dtype),
        trip_shape=cat(tt.trip_shape, [r.shape for r in ordered], tt.trip_shape.dtype),
        trip_direction=cat(tt.trip_direction, [r.direction for r in ordered], tt.trip_direction.dtype),
        trip_frequency=cat(tt.trip_frequency, [r.frequency for r in ordered], tt.trip_frequency.dtype),
        trip_start_s=cat(tt.trip_start_s, [int(r.dep[0]) for r in ordered], tt.trip_start_s.dtype),
        trip_link_offsets=link_off,
        trip_link_parts=cat(tt.trip_link_parts, np.asarray(tt.trip_link_parts)[src], tt.trip_link_parts.dtype),
        trip_link_first_pos=cat(tt.trip_link_first_pos, np.asarray(tt.trip_link_first_pos)[src],
                                tt.trip_link_first_pos.dtype),
        pattern_route=cat(tt.pattern_route, p_route, tt.pattern_route.dtype),
        pattern_n_trips=cat(tt.pattern_n_trips, p_n, tt.pattern_n_trips.dtype),
        pattern_trip_offsets=trip_off,
        pattern_stop_offsets=stop_off,
        pattern_stops=cat(tt.pattern_stops, new_pstops, tt.pattern_stops.dtype),
        pattern_pickup=cat(tt.pattern_pickup, np.concatenate(pu_l) if pu_l else [], tt.pattern_pickup.dtype),
        pattern_dropoff=cat(tt.pattern_dropoff, np.concatenate(do_l) if do_l else [], tt.pattern_dropoff.dtype),
        pattern_stop_sequence=cat(tt.pattern_stop_sequence, np.concatenate(seq_l) if seq_l else [],
                                  tt.pattern_stop_sequence.dtype),
        pattern_stop_dist_m=cat(tt.pattern_stop_dist_m, np.concatenate(dist_l) if dist_l else [],
                                tt.pattern_stop_dist_m.dtype),
        pattern_time_offsets=time_off.astype(tt.pattern_time_offsets.dtype),
        pattern_arr=cat(tt.pattern_arr, np.concatenate(p_blocks_a) if p_blocks_a else [], tt.pattern_arr.dtype),
        pattern_dep=cat(tt.pattern_dep, np.concatenate(p_blocks_d) if p_blocks_d else [], tt.pattern_dep.dtype),
        stop_pattern_offsets=sp_off.astype(tt.stop_pattern_offsets.dtype),
        stop_patterns=all_pat[order].astype(tt.stop_patterns.dtype),
        stop_pattern_pos=all_pos[order].astype(tt.stop_pattern_pos.dtype),
        service_days=np.vstack([sd] + rows).astype(sd.dtype) if rows else sd,
        meta=meta,
    )
    return view


def _only_day(n_days: int, day: int) -> np.ndarray:
    r = np.zeros(n_days, dtype=np.uint8)
    r[day] = 1
    return r


def view_for(tt: Timetable, realtime) -> Timetable:
    """The real-time view of ``tt`` for ``realtime`` (an overlay or an object with ``overlays``), cached on it.

    ``tt`` itself when ``realtime`` is None or ``tt`` already is a view.
    """
    if realtime is None or "realtime" in tt.meta:
        return tt
    hit = getattr(realtime, "_view", None)
    if hit is not None and hit[0]() is tt:
        return hit[1]
    overlays = getattr(realtime, "overlays", realtime)
    if isinstance(overlays, dict):
        overlays = list(overlays.values())
    view = realtime_view(tt, overlays)
    object.__setattr__(realtime, "_view", (weakref.ref(tt), view))
    return view
