"""E-ticket coverage of stations, ticketable trips, wheelchair access and service statistics.

Definitions (what a regulator can check against the data):

- a **station** is a served stop without a parent station, or a parent station (``location_type``
  1) whose platforms are served; it belongs to the operator of the route of the top mode serving it
  (the route's agency's operator: the feed's for a one-agency feed; see ``routing.feeds.FeedSource``);
  trips and routes belong to their agency's operator;
- a route is **e-ticket enabled** when the platform can price it: its feed has GTFS Fares v2 or v1,
  or an operator fare table covers the route (`ticketing.fares.engine.FareEngine`);
- a station is **covered** (e-tickets can be sold and validated there) when an e-ticket-enabled
  route serves it AND a registered, active gate stands at it (``gate_devices.stop_id`` equal to the
  station or one of its platforms) or a gate validation was recorded there in the period;
- a trip is **ticketable** when its route is e-ticket enabled (frequency copies count once);
- an **inter-city line** is a route of mode COACH; it is e-ticketed when it is e-ticket enabled
  and every station it serves is covered;
- **wheelchair access**: boarding stops (``location_type`` 0) whose ``wheelchair_boarding`` is 1
  (0 inherits the parent station's), trips whose ``wheelchair_accessible`` is 1.

National targets side by side: ≥ 99 % e-ticket coverage of grade-2-and-above coach stations (grade 1
is the highest: grades 1 and 2), ≥ 95 % of inter-city lines.

The static part (stations, routes, trips, per-feed service statistics) is computed once per
timetable snapshot and fare engine and cached; only gates and validations are read per request.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlmodel import Session, select

from maas.audit_views.common import Period, share
from maas.models import GateDevice
from maas.stations import TYPE_BY_MODE, StationMeta, list_station_meta
from routing.timetable import MODES, Timetable
from ticketing.fares.engine import FareEngine
from ticketing.models import GateValidation

#: Target shares (national targets for 二级及以上客运站 and 客运班线).
TARGET_COACH_STATIONS = 0.99
TARGET_INTERCITY_LINES = 0.95
#: When several modes serve a station, the type comes from the first of these present.
_MODE_PRIORITY = ("COACH", "RAIL", "SUBWAY", "FERRY", "TRAM", "BUS")
_MODE_RANK = np.array([_MODE_PRIORITY.index(m) for m in MODES], dtype=np.int8)  # rank by MODES index


@dataclass(frozen=True)
class _Static:
    """Arrays of one (timetable, fare engine) pair; ``S`` stops, ``R`` routes."""

    station_of_stop: np.ndarray  #: (S,) int32 station index of each stop (itself or its parent)
    stations: np.ndarray  #: (M,) int32 stop indices of the served stations
    station_operator: np.ndarray  #: (M,) str
    station_ids: np.ndarray  #: (M,) str namespaced
    station_mode: np.ndarray  #: (M,) str top mode serving the station (see _MODE_PRIORITY)
    station_eticket: np.ndarray  #: (M,) bool served by an e-ticket-enabled route
    route_ok: np.ndarray  #: (R,) bool e-ticket enabled
    route_stations: list[np.ndarray]  #: per route: station positions (into ``stations``) it serves
    trip_operator: np.ndarray  #: (U,) str operator of each unique trip
    trip_ok: np.ndarray  #: (U,) bool ticketable
    trip_wheelchair: np.ndarray  #: (U,) bool wheelchair_accessible == 1
    stop_operator: np.ndarray  #: (B,) str operator of each served boarding stop
    stop_wheelchair: np.ndarray  #: (B,) bool accessible (inherited from the parent when unknown)
    feed_stats: dict[str, dict[str, Any]]  #: date iso -> per-feed statistics (filled lazily)


#: timetable -> {id(fare engine): (fare engine, static)}; the engine is kept so that its id is never reused.
_CACHE: weakref.WeakKeyDictionary[Timetable, dict[int, tuple[FareEngine | None, _Static]]] = \
    weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def route_eticket_enabled(tt: Timetable, fares: FareEngine | None) -> np.ndarray:
    """(R,) bool: which routes the fare engine can price (fares v2/v1, or an operator table covering them)."""
    ok = np.zeros(len(tt.route_ids), dtype=bool)
    if fares is None:
        return ok
    feed_ids = tt.feed_ids.tolist()
    for r, (rid, f) in enumerate(zip(tt.route_ids.tolist(), tt.route_feed.tolist())):
        pricer = fares.pricers.get(feed_ids[f])
        if pricer is None or pricer.source is None:
            continue
        if pricer.source == "operator_table" and pricer.table is not None and pricer.table.route_ids is not None:
            ok[r] = rid.split(":", 1)[1] in pricer.table.route_ids
        else:
            ok[r] = True
    return ok


def _build_static(tt: Timetable, fares: FareEngine | None) -> _Static:
    S = tt.n_stops
    station_of_stop = np.where(tt.stop_parent >= 0, tt.stop_parent, np.arange(S)).astype(np.int32)
    per_stop = np.diff(tt.stop_pattern_offsets)
    entry_stop = np.repeat(np.arange(S, dtype=np.int32), per_stop)
    entry_route = tt.pattern_route[tt.stop_patterns]
    entry_station = station_of_stop[entry_stop]
    served_station = np.zeros(S, dtype=bool)
    served_station[entry_station] = True
    stations = np.flatnonzero(served_station).astype(np.int32)
    pos_of_station = np.full(S, -1, dtype=np.int64)
    pos_of_station[stations] = np.arange(len(stations))
    route_ok = route_eticket_enabled(tt, fares)
    eticket = np.zeros(S, dtype=bool)
    np.logical_or.at(eticket, entry_station, route_ok[entry_route])
    rank = np.full(S, len(_MODE_PRIORITY), dtype=np.int8)
    np.minimum.at(rank, entry_station, _MODE_RANK[tt.route_modes[entry_route]])
    # a stop's / station's operator: that of its serving route of the top mode (lowest index on ties)
    R = len(tt.route_ids)
    entry_key = _MODE_RANK[tt.route_modes[entry_route]].astype(np.int64) * R + entry_route
    never = np.iinfo(np.int64).max
    stop_key, station_key = np.full(S, never, dtype=np.int64), np.full(S, never, dtype=np.int64)
    np.minimum.at(stop_key, entry_stop, entry_key)
    np.minimum.at(station_key, entry_station, entry_key)
    route_ops = tt.route_operator_ids
    # per route, the stations it serves (unique positions)
    order = np.argsort(entry_route, kind="stable")
    r_sorted, st_sorted = entry_route[order], pos_of_station[entry_station[order]]
    bounds = np.searchsorted(r_sorted, np.arange(len(tt.route_ids) + 1))
    route_stations = [np.unique(st_sorted[bounds[r]:bounds[r + 1]]) for r in range(len(tt.route_ids))]
    # unique trips (frequency-expanded copies repeat the id)
    real = np.flatnonzero(~tt.trip_is_combined)  # in-seat combined trips repeat their parts
    _, first = np.unique(tt.trip_ids[real], return_index=True)
    first = real[np.sort(first)]
    trip_route = tt.trip_route[first]
    trip_operator = route_ops[trip_route]
    # boarding stops that are served, wheelchair flag inherited from the parent when 0
    boarding = np.flatnonzero((per_stop > 0) & (tt.stop_location_type == 0))
    own = tt.stop_wheelchair_boarding[boarding]
    parent = tt.stop_parent[boarding]
    inherited = np.where(parent >= 0, tt.stop_wheelchair_boarding[np.maximum(parent, 0)], 0)
    wheel = np.where(own != 0, own, inherited) == 1
    return _Static(
        station_of_stop=station_of_stop, stations=stations, station_operator=route_ops[station_key[stations] % R],
        station_ids=tt.stop_ids[stations],
        station_mode=np.array([_MODE_PRIORITY[min(x, len(_MODE_PRIORITY) - 1)] for x in rank[stations]]),
        station_eticket=eticket[stations], route_ok=route_ok, route_stations=route_stations,
        trip_operator=trip_operator, trip_ok=route_ok[trip_route],
        trip_wheelchair=tt.trip_wheelchair_accessible[first] == 1,
        stop_operator=route_ops[stop_key[boarding] % R], stop_wheelchair=wheel, feed_stats={})


def _static(tt: Timetable, fares: FareEngine | None) -> _Static:
    with _LOCK:
        per_tt = _CACHE.setdefault(tt, {})
        hit = per_tt.get(id(fares))
        if hit is None or hit[0] is not fares:
            if len(per_tt) > 8:  # a timetable is priced by one engine at a time; old engines go
                per_tt.clear()
            hit = per_tt[id(fares)] = (fares, _build_static(tt, fares))
        return hit[1]


def feed_service_stats(tt: Timetable, day: dt.date) -> list[dict[str, Any]]:
    """Service statistics of each feed on one service day, from the compiled arrays.

    Per feed: ``routes`` and ``routes_by_mode``, served ``stops``, unique ``trips`` in the timetable,
    ``trips_on_day`` (frequency copies counted), ``service_hours`` and ``service_km`` (sum over the
    day's trips of first-departure-to-last-arrival time and of pattern length), ``first_departure``
    and ``last_arrival`` as GTFS ``HH:MM:SS`` (may exceed 24:00), ``mean_trip_min``; ``agencies``: per
    agency of the feed, ``agency_id``, ``name``, the ``operator_id`` owning its routes, ``routes``, ``trips_on_day``.
    """
    T = tt.n_trips
    p = tt.trip_pattern.astype(np.int64)
    col = np.arange(T, dtype=np.int64) - tt.pattern_trip_offsets[p]
    n = tt.pattern_n_trips[p].astype(np.int64)
    length = (tt.pattern_stop_offsets[p + 1] - tt.pattern_stop_offsets[p]).astype(np.int64)
    dep0 = tt.pattern_dep[tt.pattern_time_offsets[p] + col]
    arr_last = tt.pattern_arr[tt.pattern_time_offsets[p] + (length - 1) * n + col]
    dist_m = tt.pattern_stop_dist_m[tt.pattern_stop_offsets[p + 1] - 1].astype(np.float64)
    running = tt.trips_running(tt.day_index(day))
    trip_feed = np.where(tt.trip_is_combined, -1, tt.route_feed[tt.trip_route])  # combined trips: not counted
    served_stop = np.diff(tt.stop_pattern_offsets) > 0
    out = []
    for f, feed_id in enumerate(tt.feed_ids.tolist()):
        routes = np.flatnonzero(tt.route_feed == f)
        mine = trip_feed == f
        today = mine & running
        dur = (arr_last[today] - dep0[today]).astype(np.int64)
        modes = tt.route_modes[routes]
        out.append({
            "feed_id": feed_id, "operator_id": str(tt.feed_operator_ids[f]), "date": day.isoformat(),
            "routes": int(len(routes)),
            "routes_by_mode": {MODES[m]: int((modes == m).sum()) for m in np.unique(modes).tolist()},
            "stops": int((served_stop & (tt.stop_feed == f)).sum()),
            "trips": int(len(np.unique(tt.trip_ids[mine]))),
            "trips_on_day": int(today.sum()),
            "service_hours": round(float(dur.sum()) / 3600, 2),
            "service_km": round(float(dist_m[today].sum()) / 1000, 1),
            "first_departure": _hms(int(dep0[today].min())) if today.any() else None,
            "last_arrival": _hms(int(arr_last[today].max())) if today.any() else None,
            "mean_trip_min": round(float(dur.mean()) / 60, 1) if today.any() else None,
            "agencies": _agency_rows(tt, routes, tt.trip_route[today]),
        })
    return out


def _agency_rows(tt: Timetable, routes: np.ndarray, trips_route: np.ndarray) -> list[dict[str, Any]]:
    """Per agency of these routes: ``{agency_id, name, operator_id, routes, trips_on_day}``."""
    rows: dict[str, dict[str, Any]] = {}
    for r in routes.tolist():
        row = rows.setdefault(str(tt.route_agency_ids[r]), {
            **tt.route_agency(r), "operator_id": str(tt.route_operator_ids[r]), "routes": 0, "trips_on_day": 0})
        row["routes"] += 1
    for r, n in zip(*np.unique(trips_route, return_counts=True)):
        rows[str(tt.route_agency_ids[r])]["trips_on_day"] += int(n)
    return [rows[a] for a in sorted(rows)]


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _stats_cached(static: _Static, tt: Timetable, day: dt.date) -> list[dict[str, Any]]:
    key = day.isoformat()
    with _LOCK:
        hit = static.feed_stats.get(key)
    if hit is None:
        hit = feed_service_stats(tt, day)
        with _LOCK:
            if len(static.feed_stats) > 64:  # bounded: a few distinct days are ever asked for
                static.feed_stats.clear()
            static.feed_stats[key] = hit
    return hit


def _validator_stations(session: Session, tt: Timetable, static: _Static, period: Period) -> np.ndarray:
    """(S,) bool: stations with an active gate (at it or a platform) or a validation there in the period."""
    stop_ids: set[str] = set(session.exec(
        select(GateDevice.stop_id).where(GateDevice.active.is_(True), GateDevice.stop_id.is_not(None))).all())
    stop_ids |= set(session.exec(
        select(GateValidation.stop_id).where(GateValidation.scanned_at >= period.start_utc,
                                             GateValidation.scanned_at < period.end_utc).distinct()).all())
    has = np.zeros(tt.n_stops, dtype=bool)
    idx = [i for s in stop_ids if s is not None and (i := tt.find_stop(s)) is not None]
    if idx:
        has[static.station_of_stop[np.asarray(idx, dtype=np.int64)]] = True
    return has


def _grade_rows(keys: list[tuple[str, int | None]], covered: np.ndarray, eticket: np.ndarray,
                validator: np.ndarray) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int | None], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    rows = []
    for (stype, grade), idx in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or 0)):
        ix = np.asarray(idx)
        n, c = len(ix), int(covered[ix].sum())
        rows.append({"station_type": stype, "grade": grade, "stations": n, "covered": c, "share": share(c, n),
                     "with_eticket_route": int(eticket[ix].sum()), "with_validator": int(validator[ix].sum())})
    return rows


def _station_table(session: Session, tt: Timetable, fares: FareEngine | None, period: Period,
                   meta: dict[str, StationMeta]) -> tuple[_Static, np.ndarray, np.ndarray, list[str], list[int | None]]:
    """The static arrays, per station ``validator`` and ``covered`` (bool), its type and grade."""
    st = _static(tt, fares)
    validator = _validator_stations(session, tt, st, period)[st.stations]
    covered = st.station_eticket & validator
    types: list[str] = []
    grades: list[int | None] = []
    for sid, mode in zip(st.station_ids.tolist(), st.station_mode.tolist()):
        m: StationMeta | None = meta.get(sid)
        types.append(m.station_type if m else TYPE_BY_MODE[mode].value)
        grades.append(m.grade if m else None)
    return st, validator, covered, types, grades


def station_rows(session: Session, *, timetable: Timetable | None, fares: FareEngine | None, period: Period,
                 operator_id: str | None = None) -> list[dict[str, Any]]:
    """One row per station counted by the coverage report (the same definitions, the same period), sorted by id:
    ``station_id``, ``name``, ``lat``/``lon`` (WGS84), ``operator_id``, ``mode`` (top mode serving it),
    ``station_type``, ``grade``, ``eticket_route``, ``validator`` and ``covered`` (both). Summing ``covered``
    per type and grade gives the report's ``by_grade`` rows."""
    if timetable is None:
        return []
    tt = timetable
    st, validator, covered, types, grades = _station_table(session, tt, fares, period, list_station_meta(session))
    rows = []
    for i, s in enumerate(st.stations.tolist()):
        op = str(st.station_operator[i])
        if operator_id is not None and op != operator_id:
            continue
        rows.append({"station_id": str(st.station_ids[i]), "name": str(tt.stop_names[s]),
                     "lat": round(float(tt.stop_lat[s]), 6), "lon": round(float(tt.stop_lon[s]), 6),
                     "operator_id": op, "mode": str(st.station_mode[i]), "station_type": types[i], "grade": grades[i],
                     "eticket_route": bool(st.station_eticket[i]), "validator": bool(validator[i]),
                     "covered": bool(covered[i])})
    rows.sort(key=lambda r: r["station_id"])
    return rows


STATION_CSV_HEADER = ("station_id", "name", "lat", "lon", "operator_id", "mode", "station_type", "grade",
                      "eticket_route", "validator", "covered")


def compute_coverage(session: Session, *, timetable: Timetable | None, fares: FareEngine | None, period: Period,
                     operator_id: str | None = None, stats_date: dt.date | None = None) -> dict[str, Any]:
    """The coverage report (see the module docstring); empty lists when no timetable is loaded."""
    meta = list_station_meta(session)
    report: dict[str, Any] = {**period.to_dict(), "operator_id": operator_id, "operators": [], "by_grade": [],
                              "targets": [], "feed_stats": []}
    if timetable is None:
        report["targets"] = _targets(0, 0, 0, 0)
        return report
    tt = timetable
    st, validator, covered, types, grades = _station_table(session, tt, fares, period, meta)
    keys = list(zip(types, grades))
    sel = np.ones(len(st.stations), dtype=bool) if operator_id is None else st.station_operator == operator_id
    ops = sorted(set(st.station_operator.tolist()) | set(st.trip_operator.tolist()))
    if operator_id is not None:
        ops = [o for o in ops if o == operator_id]
    for op in ops:
        s_ix = np.flatnonzero(st.station_operator == op)
        t_ix = st.trip_operator == op
        b_ix = st.stop_operator == op
        n_st, n_cov = len(s_ix), int(covered[s_ix].sum())
        n_trips, n_ok, n_tw = int(t_ix.sum()), int(st.trip_ok[t_ix].sum()), int(st.trip_wheelchair[t_ix].sum())
        n_stops, n_sw = int(b_ix.sum()), int(st.stop_wheelchair[b_ix].sum())
        report["operators"].append({
            "operator_id": op, "stations": n_st, "covered": n_cov, "share": share(n_cov, n_st),
            "trips": n_trips, "trips_ticketable": n_ok, "trips_ticketable_share": share(n_ok, n_trips),
            "stops": n_stops, "stops_wheelchair": n_sw, "stops_wheelchair_share": share(n_sw, n_stops),
            "trips_wheelchair": n_tw, "trips_wheelchair_share": share(n_tw, n_trips),
            "by_grade": _grade_rows([keys[i] for i in s_ix], covered[s_ix], st.station_eticket[s_ix],
                                    validator[s_ix]),
            "agencies": tt.operator_agencies(op),
        })
    s_all = np.flatnonzero(sel)
    report["by_grade"] = _grade_rows([keys[i] for i in s_all], covered[s_all], st.station_eticket[s_all],
                                     validator[s_all])
    coach = np.array([sel[i] and types[i] == "coach_station" and grades[i] is not None and grades[i] <= 2
                      for i in range(len(keys))], dtype=bool)
    coach_routes = np.flatnonzero(tt.route_modes == MODES.index("COACH"))
    route_ops = tt.route_operator_ids
    if operator_id is not None:
        coach_routes = coach_routes[route_ops[coach_routes] == operator_id]
    lines_ok = sum(1 for r in coach_routes.tolist()
                   if st.route_ok[r] and len(st.route_stations[r]) and bool(covered[st.route_stations[r]].all()))
    report["targets"] = _targets(int(covered[coach].sum()), int(coach.sum()), lines_ok, len(coach_routes))
    day = stats_date or min(period.end - dt.timedelta(days=1), dt.date.today())
    stats = _stats_cached(st, tt, day)
    report["feed_stats"] = [s for s in stats if operator_id is None or s["operator_id"] == operator_id
                            or any(a["operator_id"] == operator_id for a in s["agencies"])]
    return report


def _targets(coach_cov: int, coach_n: int, lines_ok: int, lines_n: int) -> list[dict[str, Any]]:
    out = []
    for target_id, desc, threshold, num, den in (
        ("coach_stations_grade2plus", "e-ticket coverage of grade-2-and-above coach stations",
         TARGET_COACH_STATIONS, coach_cov, coach_n),
        ("intercity_lines", "e-ticketed inter-city (coach) lines", TARGET_INTERCITY_LINES, lines_ok, lines_n),
    ):
        actual = share(num, den)
        out.append({"target_id": target_id, "description": desc, "threshold": threshold, "numerator": num,
                    "denominator": den, "actual": actual, "met": None if actual is None else actual >= threshold})
    return out


CSV_HEADER = ("section", "operator_id", "station_type", "grade", "stations", "covered", "share",
              "with_eticket_route", "with_validator")


def coverage_csv_rows(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Flat rows for ``?format=csv``: per operator and grade, all operators by grade, then the targets."""
    rows: list[tuple[Any, ...]] = []
    for op in report["operators"]:
        for g in op["by_grade"]:
            rows.append(("operator_grade", op["operator_id"], g["station_type"], g["grade"], g["stations"],
                         g["covered"], g["share"], g["with_eticket_route"], g["with_validator"]))
    for g in report["by_grade"]:
        rows.append(("grade", "", g["station_type"], g["grade"], g["stations"], g["covered"], g["share"],
                     g["with_eticket_route"], g["with_validator"]))
    for t in report["targets"]:
        rows.append((f"target:{t['target_id']}", "", "", "", t["denominator"], t["numerator"], t["actual"],
                     t["threshold"], "met" if t["met"] else ("not_met" if t["met"] is False else "n/a")))
    return rows


__all__ = ["CSV_HEADER", "STATION_CSV_HEADER", "compute_coverage", "coverage_csv_rows", "feed_service_stats",
           "route_eticket_enabled", "station_rows"]
