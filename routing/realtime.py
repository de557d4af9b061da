"""GTFS-Realtime TripUpdates applied to a compiled timetable without recompiling.

``apply_trip_updates(tt, data, feed_id)`` parses a protobuf ``FeedMessage``
(gtfs-realtime-bindings) and returns a :class:`RealtimeOverlay`: copies of only
the affected patterns' time blocks, with the updated trips' columns changed,
plus per-trip cancelled flags. The timetable itself is never written.

Semantics (GTFS-Realtime reference):

* A trip is matched by ``feed_id:trip_id``; a frequency-based trip also by its
  ``start_time``. Unmatched trips are listed in ``unmatched_trip_ids``, never fatal.
* ``schedule_relationship`` CANCELED (or DELETED) sets ``trip_cancelled``.
* A StopTimeUpdate is matched to a position of the trip's pattern by
  ``stop_id`` (the next occurrence after the previous update) or else by
  ``stop_sequence``. Absolute ``time`` values become seconds after the service
  day's noon-minus-12h (service day = ``start_date``, else the feed-local date
  of the message timestamp); ``delay`` values add to the schedule. A delay
  applies to every later stop until the next update (propagation); stops before
  the first update keep their schedule. SKIPPED marks the stop as not served
  (``skipped``) and carries the delay through; NO_DATA stops propagation.
* Updated times are made non-decreasing along the trip (an inconsistent
  prediction never makes a vehicle travel back in time). Across trips of one
  pattern the order is kept as compiled, so an overlaid pattern may no longer
  be FIFO: ``pattern_fifo[q]`` says whether it still is.
* A TripUpdate with only a trip-level ``delay`` shifts the whole trip.
* An update applies to the trip on ``trip_day`` (service-day index of the
  timetable); on other days the static schedule holds.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2

from routing.errors import RealtimeError
from routing.timetable import Timetable

_TRIP_SCHEDULED = gtfs_realtime_pb2.TripDescriptor.SCHEDULED
_TRIP_CANCELED = gtfs_realtime_pb2.TripDescriptor.CANCELED
_TRIP_DELETED = getattr(gtfs_realtime_pb2.TripDescriptor, "DELETED", -99)
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
    idx = np.flatnonzero(trip_feed == feed)
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
    msg = gtfs_realtime_pb2.FeedMessage()
    try:
        msg.ParseFromString(bytes(data))
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise RealtimeError(f"not a GTFS-Realtime FeedMessage: {exc}", details={"feed_id": feed_id}) from exc
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
              "skipped_stops": 0}
    for ent in msg.entity:
        if not ent.HasField("trip_update"):
            continue
        counts["trip_updates"] += 1
        tu = ent.trip_update
        td = tu.trip
        cands = index.get(td.trip_id.strip(), []) if td.trip_id else []
        if len(cands) > 1 and td.start_time:
            start = _parse_hms(td.start_time)
            cands = [t for t in cands if int(tt.trip_start_s[t]) == start]
        if len(cands) != 1:
            unmatched.append(td.trip_id or f"<entity {ent.id} without trip_id>")
            counts["unmatched"] += 1
            continue
        t = cands[0]
        if td.start_date:
            try:
                day = tt.day_index(datetime.strptime(td.start_date, "%Y%m%d").date())
            except ValueError:
                warnings.append(f"trip {td.trip_id}: bad start_date {td.start_date!r}")
                day = default_day
        else:
            day = default_day
        if day is None:
            warnings.append(f"trip {td.trip_id}: no start_date and no header timestamp; update ignored")
            continue
        counts["matched"] += 1
        if 0 <= day < tt.n_days and not tt.service_days[tt.trip_service[t], day]:
            warnings.append(f"trip {td.trip_id} does not run on {td.start_date or 'the message day'} by schedule")
        upd_trip.append(t)
        upd_day.append(day)
        if td.schedule_relationship in (_TRIP_CANCELED, _TRIP_DELETED):
            cancelled[t] = True
            counts["cancelled"] += 1
            continue
        trip_delay = int(tu.delay) if tu.HasField("delay") else None
        if not len(tu.stop_time_update) and (trip_delay is None or abs(trip_delay) > _MAX_OFFSET_S):
            continue
        p = int(tt.trip_pattern[t])
        col = t - int(tt.pattern_trip_offsets[p])
        if p not in blocks:
            a2, d2 = tt.pattern_times(p)
            blocks[p] = [np.array(a2, copy=True), np.array(d2, copy=True), np.zeros(a2.shape, dtype=bool)]
        a2, d2, sk2 = blocks[p]
        ps = tt.pattern_stop_slice(p)
        pstops = np.asarray(tt.pattern_stops[ps])
        pseq = np.asarray(tt.pattern_stop_sequence[ps])
        sched_a = a2[:, col].astype(np.int64)
        sched_d = d2[:, col].astype(np.int64)
        new_a, new_d = sched_a.copy(), sched_d.copy()
        L = len(pstops)
        cursor = 0
        delay: int | None = None
        last_pos = -1
        if not len(tu.stop_time_update):  # only TripUpdate.delay: the whole trip shifts
            delay = trip_delay
        base = day_epoch(day)
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
                sk2[pos, col] = True
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
        a2[:, col] = inter[0::2]
        d2[:, col] = inter[1::2]
    if counts["unmatched"]:
        warnings.append(f"{counts['unmatched']} trip update(s) match no trip of feed {feed_id}")
    return _build_overlay(tt, feed_id, ts, cancelled, blocks, upd_trip, upd_day, unmatched, warnings, counts)


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
            # the update may name the station or a sibling platform
            parent = int(tt.stop_parent[s]) if tt.stop_location_type[s] != 1 else s
            if parent >= 0:
                hit = np.flatnonzero(np.asarray(tt.stop_parent)[pstops[cursor:]] == parent)
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
        warnings=tuple(warnings), counts=counts,
    )
