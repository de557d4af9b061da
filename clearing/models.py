"""Tables of the clearing package (prefix ``clearing_``).

Money is integer minor units (``BIGINT``) of the entry's or run's currency.

The journal (``clearing_journal_entries`` + ``clearing_journal_lines``) is
append-only: the migration installs triggers refusing UPDATE and DELETE on
both backends and, on PostgreSQL, a statement-level trigger refusing any
INSERT whose lines do not sum to zero per entry. Debits are positive,
credits negative. Balances are sums over lines, never stored.

Settlement results (runs, their entries, lines and operator totals) are
written once, in the run's transaction, and are also append-only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

#: BIGINT on PostgreSQL; INTEGER on SQLite so that an integer primary key is the rowid (autoincrement).
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id(length: int) -> sa.types.TypeEngine:
    """An opaque id: byte-order collation on PostgreSQL (fast index comparisons, the digest's code-point order)."""
    return sa.String(length, collation="C").with_variant(sa.String(length), "sqlite")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(**kw: Any) -> Any:
    return Field(default_factory=_utcnow, sa_type=sa.DateTime(timezone=True), **kw)


class Account(SQLModel, table=True):
    """A ledger account: ``platform:cash``, ``operator:<id>:payable`` … (see `clearing.ledger`)."""

    __tablename__ = "clearing_accounts"

    account_id: str = Field(primary_key=True, sa_type=_id(100))
    kind: str = Field(sa_type=_id(32))
    operator_id: str | None = Field(default=None, sa_type=_id(64), index=True)
    created_at: dt.datetime = _ts()


class JournalEntry(SQLModel, table=True):
    """One business event's posting. ``event_key`` makes posting idempotent (``sale:<ticket_id>`` …)."""

    __tablename__ = "clearing_journal_entries"

    entry_id: int | None = Field(default=None, primary_key=True, sa_type=BigInt)
    event_key: str = Field(sa_type=_id(160), unique=True)
    #: sale | recognition | refund | adjustment | settlement
    kind: str = Field(sa_type=_id(16))
    currency: str = Field(sa_type=_id(3))
    #: The date the event counts on for settlement (service date, refund date …) in the clearing time zone.
    effective_date: dt.date
    posted_at: dt.datetime = _ts()
    memo: str | None = Field(default=None, max_length=200)


class JournalLine(SQLModel, table=True):
    """One line of an entry: +debit / -credit on an account, tagged with what it is for."""

    __tablename__ = "clearing_journal_lines"
    __table_args__ = (
        # A leg is closed (recognised or refunded) exactly once, whatever races the callers run.
        sa.Index("uq_clearing_lines_leg_closed", "leg_id", unique=True,
                 postgresql_where=sa.text("purpose = 'close'"), sqlite_where=sa.text("purpose = 'close'")),
    )

    entry_id: int = Field(primary_key=True, sa_type=BigInt, sa_column_kwargs={"autoincrement": False})
    line_no: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    account_id: str = Field(sa_type=_id(100))
    amount: int = Field(sa_type=sa.BigInteger)
    #: sale | close | payable | commission | refund | adjustment | adjustment_cost | payout
    purpose: str = Field(sa_type=_id(16))
    operator_id: str | None = Field(default=None, sa_type=_id(64))
    ticket_id: str | None = Field(default=None, sa_type=_id(64))
    leg_id: str | None = Field(default=None, sa_type=_id(64))


class ClearingLeg(SQLModel, table=True):
    """A sold ticket leg as clearing knows it: its operator, service date and apportioned share."""

    __tablename__ = "clearing_legs"

    leg_id: str = Field(primary_key=True, sa_type=_id(64))
    ticket_id: str = Field(sa_type=_id(64), index=True)
    order_id: str = Field(sa_type=_id(64))
    position: int
    operator_id: str = Field(sa_type=_id(64))
    service_date: dt.date
    currency: str = Field(sa_type=_id(3))
    share: int = Field(sa_type=sa.BigInteger)
    distance_m: int | None = None
    standalone_fare: int | None = Field(default=None, sa_type=sa.BigInteger)
    agreement_id: str = Field(sa_type=_id(64))


class Validation(SQLModel, table=True):
    """Our record of a leg's use (from ticketing), matched against an operator's upload."""

    __tablename__ = "clearing_validations"
    __table_args__ = (
        # the recognition job's queue: only uses still to be recognised are indexed
        sa.Index("ix_clearing_validations_pending", "used_at", postgresql_where=sa.text("pending"),
                 sqlite_where=sa.text("pending")),
    )

    leg_id: str = Field(primary_key=True, sa_type=_id(64))
    ticket_id: str = Field(sa_type=_id(64))
    operator_id: str = Field(sa_type=_id(64), index=True)
    used_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)
    gate_id: str | None = Field(default=None, sa_type=_id(64))
    #: recorded by `clearing.interface.queue_use`, its recognition not posted yet (`recognise_pending_uses`)
    pending: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class AgreementRow(SQLModel, table=True):
    """An apportionment agreement, stored as data (see `clearing.apportionment.Agreement`)."""

    __tablename__ = "clearing_agreements"

    agreement_id: str = Field(primary_key=True, sa_type=_id(64))
    method: str = Field(max_length=20)
    #: Sorted list of operator ids, or null for a network-wide agreement.
    operator_ids: list[str] | None = Field(default=None, sa_type=sa.JSON)
    fixed_amounts: dict[str, int] = Field(default_factory=dict, sa_type=sa.JSON)
    remainder_operator: str | None = Field(default=None, sa_type=_id(64))
    shares_bp: dict[str, int] = Field(default_factory=dict, sa_type=sa.JSON)
    discount_borne_by: str | None = Field(default=None, sa_type=_id(64))
    valid_from: dt.date
    valid_until: dt.date | None = None
    priority: int = 0
    created_at: dt.datetime = _ts()


class CommissionTerm(SQLModel, table=True):
    """The platform's commission on an operator's recognised legs: basis points of the share plus a fixed fee."""

    __tablename__ = "clearing_commission_terms"

    term_id: str = Field(primary_key=True, sa_type=_id(64))
    operator_id: str = Field(sa_type=_id(64), index=True)
    rate_bp: int = 0
    fixed_per_leg: int = Field(default=0, sa_type=sa.BigInteger)
    valid_from: dt.date
    valid_until: dt.date | None = None
    created_at: dt.datetime = _ts()


class SettlementRun(SQLModel, table=True):
    """A closed settlement period ``[period_start, period_end)``; written once, complete."""

    __tablename__ = "clearing_settlement_runs"
    __table_args__ = (sa.UniqueConstraint("period_start", "period_end", "currency", name="uq_clearing_run_period"),)

    run_id: str = Field(primary_key=True, sa_type=_id(40))
    period_start: dt.date
    period_end: dt.date
    currency: str = Field(sa_type=_id(3))
    status: str = Field(default="closed", max_length=16)
    digest: str = Field(max_length=64)
    gross: int = Field(sa_type=sa.BigInteger)
    refunds: int = Field(sa_type=sa.BigInteger)
    commission: int = Field(sa_type=sa.BigInteger)
    adjustments: int = Field(sa_type=sa.BigInteger)
    net_payable: int = Field(sa_type=sa.BigInteger)
    lines: int
    payout_entry_id: int | None = Field(default=None, sa_type=BigInt)
    created_by: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = _ts()


class SettleQueue(SQLModel, table=True):
    """Settleable entries no run has settled yet (a work queue, not the ledger: a run deletes what it settles).

    Keeps a run's work proportional to what is unsettled rather than to the whole history of the journal.
    """

    __tablename__ = "clearing_settle_queue"

    entry_id: int = Field(primary_key=True, sa_type=BigInt, sa_column_kwargs={"autoincrement": False})
    currency: str = Field(sa_type=_id(3))
    effective_date: dt.date


class RunEntry(SQLModel, table=True):
    """Which run settled a journal entry: each entry is settled at most once (primary key)."""

    __tablename__ = "clearing_run_entries"

    entry_id: int = Field(primary_key=True, sa_type=BigInt, sa_column_kwargs={"autoincrement": False})
    run_id: str = Field(sa_type=_id(40), index=True)


class SettlementLine(SQLModel, table=True):
    """One statement line: a ticket leg's figures in a run. ``kind`` is ``regular`` or ``adjustment``
    (events dated before the period that arrived after their period closed).

    The primary key (run, operator, leg, kind) is also the statement's index: an operator's lines by leg id.
    """

    __tablename__ = "clearing_settlement_lines"

    run_id: str = Field(primary_key=True, sa_type=_id(40))
    operator_id: str = Field(primary_key=True, sa_type=_id(64))
    leg_id: str = Field(primary_key=True, sa_type=_id(64))
    kind: str = Field(primary_key=True, sa_type=_id(16))
    ticket_id: str | None = Field(default=None, sa_type=_id(64))
    gross: int = Field(sa_type=sa.BigInteger)
    refunds: int = Field(sa_type=sa.BigInteger)
    commission: int = Field(sa_type=sa.BigInteger)
    adjustments: int = Field(sa_type=sa.BigInteger)
    net: int = Field(sa_type=sa.BigInteger)


class RunOperator(SQLModel, table=True):
    """Per-operator totals of a run."""

    __tablename__ = "clearing_run_operators"

    run_id: str = Field(primary_key=True, sa_type=_id(40))
    operator_id: str = Field(primary_key=True, sa_type=_id(64))
    gross: int = Field(sa_type=sa.BigInteger)
    refunds: int = Field(sa_type=sa.BigInteger)
    commission: int = Field(sa_type=sa.BigInteger)
    adjustments: int = Field(sa_type=sa.BigInteger)
    net_payable: int = Field(sa_type=sa.BigInteger)
    lines: int


class Dispute(SQLModel, table=True):
    """An operator's dispute of one statement line; an admin accepts (posting an adjustment) or rejects it."""

    __tablename__ = "clearing_disputes"

    dispute_id: str = Field(primary_key=True, sa_type=_id(40))
    run_id: str = Field(sa_type=_id(40), index=True)
    operator_id: str = Field(sa_type=_id(64), index=True)
    leg_id: str = Field(sa_type=_id(64))
    line_kind: str = Field(default="regular", sa_type=_id(16))
    reason: str = Field(max_length=1000)
    claimed_amount: int | None = Field(default=None, sa_type=sa.BigInteger)
    status: str = Field(default="open", max_length=16)
    opened_by: str | None = Field(default=None, max_length=64)
    opened_at: dt.datetime = _ts()
    resolution_amount: int | None = Field(default=None, sa_type=sa.BigInteger)
    resolution_note: str | None = Field(default=None, max_length=1000)
    resolved_by: str | None = Field(default=None, max_length=64)
    resolved_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    adjustment_entry_id: int | None = Field(default=None, sa_type=BigInt)
