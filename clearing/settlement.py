"""Settlement runs: close a period ``[period_start, period_end)`` and compute what each operator is owed.

A run settles every journal entry that is settleable (recognition, refund,
adjustment), in its currency, dated before ``period_end`` and not settled by
an earlier run (``clearing_settle_queue`` lists those, so a run's work grows
with what is due, not with the journal's history). Entries dated inside the period make ``regular`` lines;
entries dated before it (events that arrived after their own period closed,
or carried over from a period never run) make ``adjustment`` lines whose net
effect lands in the adjustments column. A line is one ticket leg::

    gross       the leg's apportioned share recognised (used/expired on its
                service date, or closed by a refund on the refund date)
    refunds     money returned to the passenger for the leg
    commission  the platform's commission on the leg
    adjustments dispute resolutions (and late events, see above)
    net         gross - refunds - commission + adjustments

Everything is computed by set-based SQL (INSERT ... SELECT ... GROUP BY),
in the caller's transaction: a failure anywhere leaves nothing written. The
run posts one payout entry (Dr payable, Cr cash per operator) and is then
immutable; each entry is settled at most once (primary key of
``clearing_run_entries``). The digest is the sha256 of the canonical lines
(`canonical_line`) in (operator_id, leg_id, kind) code-point order, after a
header line ``period_start|period_end|currency``; `recompute_digest`
rebuilds the lines from the journal and must give the same value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session, select

from clearing import interface, ledger
from clearing.clock import local_date, utcnow
from clearing.errors import InvalidPeriod, PeriodNotEnded, PeriodOverlaps, RunNotFound
from clearing.ledger import Line, NewEntry
from clearing.models import (
    JournalEntry, JournalLine, RunEntry, RunOperator, SettlementLine, SettlementRun, SettleQueue,
)

SETTLEABLE_KINDS = ledger.SETTLEABLE_KINDS
MAX_PERIOD_DAYS = 366
#: No ticket was sold through this system before this date; earlier periods are typing errors.
EARLIEST_PERIOD_START = dt.date(2000, 1, 1)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AMOUNTS = ("gross", "refunds", "commission", "adjustments", "net")
#: The line purposes a statement line is computed from (the payable side is their balance, see clearing.ledger).
_COUNTED = ("close", "refund", "commission", "adjustment")


def _checkpoint(stage: str) -> None:
    """Called between the run's steps. Does nothing; tests replace it to fail a run partway."""


def _validate(period_start: dt.date, period_end: dt.date, currency: str, now: dt.datetime) -> None:
    if not _CURRENCY.match(currency or ""):
        raise InvalidPeriod("currency is an ISO 4217 code such as CNY", details={"currency": currency})
    if period_end <= period_start:
        raise InvalidPeriod("period_end must be after period_start (the period is [start, end))",
                            details={"period_start": period_start.isoformat(), "period_end": period_end.isoformat()})
    if (period_end - period_start).days > MAX_PERIOD_DAYS:
        raise InvalidPeriod(f"a period spans at most {MAX_PERIOD_DAYS} days")
    if period_start < EARLIEST_PERIOD_START:
        raise InvalidPeriod(f"a period starts on {EARLIEST_PERIOD_START.isoformat()} or later",
                            details={"period_start": period_start.isoformat()})
    business_day = local_date(now)
    if period_end > business_day:
        # Entries keep arriving for a day that has not ended; settling it would sweep them all (and anything
        # queued for later days) into this run. The last day a run may close is yesterday (T+1).
        raise PeriodNotEnded("the period ends after the current business day: only days that have ended settle",
                             details={"period_end": period_end.isoformat(), "business_day": business_day.isoformat(),
                                      "latest_period_end": business_day.isoformat()})


def _pg_memory(session: Session) -> None:
    # The run's aggregates hash every settled line; let them stay in memory rather than spill (this transaction only).
    session.execute(sa.text("SET LOCAL work_mem = '256MB'"))


def find_run(session: Session, *, period_start: dt.date, period_end: dt.date, currency: str) -> SettlementRun | None:
    return session.exec(select(SettlementRun).where(
        SettlementRun.period_start == period_start, SettlementRun.period_end == period_end,
        SettlementRun.currency == currency)).first()


def get_run(session: Session, run_id: str) -> SettlementRun:
    run = session.get(SettlementRun, run_id)
    if run is None:
        raise RunNotFound("no settlement run with this id", details={"run_id": run_id})
    return run


def run_operators(session: Session, run_id: str) -> list[RunOperator]:
    return list(session.exec(select(RunOperator).where(RunOperator.run_id == run_id)
                             .order_by(RunOperator.operator_id)).all())


def run_settlement(session: Session, *, period_start: dt.date, period_end: dt.date, currency: str = "CNY",
                   actor_id: str | None = None, now: dt.datetime | None = None) -> tuple[SettlementRun, bool]:
    """Close the period; returns ``(run, created)``. The same period again returns the existing run.

    The period must have ended: ``period_end`` is at most the current business day (``now``, default the
    wall clock, in the clearing time zone), and it starts no earlier than `EARLIEST_PERIOD_START`
    (`PeriodNotEnded`, `InvalidPeriod`).
    """
    _validate(period_start, period_end, currency, now or utcnow())
    if session.get_bind().dialect.name == "postgresql":
        # Runs are serialised: the overlap check and "each entry settled once" are then plain reads.
        session.execute(sa.text("SELECT pg_advisory_xact_lock(7242007)"))
        _pg_memory(session)
    existing = find_run(session, period_start=period_start, period_end=period_end, currency=currency)
    if existing is not None:
        return existing, False
    overlapping = session.exec(select(SettlementRun).where(
        SettlementRun.currency == currency, SettlementRun.period_start < period_end,
        SettlementRun.period_end > period_start)).first()
    if overlapping is not None:
        raise PeriodOverlaps("this period overlaps a closed settlement period", details={
            "run_id": overlapping.run_id, "period_start": overlapping.period_start.isoformat(),
            "period_end": overlapping.period_end.isoformat()})

    # Uses recorded at the gates and not yet recognised by the job count in this run (waits for a batch in flight).
    interface.recognise_pending_uses(session)
    run_id = f"run_{secrets.token_hex(12)}"
    RE, Q = RunEntry, SettleQueue
    # The queue holds only unsettled entries, so a run reads what is due, not the journal's whole history.
    # The primary key of clearing_run_entries still guarantees that no entry is ever settled twice.
    due = sa.select(Q.entry_id, sa.literal(run_id)).where(Q.currency == currency, Q.effective_date < period_end)
    session.execute(sa.insert(RE).from_select(["entry_id", "run_id"], due))
    session.execute(sa.delete(Q).where(Q.entry_id.in_(sa.select(RE.entry_id).where(RE.run_id == run_id))))
    if session.get_bind().dialect.name == "postgresql":
        # A run can add millions of rows here; fresh statistics keep the next statement on hash joins.
        session.execute(sa.text("ANALYZE clearing_run_entries"))
    _checkpoint("entries")

    line_cols = ["run_id", "operator_id", "ticket_id", "leg_id", "kind", *_AMOUNTS]
    session.execute(sa.insert(SettlementLine).from_select(line_cols, _lines_from_journal(run_id, period_start)))
    _checkpoint("lines")

    SL = SettlementLine
    per_operator = (sa.select(sa.literal(run_id), SL.operator_id,
                              *[sa.cast(sa.func.sum(getattr(SL, c)), sa.BigInteger) for c in _AMOUNTS],
                              sa.func.count())
                    .where(SL.run_id == run_id).group_by(SL.operator_id))
    session.execute(sa.insert(RunOperator).from_select(
        ["run_id", "operator_id", "gross", "refunds", "commission", "adjustments", "net_payable", "lines"],
        per_operator))
    _checkpoint("operators")

    operators = run_operators(session, run_id)
    digest = _digest(session, period_start, period_end, currency, _stored_select(run_id),
                     count=sum(o.lines for o in operators))
    payouts = [Line(ledger.payable(o.operator_id), o.net_payable, "payout", o.operator_id) for o in operators
               if o.net_payable] + [Line(ledger.CASH, -o.net_payable, "payout", o.operator_id) for o in operators
                                    if o.net_payable]
    payout_entry_id = None
    if payouts:
        payout_entry_id = ledger.post(session, NewEntry(f"settlement:{run_id}", "settlement", currency,
                                                        period_end - dt.timedelta(days=1), payouts,
                                                        memo=f"payout of {run_id}"))
    _checkpoint("payout")
    run = SettlementRun(
        run_id=run_id, period_start=period_start, period_end=period_end, currency=currency, status="closed",
        digest=digest, gross=sum(o.gross for o in operators), refunds=sum(o.refunds for o in operators),
        commission=sum(o.commission for o in operators), adjustments=sum(o.adjustments for o in operators),
        net_payable=sum(o.net_payable for o in operators), lines=sum(o.lines for o in operators),
        payout_entry_id=payout_entry_id, created_by=actor_id,
    )
    session.add(run)
    session.flush()
    return run, True


def _lines_from_journal(run_id: str, period_start: dt.date) -> sa.Select:
    """The run's statement lines, computed from the journal entries it settled (one row per leg and kind)."""
    E, L, RE = JournalEntry, JournalLine, RunEntry
    kind = sa.case((E.effective_date < period_start, sa.literal("adjustment")), else_=sa.literal("regular"))
    x = (sa.select(L.operator_id, L.ticket_id, L.leg_id, L.purpose, L.amount, kind.label("line_kind"))
         .select_from(RE).join(E, E.entry_id == RE.entry_id).join(L, L.entry_id == E.entry_id)
         .where(RE.run_id == run_id, L.purpose.in_(_COUNTED))).subquery("x")

    def total(purpose: str, sign: int) -> sa.ColumnElement:
        return sa.cast(sign * sa.func.sum(sa.case((x.c.purpose == purpose, x.c.amount), else_=0)), sa.BigInteger)

    agg = (sa.select(x.c.operator_id, sa.func.max(x.c.ticket_id).label("ticket_id"), x.c.leg_id, x.c.line_kind,
                     total("close", 1).label("g"), total("refund", -1).label("r"),
                     total("commission", -1).label("c"), total("adjustment", -1).label("a"))
           .group_by(x.c.operator_id, x.c.leg_id, x.c.line_kind)).subquery("agg")
    regular = agg.c.line_kind == "regular"
    net = agg.c.g - agg.c.r - agg.c.c + agg.c.a
    return sa.select(
        sa.literal(run_id), agg.c.operator_id, agg.c.ticket_id, agg.c.leg_id, agg.c.line_kind,
        sa.case((regular, agg.c.g), else_=0), sa.case((regular, agg.c.r), else_=0),
        sa.case((regular, agg.c.c), else_=0), sa.case((regular, agg.c.a), else_=net), net,
    )


def canonical_line(operator_id: str, ticket_id: str | None, leg_id: str, kind: str, gross: int, refunds: int,
                   commission: int, adjustments: int, net: int) -> str:
    return f"{operator_id}|{ticket_id or ''}|{leg_id}|{kind}|{gross}|{refunds}|{commission}|{adjustments}|{net}\n"


def digest_lines(period_start: dt.date, period_end: dt.date, currency: str, rows: Iterable[tuple]) -> str:
    """sha256 hex over the header and the canonical lines, in the order given (callers sort)."""
    h = hashlib.sha256(f"{period_start.isoformat()}|{period_end.isoformat()}|{currency}\n".encode())
    for row in rows:
        h.update(canonical_line(*row[:4], *(int(v) for v in row[4:9])).encode())
    return h.hexdigest()


def _ordered(session: Session, cols: list[sa.ColumnElement]) -> list[sa.ColumnElement]:
    # Code-point order on both backends (PostgreSQL's default collation is locale-dependent).
    if session.get_bind().dialect.name == "postgresql":
        return [sa.collate(c, "C") for c in cols]
    return cols


def _stored_select(run_id: str) -> sa.Select:
    SL = SettlementLine
    return (sa.select(SL.operator_id, SL.ticket_id, SL.leg_id, SL.kind, *[getattr(SL, c) for c in _AMOUNTS])
            .where(SL.run_id == run_id))


def _digest(session: Session, period_start: dt.date, period_end: dt.date, currency: str, rows: sa.Select, *,
            count: int | None = None) -> str:
    """`digest_lines` over ``rows`` (operator_id, ticket_id, leg_id, kind, gross .. net) in canonical order.

    PostgreSQL hashes on the server (one string_agg + sha256, no row crosses the wire) up to
    `_SERVER_DIGEST_MAX_LINES` lines; otherwise the rows are streamed and hashed here. Both give the same value
    (tested).
    """
    q = rows.subquery("d")
    c = list(q.c)
    if session.get_bind().dialect.name == "postgresql":
        if count is None:
            count = session.execute(sa.select(sa.func.count()).select_from(q)).scalar_one()
        if count <= _SERVER_DIGEST_MAX_LINES:
            from sqlalchemy.dialects.postgresql import aggregate_order_by

            text = sa.func.concat_ws("|", c[0], sa.func.coalesce(c[1], ""), c[2], c[3], *c[4:9]).op("||")("\n")
            agg = sa.func.string_agg(text, aggregate_order_by(sa.literal_column("''"),
                                                              *_ordered(session, [c[0], c[2], c[3]])))
            header = f"{period_start.isoformat()}|{period_end.isoformat()}|{currency}\n"
            stmt = sa.select(sa.func.encode(sa.func.sha256(sa.func.convert_to(
                sa.literal(header).op("||")(sa.func.coalesce(agg, "")), "UTF8")), "hex"))
            return str(session.execute(stmt).scalar_one())
    ordered = sa.select(*c).order_by(*_ordered(session, [c[0], c[2], c[3]]))
    stream = (tuple(r) for r in session.execute(ordered.execution_options(yield_per=20_000)))
    return digest_lines(period_start, period_end, currency, stream)


#: string_agg builds one text value (limit 1 GB); ~80 bytes a line leaves a wide margin.
_SERVER_DIGEST_MAX_LINES = 5_000_000


def stored_digest(session: Session, run_id: str, *, server: bool = True) -> str:
    """The digest of the run's stored lines (``server=False``: always hashed in Python, the reference)."""
    run = get_run(session, run_id)
    if server:
        return _digest(session, run.period_start, run.period_end, run.currency, _stored_select(run_id),
                       count=run.lines)
    SL = SettlementLine
    stmt = _stored_select(run_id).order_by(*_ordered(session, [SL.operator_id, SL.leg_id, SL.kind]))
    return digest_lines(run.period_start, run.period_end, run.currency, (tuple(r) for r in session.execute(stmt)))


def recompute_digest(session: Session, run_id: str) -> str:
    """The digest rebuilt from the journal (not from the stored lines); equals the run's when nothing drifted."""
    run = get_run(session, run_id)
    if session.get_bind().dialect.name == "postgresql":
        _pg_memory(session)
    q = _lines_from_journal(run_id, run.period_start).subquery("q")
    # The journal should give run.lines lines; when it drifted, the digest differs whichever way it is hashed.
    return _digest(session, run.period_start, run.period_end, run.currency, sa.select(*list(q.c)[1:]),
                   count=run.lines)


def statement_lines(session: Session, run_id: str, operator_id: str, *, offset: int = 0,
                    limit: int | None = None) -> list[SettlementLine]:
    """The operator's lines in the run, by leg id."""
    get_run(session, run_id)
    stmt = (select(SettlementLine).where(SettlementLine.run_id == run_id, SettlementLine.operator_id == operator_id)
            .order_by(*_ordered(session, [SettlementLine.leg_id, SettlementLine.kind])).offset(offset))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt).all())


def operator_totals(session: Session, run_id: str, operator_id: str) -> RunOperator:
    """The operator's totals in the run (zeros when it has no line in it)."""
    row = session.get(RunOperator, (run_id, operator_id))
    return row or RunOperator(run_id=run_id, operator_id=operator_id, gross=0, refunds=0, commission=0,
                              adjustments=0, net_payable=0, lines=0)


def list_runs(session: Session, *, limit: int = 100) -> list[SettlementRun]:
    stmt = select(SettlementRun).order_by(SettlementRun.period_start.desc()).limit(limit)  # type: ignore[attr-defined]
    return list(session.exec(stmt).all())
