"""The compiled timetable: one frozen bundle of flat numpy arrays.

Layout follows nigiri / OpenTripPlanner raptor: arrays are named
``<key>_<value>``, variable-length relations are CSR (``*_offsets`` of length
``n + 1`` into a flat array), GTFS ids appear only in the ``*_ids`` string
arrays at the edges; everything inside is int indices.

Sizes: ``F`` feeds, ``S`` stops, ``R`` routes, ``P`` patterns, ``T`` trips,
``V`` distinct service-day bitsets, ``D`` days, ``H`` shapes, ``L`` pattern-stop
entries (sum of pattern lengths), ``N`` stop-time cells (sum over patterns of
length x trips), ``E`` footpaths, ``X`` trip-to-trip transfer rules.

Time: every time is an ``int32`` number of seconds since the *service day's
"noon minus 12 h"* in the timezone of the feed the trip belongs to
(``feed_timezones[route_feed[trip_route[t]]]``; GTFS requires all agencies of a
feed to share one ``agency_timezone``). Times may exceed 86 400 (trips past
midnight, e.g. 28:15:00 = 101 700). ``stop_timezones`` only affect display:
GTFS stop_times are always in the agency timezone. Use
:meth:`Timetable.day_start_utc` to turn (feed, day) into a UTC instant.

Service days: day ``d`` (0 <= d < D) is the date ``first_day + d``. Trip ``t``
runs on service day ``d`` iff ``service_days[trip_service[t], d]`` is 1; so
"trips running on day d" is ``service_days[trip_service, d].astype(bool)``
computed once before a search.

Patterns ("routes" in RAPTOR's sense): trips with the same stop sequence AND
the same pickup/drop-off types, split further where trips would overtake one
another so that inside a pattern trips are FIFO (sorted by departure at the
first stop, and then no later trip arrives/departs earlier at any stop). The
trips of pattern ``p`` are the contiguous global trip indices
``pattern_trip_offsets[p] .. pattern_trip_offsets[p+1]-1`` in departure order,
so the trip in column ``t`` is ``pattern_trip_offsets[p] + t``.

Stop-major times of pattern ``p`` with ``n = pattern_n_trips[p]`` trips:
``pattern_arr[pattern_time_offsets[p] + pos * n + t]`` is the arrival of its
``t``-th trip at its ``pos``-th stop (``pattern_dep`` likewise).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

#: Mode names; ``route_modes`` holds indices into this tuple.
MODES: tuple[str, ...] = ("BUS", "TRAM", "SUBWAY", "RAIL", "COACH", "FERRY")
MODE_BUS, MODE_TRAM, MODE_SUBWAY, MODE_RAIL, MODE_COACH, MODE_FERRY = range(6)

#: Pickup/drop-off types as in GTFS: 0 regular, 1 none, 2 phone agency, 3 coordinate with driver.
PICKUP_REGULAR, PICKUP_NONE, PICKUP_PHONE, PICKUP_DRIVER = 0, 1, 2, 3

#: trip-to-trip / stop transfer types (GTFS transfers.txt transfer_type).
TRANSFER_RECOMMENDED, TRANSFER_TIMED, TRANSFER_MIN_TIME, TRANSFER_FORBIDDEN = 0, 1, 2, 3

#: Bumped whenever the layout or the compiler's semantics change; part of the cache key.
TIMETABLE_VERSION = "6"  # 4: route/trip-keyed transfer rules kept, named trips in patterns of their own;
#                         5: combined trips of in-seat (type 4) links, trip_link_* arrays
#                         6: trip_direction (trips.txt direction_id)


@dataclass(frozen=True)
class CompileOptions:
    """Options of the compiler (part of the cache key); importable from :mod:`routing.compile`.

    walk_radius_m : generated walking links join served stops at most this far apart (straight line, metres)
    walk_speed_m_s : walking speed of generated links (m/s)
    footpaths_file : CSV ``from_stop_id,to_stop_id,walk_seconds`` (namespaced ids) replacing generated links
    """

    walk_radius_m: float = 500.0
    walk_speed_m_s: float = 1.3
    footpaths_file: Path | None = None

    def as_key(self) -> dict:
        d = asdict(self)
        d["footpaths_file"] = str(self.footpaths_file) if self.footpaths_file else None
        return d


@dataclass(frozen=True, eq=False)
class Timetable:
    """Frozen bundle of the compiled network (see the module docstring for conventions).

    All arrays are read-only (either frozen in memory or memory-mapped from the
    cache). String arrays are numpy fixed-width unicode (``<U*``).
    """

    # ---- feeds ------------------------------------------------------------------------
    feed_ids: np.ndarray  #: (F,) str   feed id, the namespace prefix of every GTFS id of the feed
    feed_operator_ids: np.ndarray  #: (F,) str   operator owning the feed (routes: ``route_operator_ids``)
    feed_timezones: np.ndarray  #: (F,) str   IANA agency timezone of the feed (times are local to it)

    # ---- stops ------------------------------------------------------------------------
    stop_ids: np.ndarray  #: (S,) str   namespaced ``<feed_id>:<stop_id>``
    stop_names: np.ndarray  #: (S,) str
    stop_lat: np.ndarray  #: (S,) float64 degrees WGS84
    stop_lon: np.ndarray  #: (S,) float64 degrees WGS84
    stop_parent: np.ndarray  #: (S,) int32  index of parent station, -1 if none
    stop_location_type: np.ndarray  #: (S,) int8 GTFS location_type (0 stop/platform, 1 station, 2 entrance, 3 node, 4 boarding area)
    stop_wheelchair_boarding: np.ndarray  #: (S,) int8 0 unknown (inherits parent's when 0), 1 accessible, 2 not
    stop_feed: np.ndarray  #: (S,) int32  feed index
    stop_timezones: np.ndarray  #: (S,) str   stop_timezone (display only); '' = the feed's timezone
    stop_min_change_s: np.ndarray  #: (S,) int32 minimum seconds to change vehicles at this stop (transfers.txt type 2 on itself; 0 default)
    stop_no_transfer: np.ndarray  #: (S,) bool  transfers.txt type 3 from the stop to itself: no vehicle change here

    # ---- routes -----------------------------------------------------------------------
    route_ids: np.ndarray  #: (R,) str   namespaced
    route_short_names: np.ndarray  #: (R,) str
    route_long_names: np.ndarray  #: (R,) str
    route_types: np.ndarray  #: (R,) int32 raw GTFS route_type (basic or extended)
    route_modes: np.ndarray  #: (R,) int8  index into :data:`MODES`
    route_feed: np.ndarray  #: (R,) int32 feed index
    route_agency_names: np.ndarray  #: (R,) str agency_name of the route's agency
    route_agency_ids: np.ndarray  #: (R,) str GTFS agency_id of the route's agency ('' when agency.txt has none)
    route_operator_ids: np.ndarray  #: (R,) str operator owning the route: its agency's (``FeedSource.agency_operators``), else the feed's

    # ---- trips (sorted by pattern, then departure) ------------------------------------
    trip_ids: np.ndarray  #: (T,) str   namespaced GTFS trip_id (frequency-expanded trips repeat the id)
    trip_route: np.ndarray  #: (T,) int32 route index
    trip_service: np.ndarray  #: (T,) int32 row of ``service_days``
    trip_pattern: np.ndarray  #: (T,) int32 pattern index
    trip_headsigns: np.ndarray  #: (T,) str
    trip_wheelchair_accessible: np.ndarray  #: (T,) int8 0 unknown, 1 yes, 2 no
    #: trips.txt ``direction_id`` (int8): 0 or 1, -1 unknown (blank, absent or invalid in the feed); a combined
    #: (in-seat) trip has its first part's; a real-time view's copy of a trip has its base trip's, an ADDED trip
    #: the direction its TripDescriptor gives (else -1)
    trip_direction: np.ndarray  #: (T,) int8
    trip_shape: np.ndarray  #: (T,) int32 shape index, -1 if none
    trip_frequency: np.ndarray  #: (T,) int8  0 scheduled trip, 1 expanded from frequencies exact_times=1, 2 from exact_times=0
    trip_start_s: np.ndarray  #: (T,) int32 departure at first stop (== pattern_dep of position 0); identifies frequency copies
    #: Combined trips (transfers.txt type 4, in-seat): a trip whose ``trip_link_offsets[t] ..
    #: trip_link_offsets[t+1]-1`` range is not empty is a *combined trip* the compiler made of linked trips
    #: (the rider stays aboard from one onto the next, same service day): ``trip_link_parts`` are the real
    #: trips it is made of in riding order, ``trip_link_first_pos`` the position in the combined trip where
    #: each part's first stop is (position ``i`` of the part is ``first_pos + i`` of the combined trip; where
    #: a part ends at the stop the next starts from, that position is shared: arrival of the earlier part,
    #: departure of the later). A combined trip runs on the days all its parts run; its ``trip_ids`` entry
    #: is internal (no GTFS trip has it) and never shown: itineraries show its parts.
    trip_link_offsets: np.ndarray  #: (T+1,) int32 CSR into trip_link_parts / trip_link_first_pos
    trip_link_parts: np.ndarray  #: (Y,) int32 trip index of each part (a real trip, never combined)
    trip_link_first_pos: np.ndarray  #: (Y,) int32 position of the part's first stop in the combined trip

    # ---- patterns ---------------------------------------------------------------------
    pattern_route: np.ndarray  #: (P,) int32 route index
    pattern_n_trips: np.ndarray  #: (P,) int32
    pattern_trip_offsets: np.ndarray  #: (P+1,) int32 global trip index of column 0
    pattern_stop_offsets: np.ndarray  #: (P+1,) int32 CSR into pattern_stops
    pattern_stops: np.ndarray  #: (L,) int32 stop index per position
    pattern_pickup: np.ndarray  #: (L,) int8 GTFS pickup_type per position
    pattern_dropoff: np.ndarray  #: (L,) int8 GTFS drop_off_type per position
    pattern_stop_sequence: np.ndarray  #: (L,) int32 GTFS stop_sequence per position (of the pattern's first trip; used to match GTFS-RT updates)
    pattern_stop_dist_m: np.ndarray  #: (L,) float32 metres from the first stop: along the first trip's shape (stops snapped to its vertices, never backwards) or, without a usable shape, along straight lines between stops
    pattern_time_offsets: np.ndarray  #: (P+1,) int64 start of the pattern's block in pattern_arr/pattern_dep
    pattern_arr: np.ndarray  #: (N,) int32 arrival seconds, stop-major (see module docstring)
    pattern_dep: np.ndarray  #: (N,) int32 departure seconds, stop-major

    # ---- stop -> patterns -------------------------------------------------------------
    stop_pattern_offsets: np.ndarray  #: (S+1,) int32 CSR
    stop_patterns: np.ndarray  #: (K,) int32 pattern index
    stop_pattern_pos: np.ndarray  #: (K,) int32 position of the stop in that pattern (a loop stop appears once per position)

    # ---- footpaths (from stop -> to stop; never stop -> itself) -----------------------
    footpath_offsets: np.ndarray  #: (S+1,) int32 CSR by from-stop
    footpath_to: np.ndarray  #: (E,) int32 to-stop index
    footpath_s: np.ndarray  #: (E,) int32 walking/transfer seconds (transfers.txt min_transfer_time overrides)
    footpath_m: np.ndarray  #: (E,) float32 straight-line metres

    # ---- route/trip-keyed transfer rules (transfers.txt naming routes or trips) --------
    trip_transfer_from_trip: np.ndarray  #: (X,) int32 sorted ascending
    trip_transfer_to_trip: np.ndarray  #: (X,) int32
    trip_transfer_from_stop: np.ndarray  #: (X,) int32 (-1: linked trips 4/5 without stops)
    trip_transfer_to_stop: np.ndarray  #: (X,) int32 (-1 likewise)
    trip_transfer_from_route: np.ndarray  #: (X,) int32 (-1: any route)
    trip_transfer_to_route: np.ndarray  #: (X,) int32 (-1: any route)
    trip_transfer_type: np.ndarray  #: (X,) int8 0..5
    trip_transfer_min_s: np.ndarray  #: (X,) int32 (0 unless type 2)

    # ---- services ---------------------------------------------------------------------
    service_days: np.ndarray  #: (V, D) uint8 1 = runs that day; rows deduplicated
    first_day_ordinal: int  #: ``date.toordinal()`` of day 0

    # ---- shapes -----------------------------------------------------------------------
    shape_ids: np.ndarray  #: (H,) str namespaced
    shape_offsets: np.ndarray  #: (H+1,) int32 CSR into shape_lat/lon/dist
    shape_lat: np.ndarray  #: (G,) float64
    shape_lon: np.ndarray  #: (G,) float64
    shape_dist_m: np.ndarray  #: (G,) float32 cumulative metres along the shape (computed)

    meta: dict[str, Any] = field(default_factory=dict)  #: counts, options, version, source hashes

    # ------------------------------------------------------------------------------------
    @property
    def n_stops(self) -> int:
        return int(self.stop_ids.shape[0])

    @property
    def n_patterns(self) -> int:
        return int(self.pattern_n_trips.shape[0])

    @property
    def n_trips(self) -> int:
        return int(self.trip_ids.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.service_days.shape[1])

    @property
    def first_day(self) -> date:
        return date.fromordinal(self.first_day_ordinal)

    def day_index(self, d: date) -> int:
        """Index of date ``d`` in ``service_days`` (may be out of ``[0, D)``: nothing runs then)."""
        return d.toordinal() - self.first_day_ordinal

    def day_start_utc(self, feed: int, day: int) -> datetime:
        """The UTC instant of time 0 of service day ``day`` for feed ``feed``: local noon minus 12 h."""
        tz = ZoneInfo(str(self.feed_timezones[feed]))
        d = date.fromordinal(self.first_day_ordinal + int(day))
        noon = datetime.combine(d, time(12), tzinfo=tz)
        return noon.astimezone(ZoneInfo("UTC")) - timedelta(hours=12)

    def trips_running(self, day: int) -> np.ndarray:
        """(T,) bool: which trips run on service day index ``day``."""
        if day < 0 or day >= self.n_days:
            return np.zeros(self.n_trips, dtype=bool)
        return self.service_days[:, day].astype(bool)[self.trip_service]

    @cached_property
    def stop_index(self) -> dict[str, int]:
        """Namespaced stop id -> stop index (built lazily once)."""
        return {s: i for i, s in enumerate(self.stop_ids.tolist())}

    @cached_property
    def feed_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.feed_ids.tolist())}

    @cached_property
    def route_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.route_ids.tolist())}

    @cached_property
    def trip_index(self) -> dict[str, list[int]]:
        """Namespaced trip id -> its trip indices, ascending (frequency copies, real-time copies and the
        combined trip ids share or add entries; callers filter with ``trip_is_combined`` etc.)."""
        idx: dict[str, list[int]] = {}
        for t, s in enumerate(self.trip_ids.tolist()):
            idx.setdefault(s, []).append(t)
        return idx

    def route_agency(self, r: int) -> dict[str, str]:
        """``{agency_id, name}`` of route ``r``'s agency (what a leg shows)."""
        return {"agency_id": str(self.route_agency_ids[r]), "name": str(self.route_agency_names[r])}

    def operator_agencies(self, operator_id: str) -> list[dict[str, str]]:
        """``{feed_id, agency_id, name}`` of every agency whose routes belong to the operator."""
        mine = np.flatnonzero(np.asarray(self.route_operator_ids) == operator_id)
        first = {(int(self.route_feed[r]), str(self.route_agency_ids[r])): int(r) for r in mine[::-1].tolist()}
        return [{"feed_id": str(self.feed_ids[f]), **self.route_agency(r)} for (f, _a), r in sorted(first.items())]

    def find_stop(self, stop_id: str) -> int | None:
        """Index of a namespaced stop id, or ``None``."""
        return self.stop_index.get(stop_id)

    def pattern_times(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        """Views ``(arr, dep)`` of pattern ``p`` shaped (n_stops_in_pattern, n_trips)."""
        a, b = int(self.pattern_time_offsets[p]), int(self.pattern_time_offsets[p + 1])
        n = int(self.pattern_n_trips[p])
        return self.pattern_arr[a:b].reshape(-1, n), self.pattern_dep[a:b].reshape(-1, n)

    @cached_property
    def trip_is_combined(self) -> np.ndarray:
        """(T,) bool: the trip is a combined (in-seat) trip, not a GTFS trip (see ``trip_link_offsets``)."""
        return np.diff(np.asarray(self.trip_link_offsets, dtype=np.int64)) > 0

    def trip_parts(self, t: int) -> list[tuple[int, int]]:
        """``[(part trip, position of its first stop)]`` of a combined trip; ``[]`` for any other trip."""
        a, b = int(self.trip_link_offsets[t]), int(self.trip_link_offsets[t + 1])
        return [(int(self.trip_link_parts[i]), int(self.trip_link_first_pos[i])) for i in range(a, b)]

    def pattern_stop_slice(self, p: int) -> slice:
        return slice(int(self.pattern_stop_offsets[p]), int(self.pattern_stop_offsets[p + 1]))

    @classmethod
    def array_fields(cls) -> list[str]:
        """Names of the numpy-array fields (what the cache stores as .npy)."""
        return [f.name for f in dataclasses.fields(cls) if f.name not in ("meta", "first_day_ordinal")]
