"""GET /v1/plan: journeys from the loaded timetable (plain `def`: runs in the thread pool)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from maas import audit
from maas.api.deps import OperatorStaffOrAdmin, SessionDep, check_operator_scope
from maas.db import session_scope
from maas.errors import BadRequest, Forbidden, error_responses
from maas.feeds import FeedNotFound, NoFeeds
from maas.models import FeedRecord
from maas.ratelimit import RateLimited, rate_limit
from maas.validation import PlanTime
from routing.errors import InvalidQuery, RealtimeError, UnknownStop
from routing.search import PlanRequest

# Planning needs no account and ignores Authorization: keyed by client address.
router = APIRouter(tags=["planning"], dependencies=[rate_limit("plan", by_address=True)])
realtime_router = APIRouter(tags=["planning"])

MODES = {"BUS", "TRAM", "SUBWAY", "RAIL", "COACH", "FERRY"}


class PlanOut(BaseModel):
    """Itineraries in the contract's shape; an empty list means no journey satisfies the request,
    and ``reason`` then says why."""

    itineraries: list[dict[str, Any]]
    reason: dict[str, Any] | None = Field(
        None, description="why `itineraries` is empty (null otherwise): `code` (outside_feed_validity, "
                          "no_stop_within_walking, no_service_for_modes, operators_excluded, no_accessible_journey, "
                          "over_max_fare, too_many_transfers, no_service_in_window), `message`, and details such as "
                          "`feeds` [{feed_id, start_date, end_date}]")
    filtered: dict[str, int] | None = Field(
        None, description="itineraries removed by each filter rule (duration, generalized_cost, dominated); "
                          "`filter=none` or relaxing the knobs shows them (docs/planning.md)")


def _aware(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidQuery(f"{name} needs a UTC offset, e.g. 2026-10-07T08:00:00+08:00", details={"field": name})
    return value


def parse_modes(modes: str | None) -> frozenset[str] | None:
    if not modes:
        return None
    chosen = frozenset(m.strip().upper() for m in modes.split(",") if m.strip())
    unknown = chosen - MODES
    if unknown:
        raise InvalidQuery(f"unknown modes: {', '.join(sorted(unknown))} (use {', '.join(sorted(MODES))})",
                           details={"modes": sorted(unknown)})
    return chosen


@router.get("/v1/plan", response_model=PlanOut,
            responses=error_responses(InvalidQuery, UnknownStop, NoFeeds, BadRequest, RateLimited))
def plan(
    request: Request,
    from_: Annotated[str, Query(alias="from", min_length=1, max_length=200,
                                description="stop id `<feed_id>:<stop_id>` or `lat,lon`")],
    to: Annotated[str, Query(min_length=1, max_length=200)],
    depart_at: PlanTime | None = None,
    arrive_by: PlanTime | None = None,
    window_s: Annotated[int, Query(ge=0, le=6 * 3600, description="range search window after depart_at")] = 0,
    max_transfers: Annotated[int, Query(ge=0, le=8)] = 4,
    min_change_s: Annotated[int, Query(ge=0, le=3600)] = 0,
    walk_speed: Annotated[float, Query(gt=0.2, le=3.0)] = 1.3,
    max_walk_m: Annotated[float, Query(ge=0, le=5000)] = 1000.0,
    modes: Annotated[str | None, Query(max_length=100, description="comma list of BUS,TRAM,SUBWAY,RAIL,COACH,FERRY")] = None,
    wheelchair: bool = False,
    max_itineraries: Annotated[int, Query(ge=1, le=20)] = 5,
    rider_category: Annotated[str, Query(max_length=40, description="fare category: adult, child, senior, disabled ...")] = "adult",
    optimize: Annotated[Literal["time", "fare"], Query(
        description="`time`: fastest / fewest transfers / least walking; `fare`: the Pareto set over arrival, "
                    "transfers and fare, found by a fare-aware search (labels `cheapest`, `fastest`, ...)")] = "time",
    max_fare: Annotated[int | None, Query(
        ge=0, le=10_000_000,
        description="only journeys whose fare is at most this, in minor units (fen); implies a fare-aware search")] = None,
    lang: Annotated[str | None, Query(
        max_length=100, description="language of service alert texts (else the Accept-Language header)")] = None,
    filter_: Annotated[Literal["default", "none"], Query(
        alias="filter", description="`default`: the itinerary filter chain of docs/planning.md (the fastest is "
                                    "always kept); `none`: every non-dominated itinerary found")] = "default",
    max_duration_factor: Annotated[float, Query(
        ge=1, le=100, description="filter: duration at most max_duration_slack_s + this x the best duration")] = 2.0,
    max_duration_slack_s: Annotated[int, Query(ge=0, le=7 * 86400)] = 1800,
    cost_limit_factor: Annotated[float, Query(
        ge=1, le=100, description="filter: generalized cost at most cost_limit_slack_s + this x another's cost "
                                  "+ cost_interval_relax x their departure difference")] = 1.5,
    cost_limit_slack_s: Annotated[int, Query(ge=0, le=7 * 86400)] = 900,
    cost_interval_relax: Annotated[float, Query(ge=0, le=100)] = 0.4,
    dominance_walk_slack_m: Annotated[float, Query(
        ge=0, le=100_000, description="filter: removed when another leaves no earlier, arrives no later, has no "
                                      "more transfers and walks at most this many metres more")] = 100.0,
) -> PlanOut:
    if (depart_at is None) == (arrive_by is None):
        raise InvalidQuery("give exactly one of depart_at and arrive_by")
    snap = request.app.state.planner.current()
    req = PlanRequest(
        origin=from_, destination=to, depart_at=_aware(depart_at, "depart_at"),
        arrive_by=_aware(arrive_by, "arrive_by"), window_s=window_s, max_transfers=max_transfers,
        min_change_s=min_change_s, walk_speed_m_s=walk_speed, max_walk_m=max_walk_m, modes=parse_modes(modes),
        wheelchair=wheelchair, max_itineraries=max_itineraries, optimize=optimize, max_fare=max_fare,
        rider_category=rider_category, itinerary_filter=filter_, max_duration_factor=max_duration_factor,
        max_duration_slack_s=max_duration_slack_s, cost_limit_factor=cost_limit_factor,
        cost_limit_slack_s=cost_limit_slack_s, cost_interval_relax=cost_interval_relax,
        dominance_walk_slack_m=dominance_walk_slack_m,
    )
    return PlanOut(**snap.plan_answer(req, language=lang or request.headers.get("accept-language")))



class RealtimeOut(BaseModel):
    feed_id: str
    source: str | None = None
    timestamp: int
    counts: dict[str, Any]
    unmatched_trips: int
    warnings: list[str]


async def _feed_message(request: Request, feed_id: str, principal: Any) -> tuple[FeedRecord, Any, bytes]:
    """The feed a real-time upload is for (404, operator scope), the loaded planner and the non-empty body.

    The feed look-up and the timetable load happen before the request's own transaction starts: on
    SQLite a second connection could not read while the request's connection holds the write lock.
    """
    with session_scope(request.app.state.engine) as lookup:
        record = lookup.get(FeedRecord, feed_id)
    if record is None:
        raise FeedNotFound(f"no imported feed {feed_id!r}", details={"feed_id": feed_id})
    check_operator_scope(principal, record.operator_id)
    planner = request.app.state.planner
    await anyio.to_thread.run_sync(planner.current)
    data = await request.body()
    if not data:
        raise RealtimeError("the body must be a GTFS-Realtime FeedMessage (protobuf)")
    return record, planner, data


@realtime_router.post(
    "/v1/realtime/{feed_id}", response_model=RealtimeOut,
    responses=error_responses(RealtimeError, NoFeeds, FeedNotFound, Forbidden),
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def load_realtime(feed_id: str, request: Request, session: SessionDep,
                        principal: OperatorStaffOrAdmin,
                        source: Annotated[str | None, Query(
                            max_length=40, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$",
                            description="one of several real-time endpoints of the feed (e.g. a line group): "
                                        "the snapshot replaces that source's previous one only")] = None,
                        ) -> RealtimeOut:
    """Apply a GTFS-Realtime TripUpdates snapshot (protobuf body) to the served timetable, without recompiling.

    It replaces the feed's (or the source's) previous snapshot only; other feeds keep theirs. A message
    holding no TripUpdates (Service Alerts, VehiclePositions) is a 422 ``not_trip_updates``.
    Admins, or staff of the operator that owns the feed. Every worker picks it up within a second.
    """
    record, planner, data = await _feed_message(request, feed_id, principal)
    info = await anyio.to_thread.run_sync(planner.apply_realtime, data, feed_id, source)
    audit.record(session, action="realtime.load", actor_id=principal.subject, actor_role=principal.role,
                 target=feed_id, operator_id=record.operator_id, details={"counts": info["counts"]})
    return RealtimeOut(**info)


class AlertsOut(BaseModel):
    feed_id: str
    timestamp: int
    counts: dict[str, Any]
    warnings: list[str]


@realtime_router.post(
    "/v1/realtime/{feed_id}/alerts", response_model=AlertsOut,
    responses=error_responses(RealtimeError, NoFeeds, FeedNotFound, Forbidden),
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def load_alerts(feed_id: str, request: Request, session: SessionDep,
                      principal: OperatorStaffOrAdmin) -> AlertsOut:
    """Keep a feed's GTFS-Realtime Service Alerts (protobuf body), replacing its previous ones; plans then list
    the alerts touching each leg. Anything else (TripUpdates, VehiclePositions) is a 422 ``not_service_alerts``.

    Admins, or staff of the operator that owns the feed. Every worker picks them up within a second.
    """
    record, planner, data = await _feed_message(request, feed_id, principal)
    info = await anyio.to_thread.run_sync(planner.apply_alerts, data, feed_id)
    audit.record(session, action="realtime.alerts", actor_id=principal.subject, actor_role=principal.role,
                 target=feed_id, operator_id=record.operator_id, details={"counts": info["counts"]})
    return AlertsOut(**info)
