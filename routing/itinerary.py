"""Itinerary assembly: raw journeys (indices, query-axis seconds) -> API.md itinerary dicts.

Shape (API.md "Itinerary")::

    {"id", "departure", "arrival", "duration_s", "transfers", "walk_m", "fare": None,
     "label", "legs": [{"mode", "operator_id", "feed_id", "route_id", "route_name",
     "trip_id", "service_date", "from": {"stop_id", "name", "lat", "lon"}, "to": {...},
     "departure", "arrival", "distance_m", "intermediate_stops": [...],
     "geometry": {"type": "LineString", "coordinates": [[lon, lat], ...]}}]}

Times are ISO 8601 with the UTC offset of the leg's feed time zone (walking
legs use the neighbouring transit leg's feed). Walking legs have ``mode
"WALK"``, ``duration_s`` and no route/trip (those keys are ``None``).

In-seat transfers (transfers.txt type 4): a ride on a combined trip (see
``Timetable.trip_link_offsets``) is one leg per linked trip it covers, each with
its own trip, route and shape; every leg after the first has ``"in_seat": true``
(the rider stays aboard: no walk between them, not counted in ``transfers`` nor
as a boarding in the generalized cost). The combined trip's own id is never shown.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from routing.kernels import SKIP
from routing.search import Journey, PlanRequest, SearchResult, _derived, _Endpoint, _Prepared, haversine_m
from routing.timetable import MODES, Timetable


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _iso(epoch: int, tz: str) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone(_zone(tz)).isoformat()


def _stop_ref(tt: Timetable, s: int) -> dict:
    return {"stop_id": str(tt.stop_ids[s]), "name": str(tt.stop_names[s]),
            "lat": float(tt.stop_lat[s]), "lon": float(tt.stop_lon[s])}


def _place_ref(tt: Timetable, ep: _Endpoint) -> dict:
    if ep.stop is not None:
        return _stop_ref(tt, ep.stop)
    return {"stop_id": None, "name": ep.text, "lat": ep.lat, "lon": ep.lon}


def _line_length_m(coords: list[list[float]]) -> float:
    if len(coords) < 2:
        return 0.0
    a = np.asarray(coords, dtype=np.float64)
    return float(haversine_m(a[:-1, 1], a[:-1, 0], a[1:, 1], a[1:, 0]).sum())


def _shape_cut(tt: Timetable, shape: int, stop_coords: np.ndarray) -> list[list[float]] | None:
    """Part of shape ``shape`` from the vertex nearest the first stop to the one nearest the last.

    ``stop_coords``: (n, 2) lat/lon of the stops ridden (board .. alight), used
    to keep the cut moving forward along the shape (loops).
    """
    a, b = int(tt.shape_offsets[shape]), int(tt.shape_offsets[shape + 1])
    if b - a < 2:
        return None
    lat = np.asarray(tt.shape_lat[a:b])
    lon = np.asarray(tt.shape_lon[a:b])
    # equirectangular squared distances are enough to find the nearest vertex
    kx = np.cos(np.radians(float(stop_coords[0][0])))

    def nearest(la: float, lo: float, i0: int) -> int:
        d = (lat[i0:] - la) ** 2 + ((lon[i0:] - lo) * kx) ** 2
        return i0 + int(np.argmin(d))

    start = nearest(float(stop_coords[0][0]), float(stop_coords[0][1]), 0)
    if len(stop_coords) > 2:  # a middle stop keeps loops in order
        mid = len(stop_coords) // 2
        start_mid = nearest(float(stop_coords[mid][0]), float(stop_coords[mid][1]), start)
    else:
        start_mid = start
    end = nearest(float(stop_coords[-1][0]), float(stop_coords[-1][1]), start_mid)
    if end <= start:
        return None
    coords = [[float(lon[i]), float(lat[i])] for i in range(start, end + 1)]
    # begin and end exactly at the stops
    coords[0] = [float(stop_coords[0][1]), float(stop_coords[0][0])]
    coords[-1] = [float(stop_coords[-1][1]), float(stop_coords[-1][0])]
    return coords


def _walk_leg(tt: Timetable, frm: dict, to: dict, dep: int, dur: int, metres: float, tz: str) -> dict:
    coords = [[frm["lon"], frm["lat"]], [to["lon"], to["lat"]]]
    return {
        "mode": "WALK", "operator_id": None, "feed_id": None, "route_id": None, "route_name": None,
        "trip_id": None, "service_date": None, "from": frm, "to": to,
        "departure": _iso(dep, tz), "arrival": _iso(dep + dur, tz),
        "duration_s": int(dur), "distance_m": int(round(metres)), "intermediate_stops": [],
        "geometry": {"type": "LineString", "coordinates": coords},
        "_dep": dep, "_arr": dep + dur,
    }


def _footpath(tt: Timetable, prep: _Prepared, u: int, v: int) -> tuple[int, float]:
    best = None
    d = _derived(tt)  # the search's footpaths (prep's arrays follow them; see routing.transfer_graph)
    fo, fto = d.fwd.footpath_offsets, d.fwd.footpath_to
    for e in range(int(fo[u]), int(fo[u + 1])):
        if int(fto[e]) == v and prep.footpath_walk_s[e] >= 0:
            w = int(prep.footpath_walk_s[e])
            if best is None or w < best[0]:
                best = (w, float(d.footpath_m[e]))
    if best is None:  # cannot happen for a journey the kernel produced
        m = float(haversine_m(tt.stop_lat[u], tt.stop_lon[u], tt.stop_lat[v], tt.stop_lon[v]))
        return 0, m
    return best


def _ride_legs(tt: Timetable, prep: _Prepared, ride: tuple[int, int, int, int, int]) -> list[dict]:
    """The legs of one ride: one, or for a combined (in-seat) trip one per part it covers, each a leg of
    the real trip (its id, route, shape) with the combined trip's times; every part after the first is
    ``"in_seat": true`` (the rider stays aboard: no transfer)."""
    p, c, _slot, b, a = ride
    parts = tt.trip_parts(int(tt.pattern_trip_offsets[p]) + c)
    if not parts:
        return [_ride_leg(tt, prep, ride)]
    legs: list[dict] = []
    for k, (q, fp) in enumerate(parts):
        qp = int(tt.trip_pattern[q])
        end = fp + int(tt.pattern_stop_offsets[qp + 1]) - int(tt.pattern_stop_offsets[qp]) - 1
        lo, hi = max(b, fp), min(a, end)
        if hi <= lo:  # not ridden (or only its shared first / last stop)
            continue
        leg = _ride_leg(tt, prep, (p, c, _slot, lo, hi), shown=(q, fp))
        if legs:
            leg["in_seat"] = True
        legs.append(leg)
    return legs


def _ride_leg(tt: Timetable, prep: _Prepared, ride: tuple[int, int, int, int, int],
              shown: tuple[int, int] | None = None) -> dict:
    """One ride leg. ``shown``: ``(trip, first position)`` of the part of a combined trip the leg is on
    (its id, route and shape are shown; times, stops and real-time fields are the ridden trip's)."""
    p, c, slot, b, a = ride
    n = int(tt.pattern_n_trips[p])
    tb = int(tt.pattern_time_offsets[p])
    so = int(tt.pattern_stop_offsets[p])
    shift = int(prep.pattern_shift[p, slot])
    trip = int(tt.pattern_trip_offsets[p]) + c
    show, sb, sa = trip, so + b, so + a
    if shown is not None:
        show = shown[0]
        sso = int(tt.pattern_stop_offsets[int(tt.trip_pattern[show])]) - shown[1]
        sb, sa = sso + b, sso + a
    route = int(tt.trip_route[show])
    feed = int(tt.route_feed[route])
    tz = str(tt.feed_timezones[feed])
    ref = prep.ref_epoch
    # (the kernels' boarding times are one headway early for headway-based trips: display the nominal ones)
    P_arr, P_dep, P_dep_k = prep.extra["arr"], tt.pattern_dep, prep.extra["dep"]
    dep = int(P_dep[tb + b * n + c]) + shift
    board_by = int(P_dep_k[tb + b * n + c]) + shift  # when the plan has the passenger at the stop
    arr = int(P_arr[tb + a * n + c]) + shift
    stops = [int(s) for s in tt.pattern_stops[so + b: so + a + 1]]
    rtm = tt.meta.get("realtime")
    skipped = rtm["skipped"] if rtm is not None else ()
    inter = []
    for pos in range(b + 1, a):
        s = int(tt.pattern_stops[so + pos])
        ref_s = _stop_ref(tt, s)
        if (so + pos) in skipped or int(P_arr[tb + pos * n + c]) >= int(SKIP):
            continue  # skipped by this trip (real time)
        ref_s["arrival"] = _iso(ref + int(P_arr[tb + pos * n + c]) + shift, tz)
        ref_s["departure"] = _iso(ref + int(P_dep[tb + pos * n + c]) + shift, tz)
        inter.append(ref_s)
    service_day = tt.first_day + timedelta(days=int(prep.day_index[feed]) + slot - 1)
    short = str(tt.route_short_names[route])
    return {
        "mode": MODES[int(tt.route_modes[route])],
        "operator_id": str(tt.route_operator_ids[route]),
        "agency": tt.route_agency(route),
        "feed_id": str(tt.feed_ids[feed]),
        "route_id": str(tt.route_ids[route]),
        "route_name": short or str(tt.route_long_names[route]),
        "trip_id": str(tt.trip_ids[show]),
        "service_date": service_day.isoformat(),
        "from": _stop_ref(tt, stops[0]), "to": _stop_ref(tt, stops[-1]),
        "departure": _iso(ref + dep, tz), "arrival": _iso(ref + arr, tz),
        **_realtime_fields(tt, trip, p, b, a, dep - shift, arr - shift),
        "distance_m": 0,
        "intermediate_stops": inter,
        "geometry": None,
        **_frequency_fields(tt, trip, ref, dep, board_by, tz),
        "_dep": board_by, "_arr": arr, "_tz": tz, "_shape": (show, sb, sa, stops),
    }


def _round_minute(epoch: int) -> int:
    return (epoch + 30) // 60 * 60


def _frequency_fields(tt: Timetable, trip: int, ref: int, dep: int, board_by: int, tz: str) -> dict:
    """A headway-based trip (frequencies.txt ``exact_times=0``) has no timetable to the second: the leg
    says so (``times_approximate``) and gives ``frequency``: ``headway_s``, ``expected_wait_s``
    (half a headway), ``board_by`` (be at the stop then: the plan is conservative, see
    routing.search._conservative_boarding), ``expected_departure`` (to the minute) and
    ``latest_departure`` (= ``departure``, what the rest of the plan is built on)."""
    if int(tt.trip_frequency[trip]) != 2 or board_by >= dep:
        return {}
    h = dep - board_by
    return {"times_approximate": True,
            "frequency": {"headway_s": int(h), "expected_wait_s": int(h // 2), "exact_times": False,
                          "text": f"every {h // 60} min" if h % 60 == 0 else f"every {h / 60:.1f} min",
                          "board_by": _iso(ref + board_by, tz),
                          "expected_departure": _iso(_round_minute(ref + board_by + h // 2), tz),
                          "latest_departure": _iso(ref + dep, tz)}}


def _realtime_fields(tt: Timetable, trip: int, p: int, b: int, a: int, dep: int, arr: int) -> dict:
    """``realtime`` (the times are a real-time prediction), ``delay_s`` / ``arrival_delay_s`` (against the
    schedule at the boarding / alighting stop; None for a trip the schedule does not have) and
    ``realtime_timestamp`` (the snapshot's time) of a ride."""
    rtm = tt.meta.get("realtime")
    if rtm is None or not bool(rtm["rt_trip"][trip]):
        return {"realtime": False, "delay_s": None}
    feed = str(tt.feed_ids[int(tt.route_feed[int(tt.trip_route[trip])])])
    stamp = rtm["feeds"].get(feed)
    out = {"realtime": True, "delay_s": None, "arrival_delay_s": None,
           "realtime_timestamp": datetime.fromtimestamp(stamp, timezone.utc).isoformat() if stamp else None}
    base = int(rtm["base_trip"][trip])
    if base >= 0:
        bp = int(tt.trip_pattern[base])
        bn = int(tt.pattern_n_trips[bp])
        bc = base - int(tt.pattern_trip_offsets[bp])
        bt = int(tt.pattern_time_offsets[bp])
        out["delay_s"] = dep - int(tt.pattern_dep[bt + b * bn + bc])
        out["arrival_delay_s"] = arr - int(tt.pattern_arr[bt + a * bn + bc])
    return out


def _finish_ride_leg(tt: Timetable, leg: dict) -> None:
    """Geometry (shape cut between the stops, else straight lines) and distance of a ride leg."""
    trip, ib, ia, stops = leg.pop("_shape")
    stop_coords = np.column_stack([tt.stop_lat[stops], tt.stop_lon[stops]])
    coords = None
    shape = int(tt.trip_shape[trip])
    if shape >= 0:
        coords = _shape_cut(tt, shape, stop_coords)
    if coords is None:
        coords = [[float(lo), float(la)] for la, lo in stop_coords]
    dist = float(tt.pattern_stop_dist_m[ia]) - float(tt.pattern_stop_dist_m[ib])
    if not dist > 0:
        dist = _line_length_m(coords)
    leg["distance_m"] = int(round(dist))
    leg["geometry"] = {"type": "LineString", "coordinates": coords}


def journey_legs(tt: Timetable, res: SearchResult, j: Journey) -> list[dict]:
    """Legs of one journey (with private ``_dep/_arr`` query-axis seconds)."""
    prep = res.prep
    ref = prep.ref_epoch
    o, dst = res.origin, res.destination
    if j.walk_only is not None:
        tz = str(tt.feed_timezones[0])
        w, m = j.walk_only
        leg = _walk_leg(tt, _place_ref(tt, o), _place_ref(tt, dst), ref + j.depart_t, w, m, tz)
        leg["_dep"], leg["_arr"] = j.depart_t, j.depart_t + w
        return [leg]
    ride_legs = [_ride_legs(tt, prep, r) for r in j.rides]
    rides = [r[0] for r in ride_legs]  # first leg of each ride (walks join rides)
    legs: list[dict] = []
    acc_stop, acc_w, acc_m = j.access
    if acc_stop not in o.platforms:
        first = rides[0]
        leg = _walk_leg(tt, _place_ref(tt, o), first["from"], ref + first["_dep"] - acc_w, acc_w, acc_m, first["_tz"])
        leg["_dep"], leg["_arr"] = first["_dep"] - acc_w, first["_dep"]
        legs.append(leg)
    for i, ride in enumerate(rides):
        if i > 0:
            u, v = j.transfers[i - 1]
            if u != v:
                w, m = _footpath(tt, prep, u, v)
                prev = rides[i - 1]
                leg = _walk_leg(tt, prev["to"], ride["from"], ref + prev["_arr"], w, m, prev["_tz"])
                leg["_dep"], leg["_arr"] = prev["_arr"], prev["_arr"] + w
                legs.append(leg)
        legs.extend(ride_legs[i])
        rides[i] = ride_legs[i][-1]  # the next walk leaves from the ride's last leg
    eg_stop, eg_w, eg_m = j.egress
    if eg_stop not in dst.platforms:
        last = rides[-1]
        leg = _walk_leg(tt, last["to"], _place_ref(tt, dst), ref + last["_arr"], eg_w, eg_m, last["_tz"])
        leg["_dep"], leg["_arr"] = last["_arr"], last["_arr"] + eg_w
        legs.append(leg)
    return legs


def _itinerary(tt: Timetable, res: SearchResult, j: Journey) -> dict:
    legs = journey_legs(tt, res, j)
    ref = res.prep.ref_epoch
    dep, arr = legs[0]["_dep"], legs[-1]["_arr"]
    tz_dep = legs[0].get("_tz") or next((lg["_tz"] for lg in legs if "_tz" in lg), str(tt.feed_timezones[0]))
    tz_arr = legs[-1].get("_tz") or next((lg["_tz"] for lg in reversed(legs) if "_tz" in lg), tz_dep)
    rides = sum(1 for lg in legs if lg["mode"] != "WALK" and not lg.get("in_seat"))  # boardings
    walk_m = sum(lg["distance_m"] for lg in legs if lg["mode"] == "WALK")
    walk_s = sum(lg["_arr"] - lg["_dep"] for lg in legs if lg["mode"] == "WALK")
    ride_s = sum(lg["_arr"] - lg["_dep"] for lg in legs if lg["mode"] != "WALK")
    key = json.dumps([[lg["mode"], lg["trip_id"], lg["from"]["stop_id"], lg["to"]["stop_id"],
                       lg["departure"], lg["arrival"]] for lg in legs])
    for lg in legs:
        for k in ("_dep", "_arr", "_tz"):
            lg.pop(k, None)
    return {
        "id": hashlib.sha256(key.encode()).hexdigest()[:20],
        "departure": _iso(ref + dep, tz_dep),
        "arrival": _iso(ref + arr, tz_arr),
        "duration_s": int(arr - dep),
        "transfers": max(0, rides - 1),
        "walk_m": int(walk_m),
        "fare": None,
        "legs": legs,
        "_dep": dep, "_arr": arr, "_walk_s": int(walk_s), "_ride_s": int(ride_s),
        "_wait_s": int(max(0, (arr - dep) - walk_s - ride_s)),
    }


def generalized_cost(it: dict, req: PlanRequest) -> float:
    """Seconds riding and waiting, walking times ``walk_reluctance``, ``board_cost_s`` per boarding
    (OTP2's defaults: walk reluctance 2, board cost 600 s, wait reluctance 1)."""
    rides = sum(1 for lg in it["legs"] if lg["mode"] != "WALK" and not lg.get("in_seat"))
    return float(it["_ride_s"] + it["_wait_s"] + req.walk_reluctance * it["_walk_s"] + req.board_cost_s * rides)


def filter_itineraries(its: list[dict], req: PlanRequest, keep: dict) -> tuple[list[dict], dict[str, int]]:
    """The itinerary filter chain (docs/planning.md), applied in order; ``keep`` is never removed.

    1. ``duration``: duration > ``max_duration_slack_s + max_duration_factor * best duration``;
    2. ``generalized_cost``: cost > ``cost_limit_slack_s + cost_limit_factor * cost(b)
       + cost_interval_relax * |departure(a) - departure(b)|`` for some other b (arrive-by: arrivals);
    3. ``dominated``: some kept b leaves no earlier (depart-at), arrives no later, has no more transfers,
       walks at most ``dominance_walk_slack_m`` more and is better in one of these (b taken cheapest first).

    Returns the kept itineraries and how many each rule removed.
    """
    removed = {"duration": 0, "generalized_cost": 0, "dominated": 0}
    if req.itinerary_filter == "none" or len(its) < 2:
        return its, removed
    by = req.arrive_by is not None
    best_d = min(x["_arr"] - x["_dep"] for x in its)
    limit = req.max_duration_slack_s + req.max_duration_factor * best_d
    out = [x for x in its if x is keep or x["_arr"] - x["_dep"] <= limit]
    removed["duration"] = len(its) - len(out)
    cost = {id(x): generalized_cost(x, req) for x in out}

    def over(a: dict, b: dict) -> bool:
        gap = abs(a["_arr"] - b["_arr"]) if by else abs(a["_dep"] - b["_dep"])
        return cost[id(a)] > req.cost_limit_slack_s + req.cost_limit_factor * cost[id(b)] + \
            req.cost_interval_relax * gap

    nxt = [a for a in out if a is keep or not any(over(a, b) for b in out if b is not a)]
    removed["generalized_cost"] = len(out) - len(nxt)
    kept: list[dict] = [keep] if keep in nxt else []
    for a in sorted(nxt, key=lambda x: (cost[id(x)], x["_arr"], -x["_dep"])):
        if a is keep:
            continue

        def dominates(b: dict) -> bool:
            if not ((by or b["_dep"] >= a["_dep"]) and b["_arr"] <= a["_arr"] and b["transfers"] <= a["transfers"]
                    and b["walk_m"] <= a["walk_m"] + req.dominance_walk_slack_m):
                return False
            return (b["_arr"] < a["_arr"] or (not by and b["_dep"] > a["_dep"]) or b["transfers"] < a["transfers"]
                    or b["walk_m"] < a["walk_m"])

        if any(dominates(b) for b in kept):
            removed["dominated"] += 1
        else:
            kept.append(a)
    return kept, removed


def build_itineraries(tt: Timetable, res: SearchResult, req: PlanRequest, realtime=None,
                      stats: dict | None = None) -> list[dict]:
    """Deduplicated, filtered (:func:`filter_itineraries`; ``stats`` gets the counts), labelled
    itineraries, at most ``req.max_itineraries``.

    Order: by departure (then arrival). Labels: ``fastest`` (earliest arrival;
    for arrive-by searches the latest departure), ``fewest_transfers``,
    ``least_walking``, else ``alternative``.
    """
    seen: dict[str, dict] = {}
    for j in res.journeys:
        it = _itinerary(tt, res, j)
        seen.setdefault(it["id"], it)
    its = list(seen.values())
    if not its:
        return []
    # drop dominated itineraries: leaving later (or the same), arriving earlier (or the same; for an
    # arrive-by search any arrival in time is as good), with no more transfers and walking
    by = req.arrive_by is not None

    def dominated(a: dict, b: dict) -> bool:
        ka = (a["_dep"], a["_arr"], a["transfers"], a["walk_m"])
        kb = (b["_dep"], b["_arr"], b["transfers"], b["walk_m"])
        return (kb[0] >= ka[0] and (by or kb[1] <= ka[1]) and kb[2] <= ka[2] and kb[3] <= ka[3]
                and (kb[0], kb[2], kb[3]) + (() if by else (kb[1],)) != (ka[0], ka[2], ka[3]) + (() if by else (ka[1],)))
    its = [a for a in its if not any(dominated(a, b) for b in its if b is not a)]
    if req.arrive_by is not None:
        fastest = max(its, key=lambda x: (x["_dep"], -x["transfers"], -x["_arr"]))
    else:
        fastest = min(its, key=lambda x: (x["_arr"], x["transfers"], -x["_dep"]))
    its, removed = filter_itineraries(its, req, fastest)
    if stats is not None:
        stats.update(removed)
    fewest = min(its, key=lambda x: (x["transfers"], x["_arr"] - x["_dep"], x["_arr"]))
    least_walk = min(its, key=lambda x: (x["walk_m"], x["_arr"]))
    chosen: list[dict] = []
    for it, label in ((fastest, "fastest"), (fewest, "fewest_transfers"), (least_walk, "least_walking")):
        if "label" not in it:
            it["label"] = label
            chosen.append(it)
    rest = sorted((x for x in its if "label" not in x), key=lambda x: (x["_arr"], x["_dep"]))
    for it in rest:
        if len(chosen) >= req.max_itineraries:
            break
        it["label"] = "alternative"
        chosen.append(it)
    chosen = chosen[: req.max_itineraries]
    chosen.sort(key=lambda x: (x["_dep"], x["_arr"]))
    for it in chosen:
        for k in ("_dep", "_arr", "_walk_s", "_ride_s", "_wait_s"):
            it.pop(k)
        for leg in it["legs"]:
            if "_shape" in leg:
                _finish_ride_leg(tt, leg)
    return chosen
