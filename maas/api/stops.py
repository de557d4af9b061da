"""Finding stops (autocomplete and "near me" for the passenger front end): ``GET /v1/stops``.

Read from the serving timetable snapshot (no database query); the search itself is
:func:`routing.stop_search.search_stops`. A parent station stands for its platforms (the planner accepts
either) and lists them; a platform is found through its station.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from maas.errors import error_responses
from maas.feeds import NoFeeds
from maas.ratelimit import RateLimited, rate_limit
from routing.stop_search import (DEFAULT_RADIUS_M, MAX_LIMIT, MAX_RADIUS_M, MIN_RADIUS_M, StopSearchError,
                                 check_request, search_stops)

router = APIRouter(tags=["planning"], dependencies=[rate_limit("plan", by_address=True)])


class PlatformOut(BaseModel):
    stop_id: str
    name: str
    platform_code: str | None = None


class StopOut(BaseModel):
    stop_id: str
    name: str
    lat: float
    lon: float
    station: bool
    platforms: list[PlatformOut] = []
    match: str | None = None
    distance_m: int | None = None


class StopsOut(BaseModel):
    stops: list[StopOut]


@router.get("/v1/stops", response_model=StopsOut, response_model_exclude_none=True,
            responses=error_responses(StopSearchError, NoFeeds, RateLimited))
def find_stops(
    request: Request,
    q: Annotated[str | None, Query(min_length=1, max_length=100,
                                   description="part of a stop's name or id; accents, case, traditional or "
                                               "simplified Chinese and pinyin (full, spaced or initials) do "
                                               "not matter")] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90, description="with lon: nearest places first")] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    radius_m: Annotated[float, Query(ge=MIN_RADIUS_M, le=MAX_RADIUS_M,
                                     description="with lat/lon: how far to look")] = DEFAULT_RADIUS_M,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
) -> dict[str, Any]:
    """Stations and stops matching ``q`` (best first) and/or near ``lat``,``lon`` (nearest first, with
    ``distance_m``): `{stops: [{stop_id, name, lat, lon, station, platforms, match, distance_m?}]}`."""
    if (lat is None) != (lon is None):
        missing = "lon" if lon is None else "lat"
        raise StopSearchError("lat and lon go together", details={"parameter": missing})
    near = (lat, lon) if lat is not None and lon is not None else None
    check_request(q, near=near, radius_m=radius_m, limit=limit)  # before NoFeeds: bad input is the caller's
    snap = request.app.state.planner.current()
    hits = search_stops(snap.timetable, q, near=near, radius_m=radius_m, limit=limit)
    return {"stops": [h.to_dict() for h in hits]}
