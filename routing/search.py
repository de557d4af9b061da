"""Public journey-planning API over a compiled :class:`~routing.timetable.Timetable`.

``plan(tt, PlanRequest(...))`` validates the request, maps ids / coordinates to
stop indices, prepares per-request arrays (trips running on the service days
around the query, filters, walking times), runs the numba kernels of
:mod:`routing.kernels` with a reusable per-thread search state, reconstructs
journeys and turns them into API.md itineraries (:mod:`routing.itinerary`).

Semantics (shared with the reference oracle in ``tests/routing/reference.py``):

* ``k`` rides = ``k - 1`` transfers; results are Pareto-optimal over
  (arrival, rides) — "fastest" and "fewest_transfers" come from that set.
* Changing vehicles at the same stop takes ``max(stop_min_change_s, min_change_s)``
  and is impossible where transfers.txt forbids it (type 3 on the stop itself).
* A footpath ``u -> v`` between rides takes ``max(walk, min_change_s)`` where
  ``walk = max(footpath_s, ceil(footpath_m / walk_speed))`` (transfers.txt
  minimum times are a floor; a slower walker takes longer). Footpaths longer
  than ``max_walk_m`` are not used. One footpath between two rides.
* A stop-id origin stands for the stop (or, for a parent station, all its
  platforms) at the departure time plus one footpath from there; a ``lat,lon``
  origin walks (straight line at ``walk_speed``) to every stop within
  ``max_walk_m``. Destinations likewise.
* Trips of the service day before, of and after the query date are searched
  (times past 24:00 belong to the previous day); each feed uses its own
  time zone.
* Nothing found: ``plan`` returns ``[]`` (the HTTP/CLI layer decides whether
  that is a 404 ``no_itinerary``); bad input raises :class:`InvalidQuery` or
  :class:`UnknownStop`.
* Trip-to-trip transfer rules (stay-seated, timed transfers between two named
  trips) are not used by the search: such transfers are then judged by the
  stop's change time like any other.
* Several itineraries: Pareto-optimal over (arrival, rides) at the departure
  time, then the same for just after the earliest departure found (next
  departures), plus McRAPTOR's journeys Pareto-optimal in walking metres too;
  dominated ones are dropped, each kept one is labelled ``fastest``,
  ``fewest_transfers``, ``least_walking`` or ``alternative``.
* ``optimize="fare"`` (or a ``max_fare``) runs the fare-aware McRAPTOR
  (:func:`fare_search`, kernel ``_mcraptor_fare``) with the
  :class:`routing.fares.FareTables` given to :func:`plan`: the result is the
  Pareto set over (arrival, transfers, fare) of all journeys — with
  time-limited transfer rules, of all journeys in the window of
  :func:`fare_window` (later trips are boarded where they start an allowance
  later; docs/planning.md) — each itinerary with the kernel's fare and a
  label ``cheapest``, ``fastest``, ``fewest_transfers`` or ``alternative``.
  Depart-at only, no departure window.
* Arrive-by runs RAPTOR backwards in time (latest departure per number of
  rides); ``window_s > 0`` runs range RAPTOR (all Pareto-optimal
  (departure, arrival, rides) in the window, see :func:`range_profile`).
* Real time (``realtime``, a :class:`routing.realtime.RealtimeOverlay`, or an
  object with ``overlays``, one per feed): the search runs on
  :func:`routing.realtime.realtime_view` — an updated trip keeps its static
  times on every other day and runs with its predicted times only on its
  service day, as a copy placed in patterns split into FIFO lanes (delays make
  trains overtake; the kernels need trips of a pattern not to), skipped stops
  neither boarded nor left, cancelled trips left out that day.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from zoneinfo import ZoneInfo

import numpy as np

from routing import kernels as K
from routing import transfer_graph
from routing.errors import InvalidQuery, UnknownStop
from routing.fares import UNPRICED, FareTables
from routing.realtime import view_for
from routing.timetable import MODES, Timetable

INF = int(K.INF)
_log = logging.getLogger(__name__)
EARTH_R = 6_371_008.8


@dataclass(frozen=True)
class PlanRequest:
    """A journey-planning query (see the module docstring for the semantics).

    ``origin`` / ``destination``: ``"<feed_id>:<stop_id>"`` or ``"lat,lon"``.
    Exactly one of ``depart_at`` / ``arrive_by`` (timezone-aware).
    ``window_s > 0`` (with ``depart_at``): range search over
    ``[depart_at, depart_at + window_s]`` returning the Pareto-optimal
    (departure, arrival, transfers) journeys.
    """

    origin: str
    destination: str
    depart_at: datetime | None = None
    arrive_by: datetime | None = None
    window_s: int = 0
    max_transfers: int = 4
    min_change_s: int = 0
    walk_speed_m_s: float = 1.3
    max_walk_m: float = 1000.0
    modes: frozenset[str] | None = None
    excluded_operators: frozenset[str] = frozenset()
    wheelchair: bool = False
    max_itineraries: int = 5
    #: ``"time"`` (Pareto over arrival, transfers, walking) or ``"fare"`` (Pareto over arrival,
    #: transfers and fare from :class:`routing.fares.FareTables`; needs ``fares`` in :func:`plan`)
    optimize: str = "time"
    #: only journeys whose fare (minor units of the tables' currency) is at most this; implies a fare search
    max_fare: int | None = None
    #: rider category the caller compiled the fare tables for (informational inside routing)
    rider_category: str = "adult"
    #: itinerary filter chain (``routing.itinerary.filter_itineraries``, docs/planning.md): ``"default"``
    #: or ``"none"`` (every non-dominated itinerary the search found). The fastest is never filtered.
    itinerary_filter: str = "default"
    #: rule 1: duration (first departure to arrival) at most ``slack + factor * best duration``
    max_duration_factor: float = 2.0
    max_duration_slack_s: int = 1800
    #: rule 2: generalized cost at most ``slack + factor * cost of b + relax * |departure difference|``
    #: for every other itinerary b (OTP2's transit-generalized-cost-limit)
    cost_limit_factor: float = 1.5
    cost_limit_slack_s: int = 900
    cost_interval_relax: float = 0.4
    #: generalized cost = ride s + wait s + walk_reluctance * walk s + board_cost_s per boarding
    walk_reluctance: float = 2.0
    board_cost_s: int = 600
    #: rule 3: dominated with a walking tolerance: another leaves no earlier, arrives no later, has no more
    #: transfers and walks at most this many metres more
    dominance_walk_slack_m: float = 100.0


# --------------------------------------------------------------------------------------------
# geometry helpers


def haversine_m(lat1, lon1, lat2, lon2):
    """Great-circle distance in metres (numpy-broadcasting)."""
    p1 = np.radians(lat1)
    p2 = np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_R * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def parse_latlon(text: str) -> tuple[float, float] | None:
    """``"lat,lon"`` -> floats, ``None`` if ``text`` is not of that form (then it is a stop id)."""
    parts = text.split(",")
    if len(parts) != 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidQuery(f"coordinates out of range: {text!r}", details={"value": text})
    return lat, lon


# --------------------------------------------------------------------------------------------
# per-timetable derived data


class _Net:
    """The arrays one kernel direction needs (forward or time-reversed)."""

    def __init__(self, tt: Timetable, reverse: bool, arr: np.ndarray | None = None, dep: np.ndarray | None = None,
                 fwd: _Net | None = None):
        self.reverse = reverse
        self.pattern_stop_offsets = np.ascontiguousarray(tt.pattern_stop_offsets, dtype=np.int64)
        self.pattern_time_offsets = np.ascontiguousarray(tt.pattern_time_offsets, dtype=np.int64)
        self.pattern_n_trips = np.ascontiguousarray(tt.pattern_n_trips, dtype=np.int64)
        self.pattern_trip_offsets = np.ascontiguousarray(tt.pattern_trip_offsets, dtype=np.int64)
        g = _derived(tt).graph  # route/trip-keyed transfer rules: patterns stop at rule nodes (routing.transfer_graph)
        src = tt if g is None else g
        self.node_stop = _derived(tt).node_stop
        n_nodes = tt.n_stops if g is None else g.n_nodes
        self.stop_pattern_offsets = np.ascontiguousarray(src.stop_pattern_offsets, dtype=np.int64)
        self.stop_patterns = np.ascontiguousarray(src.stop_patterns, dtype=np.int32)
        if not reverse:
            self.pattern_stops = np.ascontiguousarray(src.pattern_stops, dtype=np.int32)
            self.pattern_pickup = np.ascontiguousarray(tt.pattern_pickup, dtype=np.int8)
            self.pattern_dropoff = np.ascontiguousarray(tt.pattern_dropoff, dtype=np.int8)
            self.pattern_arr = np.ascontiguousarray(tt.pattern_arr if arr is None else arr, dtype=np.int32)
            self.pattern_dep = np.ascontiguousarray(tt.pattern_dep if dep is None else dep, dtype=np.int32)
            self.pattern_dep = _conservative_boarding(tt, self.pattern_dep)
            self.stop_pattern_pos = np.ascontiguousarray(src.stop_pattern_pos, dtype=np.int32)
            self.trip_perm = None
            self.footpath_offsets = np.ascontiguousarray(src.footpath_offsets, dtype=np.int64)
            self.footpath_to = np.ascontiguousarray(src.footpath_to, dtype=np.int32)
        else:
            fwd = fwd if fwd is not None else _derived(tt).fwd
            (self.pattern_stops, self.pattern_pickup, self.pattern_dropoff, self.pattern_arr, self.pattern_dep,
             self.stop_pattern_pos, self.trip_perm) = K._reverse_patterns(
                fwd.pattern_stop_offsets, fwd.pattern_stops, fwd.pattern_pickup, fwd.pattern_dropoff,
                fwd.pattern_time_offsets, fwd.pattern_n_trips, fwd.pattern_trip_offsets, fwd.pattern_arr,
                fwd.pattern_dep, fwd.stop_pattern_offsets, fwd.stop_patterns, fwd.stop_pattern_pos)
            # footpaths transposed: walking u -> v forwards is v -> u backwards
            d = _derived(tt)
            self.footpath_offsets, self.footpath_to = d.fp_t_offsets, d.fp_t_to
        if not reverse:
            frm = np.repeat(np.arange(n_nodes), np.diff(self.footpath_offsets))
            order = np.argsort(np.asarray(self.footpath_to), kind="stable")
            self.rev_footpath_to = np.ascontiguousarray(frm[order], dtype=np.int32)
            counts = np.bincount(np.asarray(self.footpath_to), minlength=n_nodes)
            self.rev_footpath_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            self.footpath_t_perm = order
        else:
            self.rev_footpath_offsets = np.ascontiguousarray(src.footpath_offsets, dtype=np.int64)
            self.rev_footpath_to = np.ascontiguousarray(src.footpath_to, dtype=np.int32)

    def tt_args(self) -> tuple:
        return (self.pattern_stop_offsets, self.pattern_stops, self.pattern_pickup, self.pattern_dropoff,
                self.pattern_time_offsets, self.pattern_n_trips, self.pattern_trip_offsets,
                self.pattern_arr, self.pattern_dep, self.stop_pattern_offsets, self.stop_patterns,
                self.stop_pattern_pos, self.footpath_offsets, self.footpath_to)


def trip_headways(tt: Timetable) -> np.ndarray:
    """(T,) int64 headway in seconds of each trip expanded from frequencies.txt with ``exact_times=0``
    (the gap to the neighbouring departure of the same template), 0 for every other trip."""
    h = np.zeros(tt.n_trips, dtype=np.int64)
    idx = np.flatnonzero(np.asarray(tt.trip_frequency) == 2)
    if len(idx) < 2:
        return h
    ids = np.asarray(tt.trip_ids)[idx]
    start = np.asarray(tt.trip_start_s)[idx].astype(np.int64)
    order = np.lexsort((start, ids))
    ids, start, idx = ids[order], start[order], idx[order]
    gap = np.where(ids[1:] == ids[:-1], start[1:] - start[:-1], INF)
    near = np.minimum(np.concatenate([[INF], gap]), np.concatenate([gap, [INF]]))
    near[(near >= INF) | (near < 0)] = 0
    h[idx] = near
    return h


def _conservative_boarding(tt: Timetable, dep: np.ndarray) -> np.ndarray:
    """Boarding times of the kernels: a trip of a headway-based service (``exact_times=0``) is boarded
    only by a passenger at the stop one headway before its (nominal) departure, so the plan holds
    whenever the vehicle comes (OTP boards such trips at arrival + headway). Patterns where this would
    break the order of departures (trips of several headways or scheduled trips mixed in) keep the
    nominal times. Ride and arrival times are never changed."""
    h = trip_headways(tt)
    if not h.any():
        return dep
    n = np.asarray(tt.pattern_n_trips, dtype=np.int64)
    tb = np.asarray(tt.pattern_time_offsets, dtype=np.int64)
    to = np.asarray(tt.pattern_trip_offsets, dtype=np.int64)
    n_stops = np.diff(np.asarray(tt.pattern_stop_offsets, dtype=np.int64))
    out = dep.copy()
    for p in np.unique(np.asarray(tt.trip_pattern)[h > 0]).tolist():
        k, m = int(n[p]), int(n_stops[p])
        hp = h[to[p]: to[p] + k]
        nominal = dep[tb[p]: tb[p] + m * k].reshape(m, k).astype(np.int64)
        block = np.where(nominal >= int(K.SKIP), nominal, nominal - hp[None, :])  # skipped stops stay skipped
        if k > 1 and (np.diff(block, axis=1) < 0).any():
            continue
        out[tb[p]: tb[p] + m * k] = block.ravel().astype(dep.dtype)
    return np.ascontiguousarray(out)


class _Derived:
    """Per-timetable lookups computed once (weakly attached to the timetable)."""

    def __init__(self, tt: Timetable):
        self.tt_ref = weakref.ref(tt)
        self.pattern_feed = tt.route_feed[tt.pattern_route].astype(np.int64)
        self.stop_served = np.diff(tt.stop_pattern_offsets) > 0
        self.served_idx = np.flatnonzero(self.stop_served)
        # children of parent stations (platforms only)
        par = np.asarray(tt.stop_parent)
        kids = np.flatnonzero((par >= 0) & (np.asarray(tt.stop_location_type) == 0))
        self.children: dict[int, list[int]] = {}
        for c, p in zip(kids.tolist(), par[kids].tolist()):
            self.children.setdefault(p, []).append(c)
        wb = np.asarray(tt.stop_wheelchair_boarding).astype(np.int8).copy()
        inherit = (wb == 0) & (par >= 0)
        wb[inherit] = np.asarray(tt.stop_wheelchair_boarding)[par[inherit]]
        self.stop_wheelchair_ok = wb == 1
        self.trip_wheelchair_ok = np.asarray(tt.trip_wheelchair_accessible) == 1
        self.stop_lat = np.asarray(tt.stop_lat, dtype=np.float64)
        # the kernels' stops: the timetable's, plus a node per stop and route / trip a transfer rule names
        self.graph = transfer_graph.build(tt)
        g = self.graph
        self.n_nodes = tt.n_stops if g is None else g.n_nodes
        self.node_stop = np.arange(tt.n_stops, dtype=np.int32) if g is None else g.node_stop
        self.nodes_of = {} if g is None else g.nodes_of()
        self.footpath_m = np.asarray(tt.footpath_m if g is None else g.footpath_m, dtype=np.float64)
        self.footpath_s = np.asarray(tt.footpath_s if g is None else g.footpath_s, dtype=np.int64)
        self.footpath_walkable = None if g is None else g.footpath_walkable
        change = np.where(np.asarray(tt.stop_no_transfer, dtype=bool), -1,
                          np.asarray(tt.stop_min_change_s, dtype=np.int64))
        self.stop_change_base = change if g is None else np.asarray(g.change_s, dtype=np.int64)
        self.stop_location_type = np.asarray(tt.stop_location_type)
        self.stop_lon = np.asarray(tt.stop_lon, dtype=np.float64)
        self._fwd: _Net | None = None
        self._rev: _Net | None = None
        self.cache: dict[Any, Any] = {}
        self.lock = threading.Lock()

    @property
    def fwd(self) -> _Net:
        if self._fwd is None:
            self._fwd = _Net(self.tt_ref(), reverse=False)
        return self._fwd

    @property
    def fp_t_offsets(self) -> np.ndarray:
        return self.fwd.rev_footpath_offsets

    @property
    def fp_t_to(self) -> np.ndarray:
        return self.fwd.rev_footpath_to

    @property
    def fp_t_perm(self) -> np.ndarray:
        return self.fwd.footpath_t_perm

    @property
    def rev(self) -> _Net:
        with self.lock:
            if self._rev is None:
                self._rev = _Net(self.tt_ref(), reverse=True)
        return self._rev


def _rt_cache(realtime) -> dict:
    """Per-overlay cache (lives and dies with the overlay object)."""
    c = realtime.__dict__.get("_search_cache")
    if c is None:
        c = {}
        object.__setattr__(realtime, "_search_cache", c)
    return c


def _nets(tt: Timetable, realtime, reverse: bool) -> _Net:
    """The kernel network (real time is a timetable of its own, see :func:`routing.realtime.view_for`)."""
    d = _derived(tt)
    return d.rev if reverse else d.fwd


_DERIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_DERIVED_LOCK = threading.Lock()


def _derived(tt: Timetable) -> _Derived:
    d = _DERIVED.get(tt)
    if d is None:
        with _DERIVED_LOCK:
            d = _DERIVED.get(tt)
            if d is None:
                d = _Derived(tt)
                _DERIVED[tt] = d
    return d


# --------------------------------------------------------------------------------------------
# search state


class _State:
    """Reusable search arrays for one (thread, timetable, max rides)."""

    def __init__(self, n_stops: int, n_patterns: int, max_rounds: int):
        k1 = max_rounds + 1
        shape = (k1, n_stops)
        self.max_rounds = max_rounds
        self.ride = np.full(shape, INF, dtype=np.int64)
        self.best_ride = np.full(shape, INF, dtype=np.int64)
        self.ride_pattern = np.full(shape, -1, dtype=np.int32)
        self.ride_trip = np.zeros(shape, dtype=np.int32)
        self.ride_slot = np.zeros(shape, dtype=np.int8)
        self.ride_board = np.zeros(shape, dtype=np.int32)
        self.ride_alight = np.zeros(shape, dtype=np.int32)
        self.ready = np.full(shape, INF, dtype=np.int64)
        self.best_ready = np.full(shape, INF, dtype=np.int64)
        self.ready_from = np.full(shape, -2, dtype=np.int32)
        self.target = np.full(k1, INF, dtype=np.int64)
        self.best_target = np.full(k1, INF, dtype=np.int64)
        self.target_stop = np.full(k1, -1, dtype=np.int32)
        self.touched = np.zeros(n_stops, dtype=np.int32)
        self.n_touched = 0
        self.is_touched = np.zeros(n_stops, dtype=np.bool_)
        self.marked = np.zeros(n_stops, dtype=np.int32)
        self.is_marked = np.zeros(n_stops, dtype=np.bool_)
        self.improved = np.zeros(n_stops, dtype=np.int32)
        self.is_improved = np.zeros(n_stops, dtype=np.bool_)
        self.queue = np.zeros(n_patterns, dtype=np.int32)
        self.first_pos = np.full(n_patterns, -1, dtype=np.int32)
        self.egress = np.full(n_stops, -1, dtype=np.int64)
        self.tgt_last = np.full(n_patterns, -1, dtype=np.int32)
        self.tgt_list = np.full(n_patterns, -1, dtype=np.int32)
        self.in_b1 = np.zeros(n_stops, dtype=np.bool_)
        self.b1_list = np.full(n_stops, -1, dtype=np.int32)
        self.b2_last = np.full(n_patterns, -1, dtype=np.int32)
        self.b2_plist = np.full(n_patterns, -1, dtype=np.int32)
        self.in_b2 = np.zeros(n_stops, dtype=np.bool_)
        self.b2_list = np.full(n_stops, -1, dtype=np.int32)

    def reset(self) -> None:
        K._reset_state(self.touched, self.n_touched, self.ride, self.best_ride, self.ready, self.best_ready,
                       self.ride_pattern, self.ready_from, self.is_touched)
        self.n_touched = 0
        self.target[:] = INF
        self.best_target[:] = INF
        self.target_stop[:] = -1

    def label_args(self) -> tuple:
        return (self.ride, self.best_ride, self.ride_pattern, self.ride_trip, self.ride_slot, self.ride_board,
                self.ride_alight, self.ready, self.best_ready, self.ready_from,
                self.target, self.best_target, self.target_stop)

    def work_args(self) -> tuple:
        return (self.marked, self.is_marked, self.improved, self.is_improved, self.queue, self.first_pos)

    def b2_args(self) -> tuple:
        return (self.b2_last, self.b2_plist, self.in_b2, self.b2_list)

    def target_args(self, egress_list: np.ndarray) -> tuple:
        return (egress_list, self.tgt_last, self.tgt_list, self.in_b1, self.b1_list)


_LOCAL = threading.local()


def _state(tt: Timetable, reverse: bool, max_rounds: int) -> _State:
    cache = getattr(_LOCAL, "states", None)
    if cache is None:
        cache = _LOCAL.states = weakref.WeakKeyDictionary()
    per_tt = cache.setdefault(tt, {})
    key = (reverse, max_rounds)
    st = per_tt.get(key)
    if st is None:
        st = per_tt[key] = _State(_derived(tt).n_nodes, tt.n_patterns, max_rounds)
    return st


# --------------------------------------------------------------------------------------------
# request preparation


@dataclass
class _Prepared:
    """Everything a kernel call needs besides the timetable arrays."""

    ref_epoch: int  # UTC epoch seconds of query-axis time 0
    day_index: np.ndarray  # (F,) service-day index of slot 1 per feed
    pattern_shift: np.ndarray  # (P, 3) int64
    trip_slots: np.ndarray  # (T,) uint8 (forward trip order)
    pattern_ok: np.ndarray  # (P,) bool
    stop_ok: np.ndarray  # (S,) bool
    footpath_walk_s: np.ndarray  # (E,) int64 walking seconds, -1 = too long
    footpath_change_s: np.ndarray  # (E,) int64 walking + change seconds, -1 = unusable
    stop_change_s: np.ndarray  # (S,) int64
    extra: dict = field(default_factory=dict)


def run_lists(slots: np.ndarray, pattern_trip_offsets: np.ndarray, n_patterns: int) -> tuple[np.ndarray, np.ndarray]:
    """Per day slot and pattern, the columns of usable trips: ``(run_offsets (3, P+1) int64, run_cols int32)``.

    ``slots``: (T,) uint8 day-slot bits in the network's trip order (trips
    grouped by pattern, columns ascending), so each pattern's list is sorted.
    """
    offs = np.asarray(pattern_trip_offsets, dtype=np.int64)
    pattern_of = np.repeat(np.arange(n_patterns), np.diff(offs))
    cols_all = np.arange(offs[-1], dtype=np.int64) - offs[pattern_of]
    run_offsets = np.zeros((3, n_patterns + 1), dtype=np.int64)
    parts = []
    base = 0
    for slot in range(3):
        sel = ((slots >> np.uint8(slot)) & 1).astype(bool)
        counts = np.bincount(pattern_of[sel], minlength=n_patterns)
        run_offsets[slot] = base + np.concatenate([[0], np.cumsum(counts)])
        parts.append(cols_all[sel])
        base += int(sel.sum())
    return run_offsets, np.concatenate(parts).astype(np.int32)


def _filters(tt: Timetable, d: _Derived, day_index: tuple[int, ...], req: PlanRequest, realtime) -> tuple:
    key = ("filters", day_index, req.wheelchair, req.modes, req.excluded_operators)
    cache = d.cache if realtime is None else _rt_cache(realtime)
    hit = cache.get(key)
    if hit is not None:
        return hit
    days = np.asarray(day_index, dtype=np.int64)
    trip_feed = d.pattern_feed[tt.trip_pattern]
    slots = np.zeros(tt.n_trips, dtype=np.uint8)
    nd = tt.n_days
    for slot in range(3):
        day_of_trip = days[trip_feed] + (slot - 1)
        inside = (day_of_trip >= 0) & (day_of_trip < nd)
        runs = np.zeros(tt.n_trips, dtype=bool)
        runs[inside] = tt.service_days[tt.trip_service[inside], day_of_trip[inside]].astype(bool)
        slots |= runs.astype(np.uint8) << np.uint8(slot)
    route_ok = np.ones(tt.route_ids.shape[0], dtype=bool)
    if req.modes is not None:
        allowed = np.array([m in req.modes for m in MODES])
        route_ok &= allowed[tt.route_modes.astype(np.int64)]
    if req.excluded_operators:
        route_ok &= ~np.isin(tt.route_operator_ids, list(req.excluded_operators))
    bad = ~route_ok[tt.trip_route]
    if req.wheelchair:
        bad |= ~d.trip_wheelchair_ok
    # a combined (in-seat) trip rides on each of its parts: it is usable only where all of them are
    parts = np.asarray(tt.trip_link_parts, dtype=np.int64)
    if len(parts) and bad.any():
        owner = np.repeat(np.arange(tt.n_trips), np.diff(np.asarray(tt.trip_link_offsets, dtype=np.int64)))
        bad[owner[bad[parts]]] = True
    slots[bad] = 0
    # per pattern and slot: does any trip run? (INF shift = skip that day in the kernel)
    per_pattern = np.zeros((tt.n_patterns, 3), dtype=bool)
    offs = np.asarray(tt.pattern_trip_offsets, dtype=np.int64)
    nonempty = offs[1:] > offs[:-1]
    for slot in range(3):
        bit = ((slots >> np.uint8(slot)) & 1).astype(np.int64)
        cs = np.concatenate([[0], np.cumsum(bit)])
        per_pattern[:, slot] = (cs[offs[1:]] - cs[offs[:-1]]) > 0
    pattern_ok = per_pattern.any(axis=1) & nonempty
    stop_ok = d.stop_wheelchair_ok[d.node_stop] if req.wheelchair else np.ones(d.n_nodes, dtype=bool)
    out = (slots, per_pattern, pattern_ok, stop_ok, run_lists(slots, tt.pattern_trip_offsets, tt.n_patterns))
    if len(cache) > 64:
        cache.clear()
    cache[key] = out
    return out


def _walking(tt: Timetable, d: _Derived, req: PlanRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    key = ("walk", req.walk_speed_m_s, req.max_walk_m, req.min_change_s)
    hit = d.cache.get(key)
    if hit is not None:
        return hit
    m = d.footpath_m
    walk = np.maximum(d.footpath_s, np.ceil(m / req.walk_speed_m_s).astype(np.int64))
    walk[m > req.max_walk_m] = -1
    change = np.where(walk >= 0, np.maximum(walk, req.min_change_s), -1).astype(np.int64)
    stop_change = np.where(d.stop_change_base < 0, -1, np.maximum(d.stop_change_base, req.min_change_s))
    change_t = np.ascontiguousarray(change[d.fp_t_perm])
    walk_t = np.ascontiguousarray(walk[d.fp_t_perm])
    out = (walk, change, stop_change, change_t, walk_t)
    d.cache[key] = out
    return out


def _prepare(tt: Timetable, req: PlanRequest, when: datetime, realtime) -> _Prepared:
    d = _derived(tt)
    tz_names = d.cache.get("tz_names")
    if tz_names is None:
        tz_names = d.cache["tz_names"] = [ZoneInfo(str(z)) for z in tt.feed_timezones.tolist()]
    day_index_t = tuple(tt.day_index(when.astimezone(z).date()) for z in tz_names)
    slots, per_pattern, pattern_ok, stop_ok, runs = _filters(tt, d, day_index_t, req, realtime)
    key = ("shift", day_index_t, req.wheelchair, req.modes, req.excluded_operators)
    cache = d.cache if realtime is None else _rt_cache(realtime)
    hit = cache.get(key)
    if hit is None:
        n_feeds = len(tz_names)
        ref_epoch = int(tt.day_start_utc(0, day_index_t[0]).timestamp())
        feed_shift = np.empty((n_feeds, 3), dtype=np.int64)
        for f in range(n_feeds):
            for slot in range(3):
                feed_shift[f, slot] = int(tt.day_start_utc(f, day_index_t[f] + slot - 1).timestamp()) - ref_epoch
        shift = np.ascontiguousarray(np.where(per_pattern, feed_shift[d.pattern_feed], INF))
        hit = cache[key] = (ref_epoch, shift, np.asarray(day_index_t))
    ref_epoch, shift, day_index = hit
    walk, change, stop_change, change_t, walk_t = _walking(tt, d, req)
    fwd = _nets(tt, realtime, False)
    return _Prepared(ref_epoch, day_index, shift, slots, pattern_ok, stop_ok,
                     walk, change, stop_change, {"change_t": change_t, "walk_t": walk_t, "arr": fwd.pattern_arr,
                                                 "runs": runs, "filters_key": (day_index_t, req.wheelchair, req.modes,
                                                                               req.excluded_operators),
                                                 "dep": fwd.pattern_dep, "realtime": realtime})


# --------------------------------------------------------------------------------------------
# endpoints (origin / destination)


@dataclass
class _Endpoint:
    """Resolved origin or destination."""

    text: str
    stop: int | None  # the stop index named (parent or platform), None for coordinates
    lat: float
    lon: float
    platforms: list[int]  # stops the place stands for (walk 0)
    near: dict[int, tuple[int, float]]  # stop -> (walk seconds, metres) incl. platforms (0, 0)


def _resolve(tt: Timetable, text: str, req: PlanRequest, prep: _Prepared, outgoing: bool) -> _Endpoint:
    d = _derived(tt)
    ll = parse_latlon(text)
    if ll is not None:
        lat, lon = ll
        cand = d.served_idx
        dist = haversine_m(lat, lon, d.stop_lat[cand], d.stop_lon[cand])
        sel = dist <= req.max_walk_m
        near = {int(s): (int(math.ceil(m / req.walk_speed_m_s)), float(m)) for s, m in zip(cand[sel], dist[sel])}
        return _Endpoint(text, None, lat, lon, [], _with_nodes(d, near))
    idx = tt.find_stop(text)
    if idx is None:
        raise UnknownStop(f"unknown stop {text!r}", details={"stop_id": text})
    platforms = d.children.get(idx, [idx]) if d.stop_location_type[idx] != 0 else [idx]
    near: dict[int, tuple[int, float]] = {s: (0, 0.0) for s in platforms}
    # one footpath from (outgoing) / to (incoming) the platforms
    walk = prep.footpath_walk_s
    fwd = d.fwd
    fp_m = d.footpath_m
    ok = d.footpath_walkable  # rule edges are transfers between vehicles, not walks from / to a place
    if outgoing:
        for s in platforms:
            for e in range(int(fwd.footpath_offsets[s]), int(fwd.footpath_offsets[s + 1])):
                w = int(walk[e])
                v = int(fwd.footpath_to[e])
                if w >= 0 and (ok is None or ok[e]) and (v not in near or near[v][0] > w):
                    near[v] = (w, float(fp_m[e]))
    else:
        t_off, t_to, t_perm = d.fp_t_offsets, d.fp_t_to, d.fp_t_perm
        for s in platforms:
            for e in range(int(t_off[s]), int(t_off[s + 1])):
                fe = int(t_perm[e])
                w = int(walk[fe])
                u = int(t_to[e])
                if w >= 0 and (ok is None or ok[fe]) and (u not in near or near[u][0] > w):
                    near[u] = (w, float(fp_m[fe]))
    return _Endpoint(text, idx, float(d.stop_lat[idx]), float(d.stop_lon[idx]), platforms, _with_nodes(d, near))


def _with_nodes(d: _Derived, near: dict[int, tuple[int, float]]) -> dict[int, tuple[int, float]]:
    """``near`` (stop -> walk) plus the rule nodes of those stops (:mod:`routing.transfer_graph`), reached alike."""
    if not d.nodes_of:
        return near
    out = dict(near)
    for s, v in near.items():
        for n in d.nodes_of.get(s, ()):
            out[n] = v
    return out


def _on_stops(j: Journey, node_stop: np.ndarray) -> Journey:
    """A journey found on rule nodes told on the timetable's stops."""
    def m(x: int) -> int:
        return x if x < 0 else int(node_stop[x])
    j.access = (m(j.access[0]),) + tuple(j.access[1:])
    j.egress = (m(j.egress[0]),) + tuple(j.egress[1:])
    j.transfers = [(m(a), m(b)) for a, b in j.transfers]
    return j


def _direct_walk(tt: Timetable, o: _Endpoint, dst: _Endpoint, req: PlanRequest) -> tuple[int, float] | None:
    """Walk-only journey (seconds, metres), or None."""
    best: tuple[int, float] | None = None
    if o.stop is None and dst.stop is None:
        m = float(haversine_m(o.lat, o.lon, dst.lat, dst.lon))
        if m <= req.max_walk_m:
            best = (int(math.ceil(m / req.walk_speed_m_s)), m)
    for s in o.platforms:  # stop origin: one footpath (or coordinates) to the destination
        if s in dst.near and (best is None or dst.near[s][0] < best[0]):
            best = dst.near[s]
    for s in dst.platforms:
        if s in o.near and (best is None or o.near[s][0] < best[0]):
            best = o.near[s]
    return best


# --------------------------------------------------------------------------------------------
# journeys


@dataclass
class Journey:
    """A reconstructed journey on the forward query axis (indices, not ids).

    ``rides``: ``(pattern, column, slot, board_pos, alight_pos)`` in travel
    order; ``access`` / ``egress``: ``(stop, walk_s, metres)`` for the first
    boarding / last alighting stop; ``transfers``: per gap between rides
    ``(from_stop, to_stop)`` (equal when changing at the same stop).
    """

    rides: list[tuple[int, int, int, int, int]]
    access: tuple[int, int, float]
    egress: tuple[int, int, float]
    transfers: list[tuple[int, int]]
    walk_only: tuple[int, float] | None = None
    depart_t: int = 0  # query-axis departure (walk-only journeys)
    fare: int | None = None  # fare search: the kernel's fare in minor units (None = not priced)


def _reconstruct(net: _Net, st: _State, prep: _Prepared, k: int, origin_near: dict, dest_near: dict) -> Journey:
    """Follow the labels of round ``k`` back from the target (in the kernel's direction)."""
    u = int(st.target_stop[k])
    chain: list[tuple[int, int, int, int, int]] = []
    gaps: list[tuple[int, int]] = []
    first_stop = u
    kk = k
    while kk > 0:
        p = int(st.ride_pattern[kk, u])
        c = int(st.ride_trip[kk, u])
        slot = int(st.ride_slot[kk, u])
        b = int(st.ride_board[kk, u])
        a = int(st.ride_alight[kk, u])
        chain.append((p, c, slot, b, a))
        so = int(net.pattern_stop_offsets[p])
        n = int(net.pattern_n_trips[p])
        bs = int(net.pattern_stops[so + b])
        dep = int(net.pattern_dep[int(net.pattern_time_offsets[p]) + b * n + c]) + int(prep_shift(prep, net, p, slot))
        j = kk - 1
        while j > 0 and not (st.ready[j, bs] <= dep):
            j -= 1
        frm = int(st.ready_from[j, bs])
        if j == 0:
            first_stop = bs
            break
        gaps.append((frm, bs))
        u = frm
        kk = j
    last_stop = int(st.target_stop[k])
    if not net.reverse:
        chain.reverse()
        gaps = [(f, t) for f, t in reversed(gaps)]
        acc = origin_near[first_stop]
        egr = dest_near[last_stop]
        return _on_stops(Journey(chain, (first_stop, acc[0], acc[1]), (last_stop, egr[0], egr[1]), gaps), net.node_stop)
    # reversed network: convert positions / columns back; chain is already in travel order
    rides = []
    for p, c, slot, b, a in chain:
        L = int(net.pattern_stop_offsets[p + 1] - net.pattern_stop_offsets[p])
        n = int(net.pattern_n_trips[p])
        rides.append((p, n - 1 - c, slot, L - 1 - a, L - 1 - b))
    gaps = [(t, f) for f, t in gaps]
    acc = origin_near[last_stop]
    egr = dest_near[first_stop]
    return _on_stops(Journey(rides, (last_stop, acc[0], acc[1]), (first_stop, egr[0], egr[1]), gaps), net.node_stop)


def prep_shift(prep: _Prepared, net: _Net, p: int, slot: int) -> int:
    s = int(prep.pattern_shift[p, slot])
    return -s if net.reverse else s


def _run(tt: Timetable, prep: _Prepared, net: _Net, st: _State, sources: dict, sinks: dict,
         t: int, max_rounds: int) -> None:
    """One kernel run; ``sources`` / ``sinks``: stop -> (walk_s, m)."""
    acc_stops = np.fromiter(sources.keys(), dtype=np.int32, count=len(sources))
    acc_s = np.fromiter((v[0] for v in sources.values()), dtype=np.int64, count=len(sources))
    egress = st.egress
    for s, v in sinks.items():
        egress[s] = v[0]
    try:
        shift = prep.pattern_shift if not net.reverse else _neg_shift(prep)
        trip_slots = prep.extra["runs"] if net.trip_perm is None else _rev_runs(tt, prep, net)
        fp_change = prep.footpath_change_s if not net.reverse else prep.extra["change_t"]
        rev_change = prep.extra["change_t"] if not net.reverse else prep.footpath_change_s
        st.n_touched = K._raptor(
            *net.tt_args(), fp_change, prep.stop_change_s, prep.stop_ok, prep.pattern_ok, shift, trip_slots,
            acc_stops, acc_s, np.ones(acc_stops.shape[0], dtype=np.bool_), egress, np.int64(t), max_rounds,
            *st.label_args(), st.touched, st.n_touched, st.is_touched, *st.work_args(),
            *st.target_args(np.fromiter(sinks.keys(), dtype=np.int32, count=len(sinks))),
            net.rev_footpath_offsets, net.rev_footpath_to, rev_change, *st.b2_args(), True)
    finally:
        for s in sinks:
            egress[s] = -1


def _neg_shift(prep: _Prepared) -> np.ndarray:
    neg = prep.extra.get("neg_shift")
    if neg is None:
        neg = np.where(prep.pattern_shift >= INF, INF, -prep.pattern_shift)
        prep.extra["neg_shift"] = neg
    return neg


def _rev_runs(tt: Timetable, prep: _Prepared, net: _Net) -> tuple:
    cache = _derived(tt).cache if prep.extra.get("realtime") is None else _rt_cache(prep.extra["realtime"])
    key = ("rev_runs",) + prep.extra["filters_key"]
    r = cache.get(key)
    if r is None:
        r = run_lists(np.ascontiguousarray(prep.trip_slots[net.trip_perm]), net.pattern_trip_offsets, tt.n_patterns)
        cache[key] = r
    return r


def _to_epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def _validate(req: PlanRequest) -> None:
    if (req.depart_at is None) == (req.arrive_by is None):
        raise InvalidQuery("give exactly one of depart_at and arrive_by")
    when = req.depart_at or req.arrive_by
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidQuery("depart_at / arrive_by must be timezone-aware", details={"value": when.isoformat()})
    if req.window_s < 0 or req.window_s > 24 * 3600:
        raise InvalidQuery("window_s must be between 0 and 86400")
    if req.window_s and req.arrive_by is not None:
        raise InvalidQuery("a departure window needs depart_at")
    if not 0 <= req.max_transfers <= 10:
        raise InvalidQuery("max_transfers must be between 0 and 10")
    if req.min_change_s < 0 or req.walk_speed_m_s <= 0 or req.max_walk_m < 0 or req.max_itineraries < 1:
        raise InvalidQuery("min_change_s, walk_speed_m_s, max_walk_m must be positive, max_itineraries >= 1")
    if req.modes is not None:
        bad = set(req.modes) - set(MODES)
        if bad:
            raise InvalidQuery(f"unknown modes: {sorted(bad)}", details={"allowed": list(MODES)})
    if req.origin == req.destination:
        raise InvalidQuery("origin and destination are the same")
    if req.optimize not in ("time", "fare"):
        raise InvalidQuery(f"optimize must be 'time' or 'fare', not {req.optimize!r}",
                           details={"allowed": ["time", "fare"]})
    if req.max_fare is not None and req.max_fare < 0:
        raise InvalidQuery("max_fare must be >= 0 (minor units)", details={"max_fare": req.max_fare})
    if req.itinerary_filter not in ("default", "none"):
        raise InvalidQuery(f"filter must be 'default' or 'none', not {req.itinerary_filter!r}",
                           details={"allowed": ["default", "none"]})
    if (req.max_duration_factor < 1 or req.cost_limit_factor < 1 or req.max_duration_slack_s < 0
            or req.cost_limit_slack_s < 0 or req.cost_interval_relax < 0 or req.walk_reluctance < 0
            or req.board_cost_s < 0 or req.dominance_walk_slack_m < 0):
        raise InvalidQuery("filter factors must be >= 1, slacks, relax, reluctance and costs >= 0")
    if _fare_mode(req) and (req.arrive_by is not None or req.window_s):
        raise InvalidQuery("optimize=fare and max_fare need depart_at without a departure window")


def _fare_mode(req: PlanRequest) -> bool:
    return req.optimize == "fare" or req.max_fare is not None


@dataclass
class SearchResult:
    """Journeys of one search (before itinerary assembly) with the data needed to time them."""

    journeys: list[Journey]
    prep: _Prepared
    origin: _Endpoint
    destination: _Endpoint


def _endpoints(tt: Timetable, req: PlanRequest, prep: _Prepared) -> tuple[_Endpoint, _Endpoint]:
    o = _resolve(tt, req.origin, req, prep, outgoing=True)
    dst = _resolve(tt, req.destination, req, prep, outgoing=False)
    if set(o.platforms) & set(dst.platforms):
        raise InvalidQuery("origin and destination are the same place (a station and its platform)",
                           details={"origin": req.origin, "destination": req.destination})
    return o, dst


def search(tt: Timetable, req: PlanRequest, realtime=None, multi_criteria: bool = True,
           fares: FareTables | None = None) -> SearchResult:
    """Run the search a request asks for and return raw journeys (see :func:`plan`).

    Depart-at searches also run McRAPTOR (:func:`mc_search`) at the departure
    time, adding the journeys Pareto-optimal in walking too (``least_walking``).
    A fare search (``optimize="fare"`` or ``max_fare``) runs only the
    fare-aware McRAPTOR (:func:`fare_search`) with ``fares``.
    """
    tt, realtime = view_for(tt, realtime), None
    _validate(req)
    if _fare_mode(req) and fares is None:
        raise InvalidQuery("no fare data is loaded: optimize=fare and max_fare are unavailable",
                           code="fares_unavailable")
    when = req.depart_at or req.arrive_by
    prep = _prepare(tt, req, when, realtime)
    o, dst = _endpoints(tt, req, prep)
    rounds = req.max_transfers + 1
    t = _to_epoch(when) - prep.ref_epoch
    journeys: list[Journey] = []
    direct = _direct_walk(tt, o, dst, req)
    if direct is not None:
        dep = t if req.arrive_by is None else t - direct[0]
        journeys.append(Journey([], (-1, 0, 0.0), (-1, 0, 0.0), [], walk_only=direct, depart_t=dep, fare=0))
    if _fare_mode(req):
        journeys.extend(fare_search(tt, prep, _nets(tt, realtime, False), o, dst, t, rounds, fares,
                                    max_fare=req.max_fare,
                                    horizon=(req.max_duration_slack_s, req.max_duration_factor)))
        return SearchResult(journeys, prep, o, dst)
    if req.arrive_by is not None:
        net = _nets(tt, realtime, True)
        st = _state(tt, True, rounds)
        _run(tt, prep, net, st, dst.near, o.near, -t, rounds)
        for k in range(1, rounds + 1):
            if st.target[k] < INF:
                journeys.append(_reconstruct(net, st, prep, k, o.near, dst.near))
        return SearchResult(journeys, prep, o, dst)
    net = _nets(tt, realtime, False)
    st = _state(tt, False, rounds)
    if req.window_s > 0:
        for dep_t, k in range_profile_raw(tt, prep, net, st, o.near, dst.near, t, t + req.window_s, rounds):
            _run(tt, prep, net, st, o.near, dst.near, dep_t, k)
            if st.target[k] < INF:
                journeys.append(_reconstruct(net, st, prep, k, o.near, dst.near))
            if len(journeys) >= 4 * req.max_itineraries:
                break
        return SearchResult(journeys, prep, o, dst)
    # several departures: after each search, search again just after the earliest departure found
    t_next = t
    # (one extra search at least: a journey found for one departure time may be matched by a later
    # departure arriving just as early, which then dominates it)
    for _ in range(max(2, req.max_itineraries + 1)):
        _run(tt, prep, net, st, o.near, dst.near, t_next, rounds)
        found = [_reconstruct(net, st, prep, k, o.near, dst.near)
                 for k in range(1, rounds + 1) if st.target[k] < INF]
        if not found:
            break
        journeys.extend(found)
        first_deps = [_first_departure(net, prep, j) for j in found]
        t_next = min(first_deps) + 1
        if len(journeys) >= 2 * req.max_itineraries + 2:
            break
    if multi_criteria:
        journeys.extend(mc_search(tt, prep, net, o, dst, t, rounds, known=journeys))
    return SearchResult(journeys, prep, o, dst)


def _walk_metres(prep: _Prepared, tt: Timetable, d: _Derived) -> np.ndarray:
    """(E,) int64 walking metres per footpath, rounded up (McRAPTOR's walking criterion)."""
    m = d.cache.get("walk_m")
    if m is None:
        m = d.cache["walk_m"] = np.ceil(d.footpath_m).astype(np.int64)
    return m


def journey_walk_m(tt: Timetable, prep: _Prepared, j: Journey) -> int:
    """Walking metres of a journey as McRAPTOR counts them (each walk rounded up)."""
    d = _derived(tt)
    total = int(math.ceil(j.access[2])) + int(math.ceil(j.egress[2]))
    fwd = d.fwd
    for u, v in j.transfers:
        if u == v:
            continue
        best = None
        for e in range(int(fwd.footpath_offsets[u]), int(fwd.footpath_offsets[u + 1])):
            if int(fwd.footpath_to[e]) == v and prep.footpath_walk_s[e] >= 0:
                m = int(math.ceil(d.footpath_m[e]))
                best = m if best is None else min(best, m)
        total += best or 0
    return total


def mc_search(tt: Timetable, prep: _Prepared, net: _Net, o: _Endpoint, dst: _Endpoint, t: int,
              rounds: int, known: list[Journey] | None = None) -> list[Journey]:
    """McRAPTOR: every journey Pareto-optimal in (arrival, rides, walking metres) from departure ``t``.

    ``known`` journeys (RAPTOR's, departing no earlier than ``t``) seed the
    destination bag: the search then only looks for what they do not cover.
    """
    d = _derived(tt)
    acc_stops = np.fromiter(o.near.keys(), dtype=np.int32, count=len(o.near))
    acc_s = np.fromiter((v[0] for v in o.near.values()), dtype=np.int64, count=len(o.near))
    acc_m = np.fromiter((int(math.ceil(v[1])) for v in o.near.values()), dtype=np.int64, count=len(o.near))
    egress_s = np.full(d.n_nodes, -1, dtype=np.int64)
    egress_m = np.zeros(d.n_nodes, dtype=np.int64)
    for s, (w, m) in dst.near.items():
        egress_s[s] = w
        egress_m[s] = int(math.ceil(m))
    seed_rows = []
    for j in known or []:
        if j.walk_only is None and j.rides:
            p, c, slot, _b, a = j.rides[-1]
            arr = (int(net.pattern_arr[int(net.pattern_time_offsets[p]) + a * int(net.pattern_n_trips[p]) + c])
                   + int(prep.pattern_shift[p, slot]) + j.egress[1])
            seed_rows.append((arr, journey_walk_m(tt, prep, j), len(j.rides)))
    seed = np.array(seed_rows, dtype=np.int64).reshape(-1, 3)
    cap = 1 << 18
    while True:
        n_t, tgt, L_arr, L_walk, L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a = K._mcraptor(
            *net.tt_args(), prep.footpath_change_s, _walk_metres(prep, tt, d), prep.stop_change_s, prep.stop_ok,
            prep.pattern_ok, prep.pattern_shift, prep.extra["runs"], acc_stops, acc_s, acc_m, egress_s, egress_m,
            np.int64(t), rounds, cap, seed)
        if n_t >= 0 or cap >= 1 << 25:
            break
        cap *= 4
    rows = tgt[:max(n_t, 0)].tolist()
    # keep the Pareto-optimal rows over (arrival, walking, rides)
    rows = [r for r in rows if not any(x[0] <= r[0] and x[1] <= r[1] and x[2] <= r[2] and x[:3] != r[:3]
                                       for x in rows)]
    out: list[Journey] = []
    seen: set = set()
    for arr, walk, k, lab, eg in rows:
        if lab < 0 or (arr, walk, k) in seen:
            continue
        seen.add((arr, walk, k))
        out.append(_on_stops(_label_journey(o, dst, lab, eg, (L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a)),
                             net.node_stop))
    return out


def _first_departure(net: _Net, prep: _Prepared, j: Journey) -> int:
    """Query-axis time the journey leaves its origin (first vehicle departure minus access walk)."""
    p, c, slot, b, _a = j.rides[0]
    tt_dep = int(net.pattern_dep[int(net.pattern_time_offsets[p]) + b * int(net.pattern_n_trips[p]) + c])
    return tt_dep + int(prep.pattern_shift[p, slot]) - j.access[1]


def range_profile_raw(tt: Timetable, prep: _Prepared, net: _Net, st: _State, sources: dict, sinks: dict,
                      t_lo: int, t_hi: int, max_rounds: int) -> list[tuple[int, int]]:
    """Pareto-optimal ``(departure, rides)`` pairs of a departure window (latest departure first)."""
    return [(dep, k) for dep, k, _ in range_profile_rows(tt, prep, net, st, sources, sinks, t_lo, t_hi, max_rounds)]


def range_profile_rows(tt: Timetable, prep: _Prepared, net: _Net, st: _State, sources: dict, sinks: dict,
                       t_lo: int, t_hi: int, max_rounds: int) -> list[tuple[int, int, int]]:
    """Pareto-optimal ``(departure, rides, arrival)`` of a departure window (latest departure first).

    The arrival of a row is the earliest arrival with at most that many rides leaving at or after its
    departure: what one run at that departure finds (rRAPTOR's labels of later departures are upper bounds
    for earlier ones, and a row is written only where the departure improved on them).
    """
    acc_stops = np.fromiter(sources.keys(), dtype=np.int32, count=len(sources))
    acc_s = np.fromiter((v[0] for v in sources.values()), dtype=np.int64, count=len(sources))
    deps, event_access = K._departures_in_window(
        net.pattern_stop_offsets, net.pattern_stops, net.pattern_pickup, net.pattern_time_offsets,
        net.pattern_n_trips, net.pattern_trip_offsets, net.pattern_dep, net.stop_pattern_offsets,
        net.stop_patterns, net.stop_pattern_pos, prep.stop_ok, prep.pattern_ok, prep.pattern_shift,
        prep.extra["runs"], acc_stops, acc_s, np.int64(t_lo), np.int64(t_hi))
    if deps.shape[0] == 0:
        return []
    st.reset()
    egress = st.egress
    for s, v in sinks.items():
        egress[s] = v[0]
    out = np.empty((max(1, deps.shape[0]) * max_rounds, 3), dtype=np.int64)
    try:
        n_out, st.n_touched = K._raptor_range(
            *net.tt_args(), prep.footpath_change_s, prep.stop_change_s, prep.stop_ok, prep.pattern_ok,
            prep.pattern_shift, prep.extra["runs"], acc_stops, acc_s, egress, deps, event_access, max_rounds,
            *st.label_args(), st.touched, st.n_touched, st.is_touched, *st.work_args(),
            *st.target_args(np.fromiter(sinks.keys(), dtype=np.int32, count=len(sinks))),
            net.rev_footpath_offsets, net.rev_footpath_to, prep.extra["change_t"], *st.b2_args(), out)
    finally:
        for s in sinks:
            egress[s] = -1
    rows = out[:n_out]
    return _pareto_profile(rows)


def _pareto_profile(rows: np.ndarray) -> list[tuple[int, int, int]]:
    """Keep (dep, k, arr) rows not dominated by another (dep' >= dep, arr' <= arr, k' <= k)."""
    items = sorted(rows.tolist(), key=lambda r: (-r[0], r[2], r[1]))
    kept: list[tuple[int, int, int]] = []
    for dep, k, arr in items:
        if any(d2 >= dep and a2 <= arr and k2 <= k for d2, k2, a2 in kept):
            continue
        kept.append((dep, k, arr))
    return kept


def range_profile(tt: Timetable, req: PlanRequest, realtime=None) -> list[tuple[datetime, datetime, int]]:
    """All Pareto-optimal (departure, arrival, rides) of a window search, as UTC datetimes.

    ``req.window_s`` must be > 0. Cheap: no itinerary assembly (what the benchmark times).
    """
    tt, realtime = view_for(tt, realtime), None
    _validate(req)
    if req.depart_at is None or req.window_s <= 0:
        raise InvalidQuery("range_profile needs depart_at and window_s > 0")
    prep = _prepare(tt, req, req.depart_at, realtime)
    o, dst = _endpoints(tt, req, prep)
    d = _derived(tt)
    rounds = req.max_transfers + 1
    st = _state(tt, False, rounds)
    t = _to_epoch(req.depart_at) - prep.ref_epoch
    net = _nets(tt, realtime, False)
    rows = range_profile_rows(tt, prep, net, st, o.near, dst.near, t, t + req.window_s, rounds)
    if not rows:
        return []
    # A row's arrival is the best among departures inside the window; one run just after the window gives
    # the best of the later ones (what a run at the row's own departure would also see).
    _run(tt, prep, net, st, o.near, dst.near, t + req.window_s + 1, rounds)
    after = [int(st.best_target[k]) for k in range(rounds + 1)]
    return [(datetime.fromtimestamp(prep.ref_epoch + dep_t, timezone.utc),
             datetime.fromtimestamp(prep.ref_epoch + min(arr, after[k]), timezone.utc), k)
            for dep_t, k, arr in rows]


def earliest_arrival(tt: Timetable, req: PlanRequest, realtime=None) -> list[int | None]:
    """Earliest arrival (UTC epoch seconds) per number of rides 0..max_transfers+1 (``None`` = none).

    Entry ``k`` is the best arrival with *at most* ``k`` rides (what the oracle computes).
    """
    tt, realtime = view_for(tt, realtime), None
    _validate(req)
    if req.depart_at is None:
        raise InvalidQuery("earliest_arrival needs depart_at")
    prep = _prepare(tt, req, req.depart_at, realtime)
    o, dst = _endpoints(tt, req, prep)
    d = _derived(tt)
    rounds = req.max_transfers + 1
    st = _state(tt, False, rounds)
    t = _to_epoch(req.depart_at) - prep.ref_epoch
    _run(tt, prep, _nets(tt, realtime, False), st, o.near, dst.near, t, rounds)
    direct = _direct_walk(tt, o, dst, req)
    best = INF if direct is None else t + direct[0]
    out: list[int | None] = []
    for k in range(rounds + 1):
        if k > 0:
            best = min(best, int(st.best_target[k]))
        out.append(None if best >= INF else best + prep.ref_epoch)
    return out


def plan(tt: Timetable, request: PlanRequest, realtime=None, fares: FareTables | None = None) -> list[dict]:
    """Plan journeys; itineraries in the API.md shape plus ``label`` and ``id``.

    With ``request.optimize == "fare"`` (or ``max_fare``) the result is the
    Pareto set over (arrival, transfers, fare) found by the fare-aware kernel
    with ``fares`` (see :func:`fare_itineraries`); each itinerary's ``fare`` is
    the kernel's (the caller may re-price it with the full fare engine).

    Returns ``[]`` when nothing satisfies the request (the caller maps that to
    ``no_itinerary``). Raises :class:`~routing.errors.InvalidQuery` /
    :class:`~routing.errors.UnknownStop` for bad input.
    """
    return plan_answer(tt, request, realtime, fares, explain=False).itineraries


@dataclass
class PlanAnswer:
    """Itineraries, why there are none (``reason``: ``code``, ``message`` and details; see
    :func:`routing.explain.why_empty`) and how many each filter rule removed (``filtered``)."""

    itineraries: list[dict]
    reason: dict | None = None
    filtered: dict[str, int] = field(default_factory=dict)


def plan_answer(tt: Timetable, request: PlanRequest, realtime=None, fares: FareTables | None = None,
                explain: bool = True) -> PlanAnswer:
    """:func:`plan` with the filter counts and, for an empty answer (``explain``), its reason."""
    tt, realtime = view_for(tt, realtime), None
    from routing.itinerary import build_itineraries

    res = search(tt, request, realtime, fares=fares)
    stats: dict[str, int] = {}
    if _fare_mode(request):
        its = fare_itineraries(tt, res, request, fares)
    else:
        its = build_itineraries(tt, res, request, realtime, stats=stats)
    answer = PlanAnswer(its, None, stats)
    if not its and explain:
        from routing.explain import why_empty

        answer.reason = why_empty(tt, request, res, fares)
    return answer


# --------------------------------------------------------------------------------------------
# fare-aware search


def _fare_kernel_inputs(tt: Timetable, tables: FareTables) -> tuple:
    """Per (timetable, tables) arrays of the fare kernel, cached on the tables."""
    cache = tables.meta.setdefault("_kernel", {})
    key = (id(tt), id(tables))  # dataclasses.replace() copies share ``meta``
    entry = cache.get(key)
    # (each real-time snapshot is a timetable of its own: hold it weakly, so an id reused by a later
    # timetable is not taken for it, and keep only a few)
    hit = entry[1] if entry is not None and entry[0]() is tt else None
    if hit is None:
        if len(cache) >= 8:
            cache.clear()
        tables.validate(tt.route_ids.shape[0], tt.n_stops)
        route_net = np.asarray(tables.route_network, dtype=np.int64)
        pattern_net = np.ascontiguousarray(route_net[np.asarray(tt.pattern_route, dtype=np.int64)], dtype=np.int32)
        stop_area = np.ascontiguousarray(np.asarray(tables.stop_area)[_derived(tt).node_stop], dtype=np.int32)
        dist = np.ascontiguousarray(tt.pattern_stop_dist_m, dtype=np.float32)
        args = tables.kernel_args()
        net_joins = np.ascontiguousarray(np.asarray(tables.join, dtype=bool).any(axis=1)) if tables.n_networks \
            else np.zeros(0, dtype=np.bool_)
        group_out = np.ascontiguousarray((np.asarray(tables.xfer_kind) != 0).any(axis=1)) if tables.n_groups \
            else np.zeros(0, dtype=np.bool_)
        # numba cannot index empty 1-d bool arrays typed from () shapes; keep at least one cell
        if net_joins.size == 0:
            net_joins = np.zeros(1, dtype=np.bool_)
        if group_out.size == 0:
            group_out = np.zeros(1, dtype=np.bool_)
        hit = (pattern_net, stop_area, dist, args, net_joins, group_out, tables.timed) + _allowances(tables)
        cache[key] = (weakref.ref(tt), hit)
    return hit


def _allowances(tables: FareTables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: longest time limit of its timed transfer rules out (-1 = none) and whether it has untimed
    ones; per network: can one of its legs start a timed allowance (its leg groups have timed rules out)."""
    g = tables.n_groups
    kind = np.asarray(tables.xfer_kind) != 0
    lim = np.asarray(tables.xfer_limit_s, dtype=np.int64)
    group_lim = np.where(kind & (lim >= 0), lim, -1).max(axis=1, initial=-1) if g else np.full(1, -1)
    group_untimed = (kind & (lim < 0)).any(axis=1) if g else np.zeros(1, dtype=bool)
    timed_group = np.append(group_lim >= 0, False)  # index -1 (no group) -> False
    net_later = np.zeros(max(tables.n_networks, 1), dtype=np.bool_)
    for n in range(tables.n_networks):
        groups = np.asarray(tables.leg_group[n]).ravel() if tables.network_kind[n] == 0 \
            else np.asarray([tables.network_group[n]])
        net_later[n] = bool(timed_group[np.where(groups >= 0, groups, -1)].any()) if g else False
    return (np.ascontiguousarray(group_lim, dtype=np.int64), np.ascontiguousarray(group_untimed, dtype=np.bool_),
            net_later)


#: The complete fare search (time-limited transfer rules) gives up beyond this many labels, or this many in
#: one bag (round, stop), and answers with the first reachable trips only (docs/planning.md).
FARE_LABEL_BUDGET = 1 << 20
FARE_BAG_BUDGET = 8192


def fare_horizon(t: int, earliest_arrival: int, slack_s: int, factor: float) -> int:
    """``t + slack_s + factor * (earliest_arrival - t)`` (query seconds): the itinerary filter's duration bound
    (``max_duration_slack_s`` / ``max_duration_factor``) after a departure ``t`` arriving at ``earliest_arrival``.
    """
    return int(t + slack_s + math.floor(factor * max(earliest_arrival - t, 0)))


def fare_window(t: int, t_eff: int, earliest_arrival: int, slack_s: int, factor: float) -> tuple[int, int]:
    """The journeys a fare search with time-limited transfer rules considers: leaving the origin at or after the
    first and arriving by the second value (query seconds).

    ``earliest_arrival`` (EA) is the earliest arrival from ``t``, ``t_eff`` the latest departure still arriving
    then. The longest duration considered is ``D = fare_horizon(t_eff, EA, ...) - t_eff`` (the itinerary
    filter's bound for the fastest journey); the window is ``[max(t, EA - D), t_eff + D]``: a journey leaving
    before ``EA - D`` arrives at EA at the earliest and lasts longer than ``D``.
    """
    t_max = fare_horizon(t_eff, earliest_arrival, slack_s, factor)
    return max(t, earliest_arrival - (t_max - t_eff)), t_max


def fare_search(tt: Timetable, prep: _Prepared, net: _Net, o: _Endpoint, dst: _Endpoint, t: int, rounds: int,
                tables: FareTables, max_fare: int | None = None, horizon: tuple[int, float] = (1800, 2.0)) -> list[Journey]:
    """Fare-aware McRAPTOR: every journey Pareto-optimal in (arrival, rides, fare) from departure ``t``.

    Without time-limited transfer rules the first reachable trip of a pattern
    dominates every later one, and the result is complete with no time bound.
    With them (``tables.timed``) a later trip can be cheaper (its allowance
    starts later): a first run finds the earliest arrival EA and
    :func:`fare_search_window` the window (``horizon`` = ``(slack_s, factor)``,
    from the request's ``max_duration_slack_s`` and ``max_duration_factor``);
    a first-trip run with exact prices seeds a complete run that boards every
    trip whose times can change a price, pruned by the latest useful times and
    a fare lower bound per stop: the exact Pareto set of all journeys in the
    window — unless it would keep more than :data:`FARE_LABEL_BUDGET` labels
    (:data:`FARE_BAG_BUDGET` in one bag), when the seeds are the answer
    (logged).

    ``max_fare``: minor units, journeys above it are left out. Journeys come
    with ``fare`` (minor units of ``tables.currency``; ``None`` when a ride is
    not priced by the tables).
    """
    if not _fare_kernel_inputs(tt, tables)[6]:
        return _fare_journeys(o, dst, [_fare_run(tt, prep, net, o, dst, t, rounds, tables, max_fare, False, INF)],
                              node_stop=net.node_stop)
    window = fare_search_window(tt, prep, net, o, dst, t, rounds, tables, horizon)
    if window is None:
        return []
    t_start, t_max, ea = window
    # per stop and rides left: the latest times that can still arrive by the window's end, the least fare still due
    lat = _latest_times(tt, prep, net, o, dst, t_max, t_start, rounds) \
        + _fare_bounds(tt, prep, net, dst, tables, rounds) + (ea,)
    # 3. first reachable trips in the window, priced exactly: journeys that bound the complete run (a label one of
    # them beats, once the bounds are added, is dropped)
    first = _fare_run(tt, prep, net, o, dst, t_start, rounds, tables, None, False, t_max, lat=lat)
    seed = np.ascontiguousarray(first[1][:first[0], :3], dtype=np.int64)
    # 4. every trip that can change a price
    full = _fare_run(tt, prep, net, o, dst, t_start, rounds, tables, max_fare, True, t_max, lat=lat, seed=seed,
                     budget=(FARE_LABEL_BUDGET, FARE_BAG_BUDGET))
    if full is None:
        _log.warning("fare search: label budget exceeded (%d rides, window %d s); first reachable trips only",
                     rounds, t_max - t_start)
        return _fare_journeys(o, dst, [first], max_fare=max_fare, node_stop=net.node_stop)
    return _fare_journeys(o, dst, [full, first], max_fare=max_fare, t_max=t_max, node_stop=net.node_stop)


def fare_search_window(tt: Timetable, prep: _Prepared, net: _Net, o: _Endpoint, dst: _Endpoint, t: int,
                       rounds: int, tables: FareTables, horizon: tuple[int, float] = (1800, 2.0)
                       ) -> tuple[int, int, int] | None:
    """``(t_start, t_max, EA)`` of :func:`fare_window` for a query (``None``: the destination is not reached).

    EA comes from a run of the fare kernel pricing as if no rule had a time limit (arrivals do not depend on
    fares; few labels), the latest departure still arriving at EA from :func:`routing.kernels._latest_times`.
    """
    n_t, tgt, _lab = _fare_run(tt, prep, net, o, dst, t, rounds, tables, None, False, INF, timed=False)
    if not n_t:
        return None
    ea = int(tgt[:n_t, 0].min())
    _A, B = _latest_times(tt, prep, net, o, dst, ea, t, rounds)
    return fare_window(t, _latest_departure(o, B[rounds], t), ea, *horizon) + (ea,)


def _latest_times(tt: Timetable, prep: _Prepared, net: _Net, o: _Endpoint, dst: _Endpoint, t_arr: int, t: int,
                  rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` of :func:`routing.kernels._latest_times`: per rides left and stop, the latest vehicle arrival
    (``A``) and boarding (``B``) from which ``dst`` is reached by ``t_arr``."""
    egress_s = np.full(_derived(tt).n_nodes, -1, dtype=np.int64)
    for s, (w, _m) in dst.near.items():
        egress_s[s] = w
    return K._latest_times(
        net.pattern_stop_offsets, net.pattern_stops, net.pattern_pickup, net.pattern_dropoff,
        net.pattern_time_offsets, net.pattern_n_trips, net.pattern_arr, net.pattern_dep, net.footpath_offsets,
        net.footpath_to, prep.footpath_change_s, prep.stop_change_s, prep.stop_ok, prep.pattern_ok,
        prep.pattern_shift, prep.extra["runs"], egress_s, np.int64(t_arr), np.int64(t), rounds)


def _fare_bounds(tt: Timetable, prep: _Prepared, net: _Net, dst: _Endpoint, tables: FareTables,
                 rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`routing.kernels._fare_lower_bounds`: per rides left and stop, a lower bound of the fare still to pay."""
    pattern_net, stop_area, _dist, ft = _fare_kernel_inputs(tt, tables)[:4]
    egress_s = np.full(_derived(tt).n_nodes, -1, dtype=np.int64)
    for s, (w, _m) in dst.near.items():
        egress_s[s] = w
    return K._fare_lower_bounds(net.pattern_stop_offsets, net.pattern_stops, net.pattern_pickup, net.pattern_dropoff,
                                net.footpath_offsets, net.footpath_to, prep.footpath_change_s, prep.stop_change_s,
                                prep.stop_ok, prep.pattern_ok, egress_s, pattern_net, stop_area, ft, rounds)


def _latest_departure(o: _Endpoint, b: np.ndarray, t: int) -> int:
    """The latest departure from the origin (query seconds, at least ``t``) that can board by ``b``."""
    best = t
    for s, (w, _m) in o.near.items():
        if b[s] > K.NEG:
            best = max(best, int(b[s]) - int(w))
    return best


def _fare_run(tt: Timetable, prep: _Prepared, net: _Net, o: _Endpoint, dst: _Endpoint, t: int, rounds: int,
              tables: FareTables, max_fare: int | None, every_trip: bool, t_max: int,
              timed: bool | None = None, lat: tuple | None = None, seed: np.ndarray | None = None,
              budget: tuple[int, int] | None = None) -> tuple | None:
    """One run of ``_mcraptor_fare``, growing the label pool until it fits: ``(n_targets, targets, labels)``.

    ``timed=False``: ignore the times of transfer allowances (fares then wrong, arrivals right). ``lat``:
    :func:`_latest_times` for ``t_max`` + :func:`_fare_bounds` + (EA,): labels that cannot reach the
    destination by then are dropped, and labels a ``seed`` or target beats once those bounds are added.
    ``seed``: (arrival, fare, rides) of known journeys, labels they beat are dropped. ``budget``: (labels,
    labels per bag); ``None`` is returned when the run would need more."""
    pattern_net, stop_area, dist, ft, net_joins, group_out, has_timed, group_lim, group_untimed, net_later = \
        _fare_kernel_inputs(tt, tables)
    timed = has_timed if timed is None else timed
    acc_stops = np.fromiter(o.near.keys(), dtype=np.int32, count=len(o.near))
    acc_s = np.fromiter((v[0] for v in o.near.values()), dtype=np.int64, count=len(o.near))
    egress_s = np.full(_derived(tt).n_nodes, -1, dtype=np.int64)
    for s, (w, _m) in dst.near.items():
        egress_s[s] = w
    # boarding later trips (time-limited transfers) makes more labels: start with a larger pool than a rerun costs
    cap = 1 << 18 if every_trip else 1 << 16
    if lat is None:
        no = np.full((1, 1), K.INF, dtype=np.int64)
        lat = (no, no, no, no, 0)
    if seed is None:
        seed = np.zeros((0, 3), dtype=np.int64)
    bag_cap = INF
    if budget is not None:
        cap, bag_cap = min(cap, budget[0]), budget[1]
    while True:
        n_t, tgt, L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a = K._mcraptor_fare(
            *net.tt_args(), prep.footpath_change_s, prep.stop_change_s, prep.stop_ok, prep.pattern_ok,
            prep.pattern_shift, prep.extra["runs"], acc_stops, acc_s, egress_s, pattern_net, stop_area, dist, ft,
            net_joins, group_out, bool(timed), group_lim, group_untimed, net_later, bool(every_trip), np.int64(t_max),
            lat[0], lat[1], lat[0].shape[1] > 1, seed, lat[2], lat[3], np.int64(lat[4]), np.int64(bag_cap),
            np.int64(-1 if max_fare is None else max_fare), np.int64(t), rounds, cap)
        if n_t >= 0 or n_t == -2 or cap >= (budget[0] if budget is not None else 1 << 20 if every_trip else 1 << 24):
            break
        cap *= 4
    if n_t < 0 and budget is not None:
        return None
    if n_t < 0:
        raise InvalidQuery("the fare search explored too many alternatives; lower max_transfers",
                           details={"max_transfers": rounds - 1})
    return n_t, tgt, (L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a)


def _fare_journeys(o: _Endpoint, dst: _Endpoint, runs: list[tuple], max_fare: int | None = None,
                   t_max: int = INF, node_stop: np.ndarray | None = None) -> list[Journey]:
    """The journeys of the Pareto-optimal targets of fare runs (one per (arrival, fare, rides)), first run first;
    targets above ``max_fare`` or arriving after ``t_max`` left out."""
    rows = [r + [i] for i, (n_t, tgt, _lab) in enumerate(runs) for r in tgt[:n_t].tolist()
            if r[0] <= t_max and (max_fare is None or r[1] <= max_fare)]
    rows = [r for r in rows if not any(x[0] <= r[0] and x[1] <= r[1] and x[2] <= r[2] and x[:3] != r[:3]
                                       for x in rows)]
    out: list[Journey] = []
    seen: set = set()
    for arr, fare, k, lab, eg, run in rows:
        if (arr, fare, k) in seen:
            continue
        seen.add((arr, fare, k))
        j = _label_journey(o, dst, lab, eg, runs[run][2], None if fare >= UNPRICED else int(fare))
        out.append(j if node_stop is None else _on_stops(j, node_stop))
    return out


def _label_journey(o: _Endpoint, dst: _Endpoint, lab: int, eg: int, labels: tuple,
                   fare: int | None = None) -> Journey:
    """The journey ending in the ride label ``lab`` at egress stop ``eg``, following the labels' parents.

    ``labels`` are the McRAPTOR label arrays (kind, parent, stop, pattern, trip column, day slot, boarding and
    alighting positions) of :func:`mc_search` or a fare run.
    """
    L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a = labels
    rides: list[tuple[int, int, int, int, int]] = []
    gaps: list[tuple[int, int]] = []
    l = int(lab)
    first = -1
    while l >= 0:
        if int(L_kind[l]) == K.LBL_RIDE:
            rides.append((int(L_p[l]), int(L_c[l]), int(L_slot[l]), int(L_b[l]), int(L_a[l])))
            parent = int(L_parent[l])
            if int(L_kind[parent]) == K.LBL_TRANSFER:
                gaps.append((int(L_stop[int(L_parent[parent])]), int(L_stop[parent])))
                l = int(L_parent[parent])
            else:
                first = int(L_stop[parent])
                l = -1
        else:
            l = int(L_parent[l])
    rides.reverse()
    gaps.reverse()
    acc = o.near[first]
    egr = dst.near[int(eg)]
    return Journey(rides, (first, acc[0], acc[1]), (int(eg), egr[0], egr[1]), gaps, fare=fare)


def fare_itineraries(tt: Timetable, res: SearchResult, req: PlanRequest, tables: FareTables) -> list[dict]:
    """Itineraries of a fare search: the Pareto set over (arrival, transfers, fare), at most ``max_itineraries``.

    Each has ``fare`` ``{"amount", "currency"}`` from the kernel (``None`` when
    not priced) and one label: ``cheapest``, else ``fastest``, else
    ``fewest_transfers``, else ``alternative``. Ordered by departure, then arrival.
    """
    from routing.itinerary import _finish_ride_leg, _itinerary

    its: dict[str, dict] = {}
    for j in res.journeys:
        if j.walk_only is None and not j.rides:
            continue
        it = _itinerary(tt, res, j)
        it["_fare"] = j.fare if j.fare is not None else UNPRICED
        if req.max_fare is not None and it["_fare"] > req.max_fare:
            continue
        its.setdefault(it["id"], it)
    cand = list(its.values())

    def key(x: dict) -> tuple[int, int, int]:
        return x["_arr"], x["transfers"], x["_fare"]

    cand = [a for a in cand if not any(all(p <= q for p, q in zip(key(b), key(a))) and key(b) != key(a)
                                       for b in cand)]
    if not cand:
        return []
    chosen: list[dict] = []
    # one label per itinerary: "cheapest" first (what a fare search is for), then "fastest"
    picks = ((min(cand, key=lambda x: (x["_fare"], x["_arr"], x["transfers"])), "cheapest"),
             (min(cand, key=lambda x: (x["_arr"], x["_fare"], x["transfers"])), "fastest"),
             (min(cand, key=lambda x: (x["transfers"], x["_fare"], x["_arr"])), "fewest_transfers"))
    for it, label in picks:
        if "label" not in it:
            it["label"] = label
            chosen.append(it)
    for it in sorted((x for x in cand if "label" not in x), key=lambda x: (x["_fare"], x["_arr"])):
        if len(chosen) >= req.max_itineraries:
            break
        it["label"] = "alternative"
        chosen.append(it)
    chosen = chosen[: req.max_itineraries]
    chosen.sort(key=lambda x: (x["_dep"], x["_arr"]))
    for it in chosen:
        f = it.pop("_fare")
        it["fare"] = None if f >= UNPRICED else {"amount": int(f), "currency": tables.currency}
        for k in ("_dep", "_arr", "_walk_s", "_ride_s", "_wait_s"):
            it.pop(k)
        for leg in it["legs"]:
            if "_shape" in leg:
                _finish_ride_leg(tt, leg)
    return chosen
