"""Why a plan found nothing (issue 13 item 8): a ``reason`` with a machine-readable ``code``.

Checked in this order (the first that explains the empty answer wins):

* ``outside_feed_validity``: the query's date is outside every feed's service dates;
* ``no_stop_within_walking``: a coordinate origin / destination has no served stop within ``max_walk_m``
  (and is not within walking distance of the other end);
* ``no_service_for_modes``, ``operators_excluded``, ``no_accessible_journey``, ``over_max_fare``,
  ``too_many_transfers``: lifting that one restriction of the request would give journeys;
* ``no_service_in_window``: nothing runs between the places in the search horizon (the service day
  of the query and the next; with ``window_s``, departures in the window).

Every reason has ``code``, ``message`` and, where they matter, the feeds' validity
(``feeds: [{"feed_id", "start_date", "end_date"}]``).
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

from routing.errors import RoutingError
from routing.timetable import MODES, Timetable

if TYPE_CHECKING:
    from routing.fares import FareTables
    from routing.search import PlanRequest, SearchResult


def feed_validity(tt: Timetable) -> list[dict]:
    """Per feed: the first and last date any of its trips runs (``None`` for a feed without service)."""
    from routing.search import _derived

    d = _derived(tt)
    hit = d.cache.get("feed_validity")
    if hit is not None:
        return hit
    trip_feed = np.asarray(tt.route_feed)[np.asarray(tt.trip_route)]
    out = []
    for f, fid in enumerate(tt.feed_ids.tolist()):
        services = np.unique(np.asarray(tt.trip_service)[trip_feed == f])
        days = np.flatnonzero(np.asarray(tt.service_days)[services].any(axis=0)) if len(services) else []
        if len(days):
            start = (tt.first_day + timedelta(days=int(days[0]))).isoformat()
            end = (tt.first_day + timedelta(days=int(days[-1]))).isoformat()
        else:
            start = end = None
        out.append({"feed_id": str(fid), "start_date": start, "end_date": end})
    d.cache["feed_validity"] = out
    return out


def _modes_present(tt: Timetable) -> list[str]:
    return sorted({MODES[int(m)] for m in np.unique(np.asarray(tt.route_modes))})


def why_empty(tt: Timetable, req: PlanRequest, res: SearchResult, fares: FareTables | None = None) -> dict:
    """The reason of an empty answer to ``req`` (whose search gave ``res``)."""
    from routing.search import plan_answer

    feeds = feed_validity(tt)
    when = req.depart_at or req.arrive_by
    outside = True
    for f, v in enumerate(feeds):
        if v["start_date"] is None:
            continue
        day = when.astimezone(ZoneInfo(str(tt.feed_timezones[f]))).date()
        # a trip of the last day may run past midnight, and an arrive-by query looks at the day before
        if date.fromisoformat(v["start_date"]) <= day + timedelta(days=1) and \
                day - timedelta(days=1) <= date.fromisoformat(v["end_date"]):
            outside = False
    if outside:
        return {"code": "outside_feed_validity",
                "message": f"{when.date().isoformat()} is outside the service dates of every feed",
                "date": when.date().isoformat(), "feeds": feeds}
    for end, ep in (("origin", res.origin), ("destination", res.destination)):
        if ep.stop is None and not ep.near:
            return {"code": "no_stop_within_walking",
                    "message": f"no stop within {req.max_walk_m:g} m of the {end} ({ep.text}); raise max_walk_m "
                               "or choose a place nearer to a stop",
                    "end": end, "max_walk_m": req.max_walk_m, "nearest_stop": _nearest(tt, ep.lat, ep.lon)}
    # lift one restriction at a time: the first that gives journeys is the reason
    lifts = []
    if req.modes is not None:
        lifts.append(({"modes": None}, "no_service_for_modes",
                      f"no journey with modes {', '.join(sorted(req.modes))}; the feeds have "
                      f"{', '.join(_modes_present(tt))}", {"modes": sorted(req.modes),
                                                           "available_modes": _modes_present(tt)}))
    if req.excluded_operators:
        lifts.append(({"excluded_operators": frozenset()}, "operators_excluded",
                      "only the excluded operators serve this journey",
                      {"excluded_operators": sorted(req.excluded_operators)}))
    if req.wheelchair:
        lifts.append(({"wheelchair": False}, "no_accessible_journey",
                      "journeys exist, but none is wheelchair accessible", {}))
    if req.max_fare is not None:
        lifts.append(({"max_fare": None}, "over_max_fare",
                      f"every journey costs more than max_fare {req.max_fare}", {"max_fare": req.max_fare}))
    if req.max_transfers < 10:
        lifts.append(({"max_transfers": 10}, "too_many_transfers",
                      f"every journey needs more than {req.max_transfers} transfer(s)",
                      {"max_transfers": req.max_transfers}))
    for change, code, message, details in lifts:
        other = dataclasses.replace(req, **change)
        try:
            found = plan_answer(tt, other, None, fares, explain=False).itineraries
        except RoutingError:  # e.g. a fare search over the limits: that restriction explains nothing
            continue
        if found:
            return {"code": code, "message": message, **details}
    horizon = "the departure window" if req.window_s else "the service day of the query and the next"
    return {"code": "no_service_in_window",
            "message": f"no journey between these places in {horizon} (or they are not connected at all); "
                       "try another time",
            "window_s": req.window_s, "feeds": feeds}


def _nearest(tt: Timetable, lat: float, lon: float) -> dict | None:
    from routing.search import _derived, haversine_m

    d = _derived(tt)
    cand = d.served_idx
    if len(cand) == 0:
        return None
    dist = haversine_m(lat, lon, d.stop_lat[cand], d.stop_lon[cand])
    i = int(np.argmin(dist))
    s = int(cand[i])
    return {"stop_id": str(tt.stop_ids[s]), "name": str(tt.stop_names[s]), "distance_m": int(round(float(dist[i])))}
