"""Read-only reports of the clearing results for one operator (its console).

``operator_runs``: every settlement run, newest period first, with the operator's own totals in it
(zeros when it had no line in the run: each run closes a period for the whole network). One query
(an outer join on the per-operator totals), never the statement lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from clearing.models import RunOperator, SettlementRun


@dataclass(frozen=True)
class OperatorRun:
    run: SettlementRun
    totals: RunOperator


def operator_runs(session: Session, operator_id: str, *, limit: int = 100,
                  currency: str | None = None) -> list[OperatorRun]:
    """The runs (newest period first, at most ``limit``) and this operator's totals in each."""
    r, o = SettlementRun.__table__, RunOperator.__table__
    stmt = (sa.select(r, o.c.gross.label("op_gross"), o.c.refunds.label("op_refunds"),
                      o.c.commission.label("op_commission"), o.c.adjustments.label("op_adjustments"),
                      o.c.net_payable.label("op_net_payable"), o.c.lines.label("op_lines"))
            .select_from(r.outerjoin(o, (o.c.run_id == r.c.run_id) & (o.c.operator_id == operator_id)))
            .order_by(r.c.period_start.desc(), r.c.run_id).limit(limit))
    if currency is not None:
        stmt = stmt.where(r.c.currency == currency)
    out = []
    for row in session.execute(stmt).mappings():
        run = SettlementRun(**{c.name: row[c.name] for c in r.columns})
        totals = RunOperator(run_id=run.run_id, operator_id=operator_id, gross=row["op_gross"] or 0,
                             refunds=row["op_refunds"] or 0, commission=row["op_commission"] or 0,
                             adjustments=row["op_adjustments"] or 0, net_payable=row["op_net_payable"] or 0,
                             lines=row["op_lines"] or 0)
        out.append(OperatorRun(run, totals))
    return out


__all__ = ["OperatorRun", "operator_runs"]
