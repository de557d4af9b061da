"""Stop search by name (autocomplete for the passenger front end): ``GET /v1/stops?q=``.

Read from the serving timetable snapshot (no database query). A parent station stands for its
platforms (the planner accepts either), so a station's platforms are not listed separately.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from maas.errors import error_responses
from maas.feeds import NoFeeds
from maas.ratelimit import RateLimited, rate_limit

router = APIRouter(tags=["planning"], dependencies=[rate_limit("plan", by_address=True)])


class StopOut(BaseModel):
    stop_id: str
    name: str
    lat: float
    lon: float
    station: bool


class StopsOut(BaseModel):
    stops: list[StopOut]


def search_stops(tt: Any, q: str, limit: int) -> list[dict[str, Any]]:
    """Stops and stations whose name or id contains ``q`` (case-insensitive), names starting with it first."""
    needle = q.strip().casefold()
    if not needle:
        return []
    names = np.char.lower(np.asarray(tt.stop_names, dtype=str))
    ids = np.char.lower(np.asarray(tt.stop_ids, dtype=str))
    hit = (np.char.find(names, needle) >= 0) | (np.char.find(ids, needle) >= 0)
    loc = np.asarray(tt.stop_location_type)
    parent = np.asarray(tt.stop_parent)
    # stops (0) without a parent station, and stations (1); platforms are reached through their station
    hit &= ((loc == 0) & (parent < 0)) | (loc == 1) | (ids == needle)  # ... unless named by its own id
    idx = np.flatnonzero(hit)
    starts = np.char.startswith(names[idx], needle)
    exact = ids[idx] == needle  # a stop named by its id comes first
    order = sorted(range(len(idx)), key=lambda i: (not exact[i], not starts[i], len(names[idx[i]]),
                                                   str(tt.stop_names[idx[i]])))
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, int, int]] = set()
    for i in order:
        s = int(idx[i])
        name = str(tt.stop_names[s])
        lat, lon = float(tt.stop_lat[s]), float(tt.stop_lon[s])
        key = (name, round(lat * 1e4), round(lon * 1e4))  # the same stop in two feeds' data: list it once
        if key in seen:
            continue
        seen.add(key)
        out.append({"stop_id": str(tt.stop_ids[s]), "name": name, "lat": lat, "lon": lon,
                    "station": bool(loc[s] == 1)})
        if len(out) >= limit:
            break
    return out


@router.get("/v1/stops", response_model=StopsOut, responses=error_responses(NoFeeds, RateLimited))
def find_stops(request: Request,
               q: Annotated[str, Query(min_length=1, max_length=100, description="part of a stop's name or id")],
               limit: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
    """Stops and stations matching ``q``: `{stops: [{stop_id, name, lat, lon, station}]}`, best first."""
    snap = request.app.state.planner.current()
    return {"stops": search_stops(snap.timetable, q, limit)}
