"""Reconciliation: an operator's own validation records (CSV) against ours.

CSV (UTF-8, header row, comma-separated), one row per validation::

    leg_id,ticket_id,gate_id,validated_at,amount

``leg_id`` or ``ticket_id`` (at least one column, and a value in each row;
a ticket id alone matches the operator's only leg on that ticket),
``validated_at`` ISO 8601 with offset, optional ``gate_id`` and ``amount``
(integer minor units, compared with the leg's apportioned share).

The report: ``matched`` (count), ``mismatches`` (amount, time beyond the
tolerance, gate), ``only_theirs`` (their rows we have no use for),
``only_ours`` (our uses of their legs in the compared window that they did not
send) and ``malformed`` rows by line number (the header is line 1). Nothing is
dropped silently: every data row is counted in exactly one of matched,
mismatched, only_theirs, duplicate or malformed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from clearing.clock import CLEARING_TZ
from clearing.errors import InvalidCsv
from clearing.models import ClearingLeg, Validation

MAX_ROWS = 200_000
_ID_COLUMNS = ("leg_id", "ticket_id")
_KNOWN = {"leg_id", "ticket_id", "gate_id", "validated_at", "amount"}


@dataclass
class ReconciliationReport:
    operator_id: str
    window_start: str | None
    window_end: str | None
    rows: int = 0
    matched: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    only_theirs: list[dict[str, Any]] = field(default_factory=list)
    only_ours: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    malformed: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    line: int
    leg_id: str | None
    ticket_id: str | None
    gate_id: str | None
    at: dt.datetime
    amount: int | None


_YEARS = (1970, 2199)  # validated_at: the shell's planning-time bounds (maas.validation)
_MAX_AMOUNT = 10**13  # minor units, the shell's Money bound


def _parse(text: str) -> tuple[list[_Row], list[dict[str, Any]], int]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidCsv("the upload is empty; the first line is the header") from None
    except csv.Error as exc:
        raise InvalidCsv(f"the header line is not valid CSV: {exc}") from None
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    unknown = sorted(set(names) - _KNOWN)
    usable = any(c in names for c in _ID_COLUMNS) and "validated_at" in names and len(set(names)) == len(names)
    if unknown or not usable:
        raise InvalidCsv("the header names leg_id and/or ticket_id, validated_at, and optionally gate_id, amount",
                         details={"header": names, "unknown": unknown})
    rows: list[_Row] = []
    malformed: list[dict[str, Any]] = []
    count = 0
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            count += 1
            malformed.append({"line": reader.line_num, "error": f"not valid CSV: {exc}"})
            continue
        if not raw or all(not c.strip() for c in raw):
            continue  # blank lines are not records
        count += 1
        if count > MAX_ROWS:
            raise InvalidCsv(f"at most {MAX_ROWS} rows per upload")
        line = reader.line_num
        if len(raw) != len(names):
            malformed.append({"line": line, "error": f"expected {len(names)} fields, found {len(raw)}"})
            continue
        rec = {n: v.strip() for n, v in zip(names, raw, strict=True)}
        leg_id, ticket_id = rec.get("leg_id") or None, rec.get("ticket_id") or None
        if leg_id is None and ticket_id is None:
            malformed.append({"line": line, "error": "no leg_id or ticket_id"})
            continue
        try:
            at = dt.datetime.fromisoformat(rec["validated_at"])
        except ValueError:
            malformed.append({"line": line, "error": "validated_at is not an ISO 8601 date-time"})
            continue
        if at.tzinfo is None:
            malformed.append({"line": line, "error": "validated_at has no UTC offset"})
            continue
        if not _YEARS[0] <= at.year <= _YEARS[1]:  # beyond them date arithmetic overflows
            malformed.append({"line": line, "error": f"validated_at is outside the years {_YEARS[0]}-{_YEARS[1]}"})
            continue
        amount = None
        if rec.get("amount"):
            try:
                amount = int(rec["amount"])
            except ValueError:
                malformed.append({"line": line, "error": "amount is not an integer of minor units"})
                continue
            if amount < 0:
                malformed.append({"line": line, "error": "amount is negative"})
                continue
            if amount > _MAX_AMOUNT:
                malformed.append({"line": line, "error": f"amount is larger than {_MAX_AMOUNT}"})
                continue
        rows.append(_Row(line, leg_id, ticket_id, rec.get("gate_id") or None, at, amount))
    return rows, malformed, count


def reconcile(session: Session, *, operator_id: str, csv_text: str, window_start: dt.date | None = None,
              window_end: dt.date | None = None, time_tolerance_s: int = 300) -> ReconciliationReport:
    """Compare the operator's rows with our validations of its legs.

    ``only_ours`` covers our uses in ``[window_start, window_end)`` (dates in the clearing time zone);
    by default the dates spanned by their rows.
    """
    rows, malformed, count = _parse(csv_text)
    if window_start is None and rows:
        window_start = min(r.at.astimezone(CLEARING_TZ).date() for r in rows)
    if window_end is None and rows:
        window_end = max(r.at.astimezone(CLEARING_TZ).date() for r in rows) + dt.timedelta(days=1)
    report = ReconciliationReport(operator_id, window_start.isoformat() if window_start else None,
                                  window_end.isoformat() if window_end else None, rows=count, malformed=malformed)

    leg_ids = {r.leg_id for r in rows if r.leg_id}
    ticket_ids = {r.ticket_id for r in rows if r.ticket_id and not r.leg_id}
    legs: dict[str, ClearingLeg] = {}
    by_ticket: dict[str, list[ClearingLeg]] = {}
    for chunk in _chunks(sorted(leg_ids)):
        for leg in session.exec(select(ClearingLeg).where(ClearingLeg.leg_id.in_(chunk),  # type: ignore[attr-defined]
                                                          ClearingLeg.operator_id == operator_id)):
            legs[leg.leg_id] = leg
    for chunk in _chunks(sorted(ticket_ids)):
        stmt = select(ClearingLeg).where(ClearingLeg.ticket_id.in_(chunk),  # type: ignore[attr-defined]
                                         ClearingLeg.operator_id == operator_id)
        for leg in session.exec(stmt):
            by_ticket.setdefault(leg.ticket_id, []).append(leg)
            legs[leg.leg_id] = leg
    ours: dict[str, Validation] = {}
    for chunk in _chunks(sorted(legs)):
        for v in session.exec(select(Validation).where(Validation.leg_id.in_(chunk))):  # type: ignore[attr-defined]
            ours[v.leg_id] = v

    seen: set[str] = set()
    for row in rows:
        leg_id = row.leg_id
        if leg_id is None:
            candidates = by_ticket.get(row.ticket_id or "", [])
            if len(candidates) != 1:
                report.only_theirs.append({"line": row.line, "ticket_id": row.ticket_id,
                                           "reason": "ticket unknown" if not candidates
                                           else "ticket has several of your legs; send leg_id"})
                continue
            leg_id = candidates[0].leg_id
        leg = legs.get(leg_id)
        ours_v = ours.get(leg_id)
        if leg is None or ours_v is None:
            report.only_theirs.append({"line": row.line, "leg_id": leg_id,
                                       "reason": "leg unknown" if leg is None else "no validation recorded"})
            continue
        if leg_id in seen:
            report.duplicates.append({"line": row.line, "leg_id": leg_id})
            continue
        seen.add(leg_id)
        problems = []
        if row.amount is not None and row.amount != leg.share:
            problems.append({"field": "amount", "theirs": row.amount, "ours": leg.share})
        delta = abs((row.at - ours_v.used_at).total_seconds())
        if delta > time_tolerance_s:
            problems.append({"field": "validated_at", "theirs": row.at.isoformat(),
                             "ours": ours_v.used_at.isoformat(), "seconds_apart": int(delta)})
        if row.gate_id is not None and ours_v.gate_id is not None and row.gate_id != ours_v.gate_id:
            problems.append({"field": "gate_id", "theirs": row.gate_id, "ours": ours_v.gate_id})
        if problems:
            report.mismatches.append({"line": row.line, "leg_id": leg_id, "problems": problems})
        else:
            report.matched += 1

    if window_start is not None and window_end is not None:
        # Stored in UTC (SQLite keeps no offset): compare in UTC.
        lo = dt.datetime.combine(window_start, dt.time(), tzinfo=CLEARING_TZ).astimezone(dt.UTC)
        hi = dt.datetime.combine(window_end, dt.time(), tzinfo=CLEARING_TZ).astimezone(dt.UTC)
        stmt = (sa.select(Validation, ClearingLeg.share).join(ClearingLeg, ClearingLeg.leg_id == Validation.leg_id)
                .where(Validation.operator_id == operator_id, Validation.used_at >= lo, Validation.used_at < hi)
                .order_by(Validation.used_at, Validation.leg_id))
        for v, share in session.execute(stmt):
            if v.leg_id not in seen:
                report.only_ours.append({"leg_id": v.leg_id, "ticket_id": v.ticket_id, "gate_id": v.gate_id,
                                         "validated_at": v.used_at.isoformat(), "amount": int(share)})
    return report


def _chunks(items: list[str], size: int = 500):  # noqa: ANN202
    for i in range(0, len(items), size):
        yield items[i:i + size]
