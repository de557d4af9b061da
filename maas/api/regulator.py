"""Regulator views (交通运输主管部门), read-only and desensitized; regulators and admins.

GET /v1/audit/coverage (``?format=csv``), GET /v1/audit/coverage/stations (per station, ``?format=csv``), GET /v1/audit/metrics, GET /v1/audit/maturity,
GET /v1/audit/exports/orders and /v1/audit/exports/journeys (``?format=csv``); PUT
/v1/admin/stations/{stop_id} (admin) configures a station's grade and type. The services live
in `maas.audit_views`; exports are recorded in the audit log.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from clearing.clock import CLEARING_TZ
from maas import audit
from maas.api.auth import Strict
from maas.api.deps import AdminOrRegulator, CurrentAdmin, SessionDep, SettingsDep
from maas.audit_views import coverage, exports, maturity, metrics
from maas.audit_views.common import InvalidPeriod, Period, resolve_period
from maas.errors import Forbidden, error_responses
from maas.journeys import now, runtime
from maas.planner import Snapshot
from maas.stations import InvalidStationMeta, StationType, set_station_meta

router = APIRouter(tags=["regulators"])

Fmt = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]
Month = Annotated[str | None, Query(max_length=7, description="a calendar month YYYY-MM (clearing time zone)")]
Start = Annotated[dt.date | None, Query(description="first day of the period")]
End = Annotated[dt.date | None, Query(description="day after the last day of the period (exclusive)")]
_CSV = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"}}


class Cell(BaseModel):
    """A k-anonymous value: null and ``suppressed: true`` when it rests on fewer than k people or items."""

    value: int | float | None
    suppressed: bool


# ---------------------------------------------------------------- coverage

class GradeRow(BaseModel):
    station_type: str
    grade: int | None = Field(description="1 = 一级 (highest) … 5; null = not graded")
    stations: int
    covered: int
    share: float | None
    with_eticket_route: int
    with_validator: int


class AgencyRef(BaseModel):
    feed_id: str
    agency_id: str
    name: str


class AgencyStats(BaseModel):
    agency_id: str
    name: str
    operator_id: str = Field(description="the operator owning the agency's routes (paid for its legs)")
    routes: int
    trips_on_day: int


class OperatorCoverage(BaseModel):
    operator_id: str
    stations: int
    covered: int
    share: float | None
    trips: int
    trips_ticketable: int
    trips_ticketable_share: float | None
    stops: int
    stops_wheelchair: int
    stops_wheelchair_share: float | None
    trips_wheelchair: int
    trips_wheelchair_share: float | None
    by_grade: list[GradeRow]
    agencies: list[AgencyRef] = Field(default=[], description="GTFS agencies whose routes the operator runs")


class Target(BaseModel):
    target_id: str
    description: str
    threshold: float
    numerator: int
    denominator: int
    actual: float | None
    met: bool | None


class FeedStats(BaseModel):
    feed_id: str
    operator_id: str
    date: dt.date
    routes: int
    routes_by_mode: dict[str, int]
    stops: int
    trips: int
    trips_on_day: int
    service_hours: float
    service_km: float
    first_departure: str | None
    last_arrival: str | None
    mean_trip_min: float | None
    agencies: list[AgencyStats] = []


class CoverageOut(BaseModel):
    period_start: dt.date
    period_end: dt.date
    operator_id: str | None
    operators: list[OperatorCoverage]
    by_grade: list[GradeRow]
    targets: list[Target]
    feed_stats: list[FeedStats]


def _today(request: Request) -> dt.date:
    return now(request.app).astimezone(CLEARING_TZ).date()


def _snapshot(request: Request) -> Snapshot | None:
    planner = request.app.state.planner
    return planner.snapshot or planner.refresh()


def _csv(header: tuple[str, ...], rows: list[tuple[Any, ...]] | list[dict[str, Any]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        values = [row.get(h) for h in header] if isinstance(row, dict) else list(row)
        writer.writerow(["" if v is None else ";".join(v) if isinstance(v, list) else v for v in values])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/v1/audit/coverage", response_model=CoverageOut, responses={**_CSV, **error_responses(Forbidden,
                                                                                                     InvalidPeriod)})
def get_coverage(request: Request, session: SessionDep, _: AdminOrRegulator, format: Fmt = "json",  # noqa: A002
                 period: Month = None, period_start: Start = None, period_end: End = None,
                 operator_id: Annotated[str | None, Query(max_length=64)] = None,
                 date: Annotated[dt.date | None, Query(description="service day of the feed statistics")] = None,
                 ) -> CoverageOut | Response:
    """E-ticket coverage by operator and station grade, ticketable trips, wheelchair access, national targets
    and per-feed service statistics. The period (default: the last 30 days) bounds the validations counted."""
    p = resolve_period(period=period, period_start=period_start, period_end=period_end, today=_today(request),
                       default_days=30)
    snap = _snapshot(request)
    report = coverage.compute_coverage(session, timetable=snap.timetable if snap else None,
                                       fares=snap.fares if snap else None, period=p, operator_id=operator_id,
                                       stats_date=date)
    if format == "csv":
        return _csv(coverage.CSV_HEADER, coverage.coverage_csv_rows(report), f"coverage-{p.start}-{p.end}.csv")
    return CoverageOut.model_validate(report)


class StationCoverage(BaseModel):
    station_id: str
    name: str
    lat: float
    lon: float
    operator_id: str
    mode: str = Field(description="the top mode serving the station")
    station_type: str
    grade: int | None = Field(description="1 = 一级 (highest) … 5; null = not graded")
    eticket_route: bool = Field(description="served by an e-ticket-enabled route")
    validator: bool = Field(description="an active gate stands at it, or a validation was recorded there")
    covered: bool = Field(description="both: e-tickets can be sold and validated there")


class StationCoverageOut(BaseModel):
    period_start: dt.date
    period_end: dt.date
    operator_id: str | None
    stations: list[StationCoverage]


@router.get("/v1/audit/coverage/stations", response_model=StationCoverageOut,
            responses={**_CSV, **error_responses(Forbidden, InvalidPeriod)})
def get_station_coverage(request: Request, session: SessionDep, _: AdminOrRegulator, format: Fmt = "json",  # noqa: A002
                         period: Month = None, period_start: Start = None, period_end: End = None,
                         operator_id: Annotated[str | None, Query(max_length=64)] = None,
                         ) -> StationCoverageOut | Response:
    """The stations of the coverage report, one row each (name, WGS84 position, type and grade, covered or not):
    the same definitions and period as ``GET /v1/audit/coverage``, whose ``by_grade`` counts they add up to."""
    p = resolve_period(period=period, period_start=period_start, period_end=period_end, today=_today(request),
                       default_days=30)
    snap = _snapshot(request)
    rows = coverage.station_rows(session, timetable=snap.timetable if snap else None,
                                 fares=snap.fares if snap else None, period=p, operator_id=operator_id)
    if format == "csv":
        return _csv(coverage.STATION_CSV_HEADER, rows, f"coverage-stations-{p.start}-{p.end}.csv")
    return StationCoverageOut(period_start=p.start, period_end=p.end, operator_id=operator_id,
                              stations=[StationCoverage(**r) for r in rows])


# ---------------------------------------------------------------- metrics

class StatusCount(BaseModel):
    status: str
    count: Cell


class ModeCount(BaseModel):
    mode: str
    count: Cell


class ReasonCount(BaseModel):
    reason: str
    count: Cell
    rate: Cell


class CurrencyRefunds(BaseModel):
    currency: str
    refunds: Cell
    amount: Cell = Field(description="refunded, minor units")


class OperatorRevenue(BaseModel):
    operator_id: str
    currency: str
    legs: Cell
    gross: Cell = Field(description="price of the legs issued, minor units")
    legs_refunded: Cell


class MetricsOut(BaseModel):
    period_start: dt.date
    period_end: dt.date
    k: int
    users: dict[str, Cell]
    orders: dict[str, Cell | list[StatusCount]]
    journeys: dict[str, Cell | list[ModeCount]]
    refunds: dict[str, Cell | list[CurrencyRefunds]]
    validations: dict[str, Cell | list[ReasonCount]]
    face: dict[str, Cell]
    revenue: list[OperatorRevenue]


@router.get("/v1/audit/metrics", response_model=MetricsOut, responses=error_responses(Forbidden, InvalidPeriod))
def get_metrics(request: Request, session: SessionDep, settings: SettingsDep, _: AdminOrRegulator,
                period: Month = None, period_start: Start = None, period_end: End = None) -> MetricsOut:
    """MaaS metrics of a period (default: the current month), aggregates only, k-anonymous."""
    p = resolve_period(period=period, period_start=period_start, period_end=period_end, today=_today(request))
    return MetricsOut.model_validate(metrics.compute_metrics(session, period=p, k=settings.regulator_k_anonymity))


# ---------------------------------------------------------------- maturity

class LevelOut(BaseModel):
    level: int
    name: str
    met: bool
    evidence: dict[str, Any]


class MaturityOut(BaseModel):
    operator_ids: list[str]
    period_start: dt.date | None
    period_end: dt.date | None
    level: int = Field(ge=0, le=4)
    level_name: str
    levels: list[LevelOut]
    reference: str


@router.get("/v1/audit/maturity", response_model=MaturityOut, responses=error_responses(Forbidden, InvalidPeriod))
def get_maturity(request: Request, session: SessionDep, _: AdminOrRegulator,
                 operators: Annotated[str | None, Query(max_length=2000,
                                                        description="comma-separated operator ids (default: all "
                                                                    "operators with imported feeds)")] = None,
                 period: Month = None, period_start: Start = None, period_end: End = None) -> MaturityOut:
    """The MaaS integration level (0-4, Sochor et al. 2018) of an operator set, with the evidence of each level.
    Without a period every sale counts; coverage targets use the last 30 days."""
    p = None
    if period or period_start or period_end:
        p = resolve_period(period=period, period_start=period_start, period_end=period_end, today=_today(request))
    op_ids = [x.strip() for x in operators.split(",") if x.strip()] if operators else None
    snap = _snapshot(request)
    cov_period = p or resolve_period(period=None, period_start=None, period_end=None, today=_today(request),
                                     default_days=30)
    targets: list[dict[str, Any]] = []
    if snap is not None:
        if op_ids and len(op_ids) == 1:
            targets = coverage.compute_coverage(session, timetable=snap.timetable, fares=snap.fares,
                                                period=cov_period, operator_id=op_ids[0])["targets"]
        else:
            targets = coverage.compute_coverage(session, timetable=snap.timetable, fares=snap.fares,
                                                period=cov_period)["targets"]
    return MaturityOut.model_validate(maturity.compute_maturity(
        session, operator_ids=op_ids, period=p, fares=snap.fares if snap else None, targets=targets))


# ---------------------------------------------------------------- exports

class OrderRow(BaseModel):
    order_ref: str = Field(description="keyed pseudonym of the order")
    user_ref: str = Field(description="keyed pseudonym of the buyer (stable across exports)")
    buyer_phone: str | None = Field(description="masked, e.g. 138****5678")
    created_on: dt.date
    status: str
    total_amount: int = Field(description="minor units")
    currency: str
    traveler_name: str = Field(description="masked, e.g. 张*")
    id_type: str
    id_number: str = Field(description="masked, e.g. 110***********1234")
    rider_category: str
    operators: list[str]
    modes: list[str]
    legs: int


class OrdersExport(BaseModel):
    period_start: dt.date
    period_end: dt.date
    rows: list[OrderRow]
    next_offset: int | None


class JourneyRow(BaseModel):
    service_date: dt.date
    from_stop_id: str
    from_name: str | None
    to_stop_id: str
    to_name: str | None
    journeys: int


class JourneysExport(BaseModel):
    period_start: dt.date
    period_end: dt.date
    k: int
    rows: list[JourneyRow]
    suppressed_groups: int
    suppressed_journeys: int


def _record_export(session: SessionDep, principal: Any, kind: str, p: Period, rows: int) -> None:
    audit.record(session, action="audit.export", actor_id=principal.subject, actor_role=principal.role,
                 target=kind, details={"period_start": p.start.isoformat(), "period_end": p.end.isoformat(),
                                       "rows": rows})


@router.get("/v1/audit/exports/orders", response_model=OrdersExport,
            responses={**_CSV, **error_responses(Forbidden, InvalidPeriod)})
def export_orders(request: Request, session: SessionDep, principal: AdminOrRegulator,
                  format: Fmt = "json", period: Month = None,  # noqa: A002
                  period_start: Start = None, period_end: End = None,
                  offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> OrdersExport | Response:
    """Orders of a period (default: the current month), one row per traveller, masked and pseudonymous."""
    p = resolve_period(period=period, period_start=period_start, period_end=period_end, today=_today(request))
    keyring = runtime(request.app).keyring

    def pseudonymize(kind: str, value: str) -> str:
        return keyring.blind_index(value, f"regulator_export:{kind}")[:16]

    rows = exports.export_orders(session, period=p, pseudonymize=pseudonymize, offset=offset, limit=limit + 1)
    # limit + 1 orders tell whether there is a next page; their traveller rows are cut at the order boundary
    refs = list(dict.fromkeys(r["order_ref"] for r in rows))
    more = len(refs) > limit
    if more:
        rows = [r for r in rows if r["order_ref"] != refs[-1]]
    _record_export(session, principal, "orders", p, len(rows))
    if format == "csv":
        return _csv(exports.ORDER_COLUMNS, rows, f"orders-{p.start}-{p.end}.csv")
    return OrdersExport(period_start=p.start, period_end=p.end, rows=[OrderRow(**r) for r in rows],
                        next_offset=offset + limit if more else None)


@router.get("/v1/audit/exports/journeys", response_model=JourneysExport,
            responses={**_CSV, **error_responses(Forbidden, InvalidPeriod)})
def export_journeys(request: Request, session: SessionDep, settings: SettingsDep, principal: AdminOrRegulator,
                    format: Fmt = "json", period: Month = None, period_start: Start = None,  # noqa: A002
                    period_end: End = None) -> JourneysExport | Response:
    """Journeys as origin-destination pairs by service day (default: the current month), groups of fewer than k
    journeys suppressed; never one person's trip history."""
    p = resolve_period(period=period, period_start=period_start, period_end=period_end, today=_today(request))
    snap = _snapshot(request)
    report = exports.export_journeys(session, period=p, k=settings.regulator_k_anonymity,
                                     timetable=snap.timetable if snap else None)
    _record_export(session, principal, "journeys", p, len(report["rows"]))
    if format == "csv":
        return _csv(exports.JOURNEY_COLUMNS, report["rows"], f"journeys-{p.start}-{p.end}.csv")
    return JourneysExport.model_validate(report)


# ---------------------------------------------------------------- station metadata

class StationIn(Strict):
    station_type: StationType
    grade: int | None = Field(default=None, ge=1, le=5, description="1 = 一级 (highest) … 5; null = not graded")


class StationOut(BaseModel):
    stop_id: str
    station_type: str
    grade: int | None


@router.put("/v1/admin/stations/{stop_id}", response_model=StationOut,
            responses=error_responses(Forbidden, InvalidStationMeta))
def put_station(stop_id: Annotated[str, Path(max_length=200)], body: StationIn, session: SessionDep,
                admin: CurrentAdmin) -> StationOut:
    """Sets the grade and type of a station (namespaced stop id of a station or stop), used by the coverage audit."""
    row = set_station_meta(session, stop_id=stop_id, station_type=body.station_type.value, grade=body.grade)
    audit.record(session, action="station.set", actor_id=admin.subject, actor_role=admin.role, target=stop_id,
                 details={"station_type": row.station_type, "grade": row.grade})
    return StationOut(stop_id=row.stop_id, station_type=row.station_type, grade=row.grade)
