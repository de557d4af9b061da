"""Settlement runs, operator statements and disputes (clearing over HTTP).

POST /v1/settlements/runs (admin), GET /v1/settlements/runs[/{id}] (admin, regulator),
GET /v1/settlements/runs/{id}/statements/{operator_id} (that operator's staff, admin; JSON or ``?format=csv``),
POST /v1/disputes (operator staff), GET /v1/disputes[/{id}] (operator staff: their own; admin),
POST /v1/disputes/{id}/resolve (admin); apportionment agreements and commission terms as data:
POST /v1/clearing/agreements, POST /v1/clearing/commission-terms (admin), GET both (admin, regulator).
An operator's console: GET /v1/operators/{operator_id}/settlements (the runs with its own totals) and
GET /v1/operators/{operator_id}/stats (validations and sales by day or line), that operator's staff and admins.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, Field

from clearing import agreements, disputes, reports, settlement
from clearing.clock import CLEARING_TZ
from clearing.apportionment import Agreement, Method
from clearing.errors import (
    DisputeClosed, DisputeNotFound, InvalidAgreement, InvalidPeriod, InvalidRecord, LineNotFound, PeriodNotEnded,
    PeriodOverlaps, RunNotFound,
)
from clearing.schemas import (
    STATEMENT_CSV_HEADER, DisputePublic, OperatorTotals, RunPublic, StatementPublic, dispute_public, operator_totals,
    run_public, statement_public,
)
from maas import accounts, audit
from maas.api.auth import Strict
from maas.api.deps import (
    AdminOrRegulator, CurrentAdmin, OperatorScope, OperatorStaffOrAdmin, SessionDep, check_operator_scope,
    require_roles,
)
from maas.audit_views.common import InvalidPeriod as InvalidStatsPeriod
from maas.audit_views.common import resolve_period
from maas.errors import Forbidden, NotFound, error_responses
from maas.journeys import now
from maas.security import Principal
from maas.validation import Amount, Int32, Money
from ticketing import reports as ticket_reports

router = APIRouter(tags=["clearing"])
OperatorStaff = Annotated[Principal, Depends(require_roles("operator"))]


class RunIn(Strict):
    period_start: dt.date
    period_end: dt.date = Field(description="exclusive: the period is [period_start, period_end)")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


@router.post("/v1/settlements/runs", response_model=RunPublic, status_code=status.HTTP_201_CREATED,
             response_model_exclude_none=True,
             responses={200: {"model": RunPublic, "description": "the run of this period already exists"},
                        **error_responses(Forbidden, InvalidPeriod, PeriodNotEnded, PeriodOverlaps)})
def create_run(body: RunIn, request: Request, session: SessionDep, admin: CurrentAdmin,
               response: Response) -> RunPublic:
    """Closes a period that has ended: `period_end` at most today in the clearing time zone (else 422
    `period_not_ended`), `period_start` from 2000-01-01 (else 422 `invalid_period`)."""
    run, created = settlement.run_settlement(session, period_start=body.period_start, period_end=body.period_end,
                                             currency=body.currency, actor_id=admin.subject, now=now(request.app))
    if created:
        audit.record(session, action="settlement.run", actor_id=admin.subject, actor_role=admin.role,
                     target=run.run_id, details={"period_start": run.period_start.isoformat(),
                                                 "period_end": run.period_end.isoformat(), "digest": run.digest})
    else:
        response.status_code = status.HTTP_200_OK
    return run_public(run, settlement.run_operators(session, run.run_id))


@router.get("/v1/settlements/runs", response_model=list[RunPublic], response_model_exclude_none=True,
            responses=error_responses(Forbidden))
def list_runs(session: SessionDep, _: AdminOrRegulator,
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[RunPublic]:
    return [run_public(r, settlement.run_operators(session, r.run_id))
            for r in settlement.list_runs(session, limit=limit)]


@router.get("/v1/settlements/runs/{run_id}", response_model=RunPublic, response_model_exclude_none=True,
            responses=error_responses(Forbidden, RunNotFound))
def get_run(run_id: str, session: SessionDep, _: AdminOrRegulator,
            verify: Annotated[bool, Query(description="recompute the digest from the journal")] = False) -> RunPublic:
    run = settlement.get_run(session, run_id)
    verified = settlement.recompute_digest(session, run_id) == run.digest if verify else None
    return run_public(run, settlement.run_operators(session, run_id), verified)


@router.get("/v1/settlements/runs/{run_id}/statements/{operator_id}", response_model=StatementPublic,
            responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"},
                       **error_responses(Forbidden, RunNotFound)})
def get_statement(request: Request, run_id: str, operator_id: OperatorScope, session: SessionDep,
                  format: Annotated[Literal["json", "csv"], Query()] = "json",  # noqa: A002
                  offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
                  limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> StatementPublic | Response:
    run = settlement.get_run(session, run_id)
    lines = settlement.statement_lines(session, run_id, operator_id, offset=offset, limit=limit)
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(STATEMENT_CSV_HEADER)
        for line in lines:
            writer.writerow((run_id, operator_id, line.leg_id, line.ticket_id or "", line.kind, line.gross,
                             line.refunds, line.commission, line.adjustments, line.net, run.currency))
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="statement-{run_id}-{operator_id}.csv"'})
    out = statement_public(run, settlement.operator_totals(session, run_id, operator_id), lines)
    snap = request.app.state.planner.snapshot  # the loaded timetable (no load inside a statement's transaction)
    out.agencies = snap.timetable.operator_agencies(operator_id) if snap is not None else []
    return out


class DisputeIn(Strict):
    run_id: str = Field(min_length=1, max_length=40)
    leg_id: str = Field(min_length=1, max_length=64)
    line_kind: Literal["regular", "adjustment"] = "regular"
    reason: str = Field(min_length=1, max_length=1000)
    claimed_amount: Money | None = Field(default=None, description="minor units the operator believes it is owed")


class ResolveIn(Strict):
    decision: Literal["accept", "reject"]
    amount: Money = Field(default=0, description="adjustment in minor units (+ to the operator, - a claw-back)")
    note: str | None = Field(default=None, max_length=1000)


@router.post("/v1/disputes", response_model=DisputePublic, status_code=status.HTTP_201_CREATED,
             responses=error_responses(Forbidden, RunNotFound, LineNotFound, DisputeClosed))
def open_dispute(body: DisputeIn, session: SessionDep, staff: OperatorStaff) -> DisputePublic:
    assert staff.operator_id is not None
    dispute = disputes.open_dispute(session, run_id=body.run_id, operator_id=staff.operator_id, leg_id=body.leg_id,
                                    reason=body.reason, claimed_amount=body.claimed_amount, kind=body.line_kind,
                                    actor_id=staff.subject)
    audit.record(session, action="dispute.open", actor_id=staff.subject, actor_role=staff.role,
                 operator_id=staff.operator_id, target=dispute.dispute_id, details={"run_id": body.run_id})
    return dispute_public(dispute)


@router.get("/v1/disputes", response_model=list[DisputePublic], responses=error_responses(Forbidden))
def list_disputes(session: SessionDep, principal: OperatorStaffOrAdmin,
                  status_: Annotated[Literal["open", "accepted", "rejected"] | None, Query(alias="status")] = None,
                  ) -> list[DisputePublic]:
    operator_id = None if principal.role == "admin" else principal.operator_id
    return [dispute_public(d) for d in disputes.list_disputes(session, operator_id=operator_id, status=status_)]


@router.get("/v1/disputes/{dispute_id}", response_model=DisputePublic,
            responses=error_responses(Forbidden, DisputeNotFound))
def get_dispute(dispute_id: str, session: SessionDep, principal: OperatorStaffOrAdmin) -> DisputePublic:
    dispute = disputes.get_dispute(session, dispute_id)
    check_operator_scope(principal, dispute.operator_id)
    return dispute_public(dispute)


@router.post("/v1/disputes/{dispute_id}/resolve", response_model=DisputePublic,
             responses=error_responses(Forbidden, DisputeNotFound, DisputeClosed, InvalidRecord))
def resolve_dispute(dispute_id: str, body: ResolveIn, session: SessionDep, admin: CurrentAdmin) -> DisputePublic:
    dispute = disputes.resolve_dispute(session, dispute_id, accept=body.decision == "accept", amount=body.amount,
                                       note=body.note, actor_id=admin.subject)
    audit.record(session, action="dispute.resolve", actor_id=admin.subject, actor_role=admin.role,
                 operator_id=dispute.operator_id, target=dispute_id,
                 details={"decision": body.decision, "amount": dispute.resolution_amount})
    return dispute_public(dispute)


class AgreementIn(Strict):
    agreement_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    method: Literal["distance", "standalone_fare", "fixed", "percentage"]
    operator_ids: list[str] | None = Field(default=None, description="null: network-wide")
    fixed_amounts: dict[str, Money] = Field(default_factory=dict, description="minor units per leg, by operator")
    remainder_operator: str | None = None
    shares_bp: dict[str, Int32] = Field(default_factory=dict, description="basis points by operator, sum 10000")
    discount_borne_by: str | None = Field(default=None, description="null: the discount is borne proportionally")
    valid_from: dt.date
    valid_until: dt.date | None = Field(default=None, description="exclusive")
    priority: Int32 = 0


class AgreementOut(BaseModel):
    agreement_id: str
    method: str
    operator_ids: list[str] | None
    fixed_amounts: dict[str, int]
    remainder_operator: str | None
    shares_bp: dict[str, int]
    discount_borne_by: str | None
    valid_from: dt.date
    valid_until: dt.date | None
    priority: int


class CommissionIn(Strict):
    term_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    operator_id: str = Field(min_length=1, max_length=64)
    rate_bp: int = Field(default=0, ge=0, le=10_000, description="basis points of the leg's share")
    fixed_per_leg: Amount = Field(default=0, description="minor units per recognised leg")
    valid_from: dt.date
    valid_until: dt.date | None = Field(default=None, description="exclusive")


class CommissionOut(BaseModel):
    term_id: str
    operator_id: str
    rate_bp: int
    fixed_per_leg: int
    valid_from: dt.date
    valid_until: dt.date | None


def _agreement_out(a: Agreement) -> AgreementOut:
    return AgreementOut(agreement_id=a.agreement_id, method=a.method.value,
                        operator_ids=sorted(a.operator_ids) if a.operator_ids is not None else None,
                        fixed_amounts=dict(a.fixed_amounts), remainder_operator=a.remainder_operator,
                        shares_bp=dict(a.shares_bp), discount_borne_by=a.discount_borne_by, valid_from=a.valid_from,
                        valid_until=a.valid_until, priority=a.priority)


@router.post("/v1/clearing/agreements", response_model=AgreementOut, status_code=status.HTTP_201_CREATED,
             responses=error_responses(Forbidden, InvalidAgreement))
def create_agreement(body: AgreementIn, session: SessionDep, admin: CurrentAdmin) -> AgreementOut:
    """An apportionment agreement (data, not code); it applies to tickets sold from ``valid_from``."""
    agreement = Agreement(
        agreement_id=body.agreement_id, method=Method(body.method),
        operator_ids=frozenset(body.operator_ids) if body.operator_ids is not None else None,
        fixed_amounts=body.fixed_amounts, remainder_operator=body.remainder_operator, shares_bp=body.shares_bp,
        discount_borne_by=body.discount_borne_by, valid_from=body.valid_from, valid_until=body.valid_until,
        priority=body.priority)
    agreements.create_agreement(session, agreement)
    audit.record(session, action="clearing.agreement", actor_id=admin.subject, actor_role=admin.role,
                 target=agreement.agreement_id, details={"method": body.method})
    return _agreement_out(agreement)


@router.get("/v1/clearing/agreements", response_model=list[AgreementOut], responses=error_responses(Forbidden))
def list_agreements(session: SessionDep, _: AdminOrRegulator) -> list[AgreementOut]:
    return [_agreement_out(a) for a in agreements.list_agreements(session)]


@router.post("/v1/clearing/commission-terms", response_model=CommissionOut, status_code=status.HTTP_201_CREATED,
             responses=error_responses(Forbidden, InvalidAgreement))
def create_commission_term(body: CommissionIn, session: SessionDep, admin: CurrentAdmin) -> CommissionOut:
    """The platform's commission on an operator's recognised legs, from ``valid_from`` (service dates)."""
    term = agreements.set_commission(session, term_id=body.term_id, operator_id=body.operator_id,
                                     rate_bp=body.rate_bp, fixed_per_leg=body.fixed_per_leg,
                                     valid_from=body.valid_from, valid_until=body.valid_until)
    audit.record(session, action="clearing.commission", actor_id=admin.subject, actor_role=admin.role,
                 operator_id=body.operator_id, target=body.term_id,
                 details={"rate_bp": body.rate_bp, "fixed_per_leg": body.fixed_per_leg})
    return CommissionOut.model_validate(term, from_attributes=True)


@router.get("/v1/clearing/commission-terms", response_model=list[CommissionOut], responses=error_responses(Forbidden))
def list_commission_terms(session: SessionDep, _: AdminOrRegulator) -> list[CommissionOut]:
    return [CommissionOut.model_validate(t, from_attributes=True) for t in agreements.list_commission_terms(session)]


# ---------------------------------------------------------------- an operator's console

class OperatorRunPublic(BaseModel):
    """A settlement run seen by one operator: the period and the operator's own totals in it."""

    run_id: str
    period_start: dt.date
    period_end: dt.date = Field(description="exclusive")
    status: str
    currency: str
    digest: str
    created_at: dt.datetime
    totals: OperatorTotals = Field(description="this operator's totals, minor units (zeros without a line)")


@router.get("/v1/operators/{operator_id}/settlements", response_model=list[OperatorRunPublic], tags=["operators"],
            responses=error_responses(Forbidden, NotFound))
def list_operator_runs(operator_id: OperatorScope, session: SessionDep,
                       currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[OperatorRunPublic]:
    """Every settlement run (newest period first) with this operator's totals; its statement (lines, CSV) is
    ``GET /v1/settlements/runs/{run_id}/statements/{operator_id}``. The operator's staff or an admin."""
    accounts.get_operator(session, operator_id)
    return [OperatorRunPublic(run_id=x.run.run_id, period_start=x.run.period_start, period_end=x.run.period_end,
                              status=x.run.status, currency=x.run.currency, digest=x.run.digest,
                              created_at=x.run.created_at, totals=operator_totals(x.totals))
            for x in reports.operator_runs(session, operator_id, limit=limit, currency=currency)]


class StatsRowOut(BaseModel):
    key: str = Field(description="YYYY-MM-DD (group=day) or the route id (group=line)")
    feed_id: str | None = None
    route_id: str | None = None
    route_name: str | None = Field(default=None, description="the route's short (else long) name (group=line)")
    validations: int = Field(description="accepted gate validations")
    rejected: int = Field(description="rejected gate validations")
    legs_sold: int
    legs_refunded: int
    gross: int = Field(description="price of the legs sold, minor units of `currency`")
    refunded: int = Field(description="value of the legs sold then refunded, minor units")
    revenue: int = Field(description="gross - refunded, minor units (before commission: see the statements)")


class OperatorStatsOut(BaseModel):
    operator_id: str
    period_start: dt.date
    period_end: dt.date = Field(description="exclusive")
    group: Literal["day", "line"]
    currency: str
    rows: list[StatsRowOut]
    totals: StatsRowOut


def _route_names(request: Request) -> dict[str, str]:
    snap = request.app.state.planner.snapshot
    if snap is None:
        return {}
    tt = snap.timetable
    return {rid: str(short) or str(long_) for rid, short, long_ in
            zip(tt.route_ids.tolist(), tt.route_short_names.tolist(), tt.route_long_names.tolist())}


@router.get("/v1/operators/{operator_id}/stats", response_model=OperatorStatsOut, tags=["operators"],
            responses=error_responses(Forbidden, NotFound, InvalidStatsPeriod))
def operator_stats(operator_id: OperatorScope, request: Request, session: SessionDep,
                   group: Annotated[Literal["day", "line"], Query()] = "day",
                   period: Annotated[str | None, Query(max_length=7, description="a month YYYY-MM")] = None,
                   period_start: Annotated[dt.date | None, Query(description="first day")] = None,
                   period_end: Annotated[dt.date | None, Query(description="day after the last (exclusive)")] = None,
                   currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "CNY") -> OperatorStatsOut:
    """The operator's gate validations and sold legs by day or by line (route), dates in the clearing time zone
    (default: the last 30 days). Validations count by the day they were scanned, sales by service date;
    money in integer minor units of ``currency``. See `ticketing.reports` for the definitions."""
    accounts.get_operator(session, operator_id)
    p = resolve_period(period=period, period_start=period_start, period_end=period_end,
                       today=now(request.app).astimezone(CLEARING_TZ).date(), default_days=30)
    if group == "day" and (p.end - p.start).days > ticket_reports.MAX_DAYS:
        raise InvalidStatsPeriod(f"group=day covers at most {ticket_reports.MAX_DAYS} days",
                                 details={"period_start": p.start.isoformat(), "period_end": p.end.isoformat()})
    stats = ticket_reports.operator_stats(session, operator_id=operator_id, start=p.start, end=p.end, tz=CLEARING_TZ,
                                          group=group, currency=currency)
    names = _route_names(request) if group == "line" else {}
    rows = [StatsRowOut(**vars(r), route_name=names.get(r.key)) for r in stats.rows]
    return OperatorStatsOut(operator_id=operator_id, period_start=p.start, period_end=p.end, group=group,
                            currency=currency, rows=rows, totals=StatsRowOut(**vars(stats.totals)))
