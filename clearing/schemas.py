"""Public shapes of clearing results (API.md "Settlement run"); amounts are integer minor units."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from clearing.models import Dispute, RunOperator, SettlementLine, SettlementRun
from clearing.reconciliation import ReconciliationReport


class Totals(BaseModel):
    gross: int
    refunds: int
    commission: int
    adjustments: int
    net_payable: int


class OperatorTotals(Totals):
    operator_id: str
    lines: int


class RunPublic(BaseModel):
    run_id: str
    period_start: dt.date
    period_end: dt.date
    status: str
    digest: str
    currency: str
    totals: Totals
    operators: list[OperatorTotals]
    created_at: dt.datetime
    #: Present when asked to verify: the digest recomputed from the journal equals ``digest``.
    verified: bool | None = None


class LinePublic(BaseModel):
    leg_id: str
    ticket_id: str | None
    kind: str
    gross: int
    refunds: int
    commission: int
    adjustments: int
    net: int


class StatementPublic(BaseModel):
    run_id: str
    operator_id: str
    period_start: dt.date
    period_end: dt.date
    currency: str
    digest: str
    totals: OperatorTotals
    lines: list[LinePublic]
    #: ``{feed_id, agency_id, name}``: the GTFS agencies whose legs the operator is paid for (filled by the shell)
    agencies: list[dict[str, str]] = []


class DisputePublic(BaseModel):
    dispute_id: str
    run_id: str
    operator_id: str
    leg_id: str
    line_kind: str
    reason: str
    claimed_amount: int | None
    status: str
    opened_at: dt.datetime
    resolution_amount: int | None
    resolution_note: str | None
    resolved_at: dt.datetime | None
    adjustment_entry_id: int | None


class ReconciliationPublic(BaseModel):
    operator_id: str
    window_start: dt.date | None
    window_end: dt.date | None
    rows: int
    matched: int
    mismatches: list[dict[str, Any]]
    only_theirs: list[dict[str, Any]]
    only_ours: list[dict[str, Any]]
    duplicates: list[dict[str, Any]]
    malformed: list[dict[str, Any]]


def _totals(row: RunOperator | SettlementRun) -> dict[str, int]:
    return {"gross": row.gross, "refunds": row.refunds, "commission": row.commission,
            "adjustments": row.adjustments, "net_payable": row.net_payable}


def operator_totals(row: RunOperator) -> OperatorTotals:
    return OperatorTotals(operator_id=row.operator_id, lines=row.lines, **_totals(row))


def run_public(run: SettlementRun, operators: list[RunOperator], verified: bool | None = None) -> RunPublic:
    return RunPublic(run_id=run.run_id, period_start=run.period_start, period_end=run.period_end, status=run.status,
                     digest=run.digest, currency=run.currency, totals=Totals(**_totals(run)),
                     operators=[operator_totals(o) for o in operators], created_at=run.created_at, verified=verified)


def statement_public(run: SettlementRun, totals: RunOperator, lines: list[SettlementLine]) -> StatementPublic:
    return StatementPublic(
        run_id=run.run_id, operator_id=totals.operator_id, period_start=run.period_start, period_end=run.period_end,
        currency=run.currency, digest=run.digest, totals=operator_totals(totals),
        lines=[LinePublic.model_validate(line, from_attributes=True) for line in lines])


def dispute_public(d: Dispute) -> DisputePublic:
    return DisputePublic.model_validate(d, from_attributes=True)


def reconciliation_public(report: ReconciliationReport) -> ReconciliationPublic:
    return ReconciliationPublic.model_validate(report, from_attributes=True)


STATEMENT_CSV_HEADER = ("run_id", "operator_id", "leg_id", "ticket_id", "kind", "gross", "refunds", "commission",
                        "adjustments", "net", "currency")
