"""The double-entry ledger: accounts, balanced postings, derived balances.

Accounts (ids are readable strings)::

    platform:cash                 money collected from passengers (asset)
    platform:commission           the platform's commission revenue
    platform:refunds              refunds owed back to passengers
    platform:adjustments          the cost of adjustments granted to operators
    operator:<id>:deferred        sold but not yet earned (leg unused, unexpired)
    operator:<id>:payable         earned, owed to the operator until a settlement pays it

Sign: debit positive, credit negative; each entry's lines sum to zero. An
entry is posted in the caller's transaction, so a business event and its
ledger entry commit or roll back together.

What each business event posts (s = the leg's apportioned share):

- sale of a ticket paid P: Dr cash P; Cr deferred(op) s per leg.
- use or expiry of a leg (recognition), commission c:
  Dr deferred s (``close``); Cr payable s-c (``payable``); Cr commission c.
- refund r of a leg: Dr deferred s (``close``); Cr payable s-r; Cr refunds r.
- adjustment a (dispute resolution): Dr adjustments a; Cr payable a.
- settlement payout of net n: Dr payable n; Cr cash n.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from clearing.errors import InvalidRecord, UnbalancedEntry
from clearing.models import Account, JournalEntry, JournalLine, SettleQueue

CASH = "platform:cash"
COMMISSION = "platform:commission"
REFUNDS = "platform:refunds"
ADJUSTMENTS = "platform:adjustments"
PLATFORM_ACCOUNTS = {CASH: "cash", COMMISSION: "commission_revenue", REFUNDS: "refunds_payable",
                     ADJUSTMENTS: "adjustments_expense"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
#: Entry kinds a settlement run picks up (queued in ``clearing_settle_queue`` when posted).
SETTLEABLE_KINDS = ("recognition", "refund", "adjustment")

# Lines are inserted in statements of this many rows at most; each statement carries whole entries only.
_LINES_PER_STATEMENT = 500


def deferred(operator_id: str) -> str:
    return f"operator:{operator_id}:deferred"


def payable(operator_id: str) -> str:
    return f"operator:{operator_id}:payable"


@dataclass(frozen=True)
class Line:
    """One posting line. ``amount``: int minor units, debit > 0 > credit."""

    account_id: str
    amount: int
    purpose: str
    operator_id: str | None = None
    ticket_id: str | None = None
    leg_id: str | None = None


@dataclass(frozen=True)
class NewEntry:
    event_key: str
    kind: str
    currency: str
    effective_date: dt.date
    lines: Sequence[Line]
    memo: str | None = None


def check_balanced(entry: NewEntry) -> None:
    """Raise `UnbalancedEntry` unless the entry has >= 2 integer lines summing to zero in one currency."""
    if not _CURRENCY.match(entry.currency or ""):
        raise InvalidRecord("currency is an ISO 4217 code such as CNY", details={"currency": entry.currency})
    if len(entry.lines) < 2:
        raise UnbalancedEntry("a journal entry has at least two lines", details={"event_key": entry.event_key})
    if any(not isinstance(line.amount, int) or isinstance(line.amount, bool) for line in entry.lines):
        raise UnbalancedEntry("journal amounts are integers (minor units)", details={"event_key": entry.event_key})
    total = sum(line.amount for line in entry.lines)
    if total != 0:
        raise UnbalancedEntry("journal entry does not balance", details={"event_key": entry.event_key,
                                                                         "sum": total})


def _account_kind(account_id: str) -> tuple[str, str | None]:
    if account_id in PLATFORM_ACCOUNTS:
        return PLATFORM_ACCOUNTS[account_id], None
    parts = account_id.split(":")
    if len(parts) == 3 and parts[0] == "operator" and parts[2] in ("deferred", "payable"):
        return parts[2], parts[1]
    raise InvalidRecord(f"unknown ledger account {account_id!r}")


def ensure_accounts(session: Session, account_ids: set[str]) -> None:
    """Open the accounts not opened yet (accounts are opened on first use)."""
    if not account_ids:
        return
    existing = set(session.exec(select(Account.account_id).where(Account.account_id.in_(sorted(account_ids)))).all())
    missing = sorted(account_ids - existing)
    if not missing:
        return
    rows = []
    for account_id in missing:
        kind, operator_id = _account_kind(account_id)
        rows.append({"account_id": account_id, "kind": kind, "operator_id": operator_id})
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # Two transactions may open the same account at once: the second one simply finds it there.
    session.execute(insert(Account).values(rows).on_conflict_do_nothing(index_elements=["account_id"]))


def find_entry(session: Session, event_key: str) -> JournalEntry | None:
    return session.exec(select(JournalEntry).where(JournalEntry.event_key == event_key)).first()


def post(session: Session, entry: NewEntry) -> int:
    """Append one balanced entry; returns its ``entry_id``. Flushes, never commits."""
    return post_many(session, [entry])[0]


def post_many(session: Session, entries: Sequence[NewEntry]) -> list[int]:
    """Append several balanced entries (each checked); returns their ids in order."""
    if not entries:
        return []
    for entry in entries:
        check_balanced(entry)
    ensure_accounts(session, {line.account_id for entry in entries for line in entry.lines})
    # All headers in one INSERT ... RETURNING (ids in the order given), then the lines in multi-row statements.
    posted_at = dt.datetime.now(dt.UTC)
    headers = [{"event_key": e.event_key, "kind": e.kind, "currency": e.currency, "effective_date": e.effective_date,
                "posted_at": posted_at, "memo": e.memo} for e in entries]
    table = JournalEntry.__table__
    ids: list[int] = [int(i) for i in session.execute(
        sa.insert(table).returning(table.c.entry_id, sort_by_parameter_order=True), headers).scalars().all()]
    rows: list[dict] = []
    queued: list[dict] = []
    for entry, entry_id in zip(entries, ids, strict=True):
        if entry.kind in SETTLEABLE_KINDS:
            queued.append({"entry_id": entry_id, "currency": entry.currency,
                           "effective_date": entry.effective_date})
        entry_rows = [
            {"entry_id": entry_id, "line_no": n, "account_id": line.account_id, "amount": line.amount,
             "purpose": line.purpose, "operator_id": line.operator_id, "ticket_id": line.ticket_id,
             "leg_id": line.leg_id}
            for n, line in enumerate(entry.lines)
        ]
        if rows and len(rows) + len(entry_rows) > _LINES_PER_STATEMENT:
            _insert_lines(session, rows)
            rows = []
        rows.extend(entry_rows)
    if rows:
        _insert_lines(session, rows)
    if queued:
        session.execute(sa.insert(SettleQueue).values(queued))
    return ids


def _insert_lines(session: Session, rows: list[dict]) -> None:
    # One multi-row VALUES statement (not executemany): PostgreSQL's balance trigger sees whole entries.
    session.execute(sa.insert(JournalLine).values(rows))


def balances(session: Session, *, currency: str | None = None) -> dict[str, int]:
    """Every account's balance (debit positive), derived from the journal."""
    stmt = (sa.select(JournalLine.account_id, sa.func.sum(JournalLine.amount))
            .join(JournalEntry, JournalEntry.entry_id == JournalLine.entry_id)
            .group_by(JournalLine.account_id))
    if currency is not None:
        stmt = stmt.where(JournalEntry.currency == currency)
    return {account: int(total) for account, total in session.execute(stmt).all()}


def balance(session: Session, account_id: str, *, currency: str | None = None) -> int:
    stmt = (sa.select(sa.func.coalesce(sa.func.sum(JournalLine.amount), 0))
            .join(JournalEntry, JournalEntry.entry_id == JournalLine.entry_id)
            .where(JournalLine.account_id == account_id))
    if currency is not None:
        stmt = stmt.where(JournalEntry.currency == currency)
    return int(session.execute(stmt).scalar_one())


def unbalanced_entries(session: Session, *, limit: int = 10) -> list[int]:
    """Ids of entries whose lines do not sum to zero (an audit check; always empty)."""
    stmt = (sa.select(JournalLine.entry_id).group_by(JournalLine.entry_id)
            .having(sa.func.sum(JournalLine.amount) != 0).limit(limit))
    return [int(r) for r in session.execute(stmt).scalars().all()]
