"""Domain errors of the clearing package.

Every error carries a snake_case ``code`` (machine-readable), a human
``message``, an HTTP-like ``status``, a ``details`` dict and ``keep_writes``
(when true the caller's transaction still commits what it wrote). The shell
renders them as ``{"error": {"code", "message", "details"}}``; ``clearing``
itself knows nothing of HTTP.
"""

from __future__ import annotations

from typing import Any


class ClearingError(Exception):
    """Base class of every clearing domain error."""

    code: str = "clearing_error"
    status: int = 400
    keep_writes: bool = False

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None,
                 status: int | None = None, keep_writes: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.keep_writes = keep_writes
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class InvalidRecord(ClearingError):
    """A sale, refund, use or expiry record that cannot be posted as given."""

    code = "invalid_clearing_record"
    status = 422


class UnbalancedEntry(ClearingError):
    """A journal entry whose lines do not sum to zero (or has fewer than two lines)."""

    code = "unbalanced_entry"
    status = 500


class ApportionmentError(ClearingError):
    """The agreement cannot split this ticket (missing distance or fare, operator not covered)."""

    code = "apportionment_failed"
    status = 422


class InvalidAgreement(ClearingError):
    code = "invalid_agreement"
    status = 422


class SaleConflict(ClearingError):
    """The same ticket id was recorded before with different figures."""

    code = "sale_conflict"
    status = 409


class UnknownLeg(ClearingError):
    code = "unknown_leg"
    status = 404


class LegClosed(ClearingError):
    """The leg was already recognised (used or expired) or refunded."""

    code = "leg_closed"
    status = 409


class RefundTooLarge(ClearingError):
    code = "refund_exceeds_paid"
    status = 422


class InvalidPeriod(ClearingError):
    code = "invalid_period"
    status = 422


class PeriodNotEnded(InvalidPeriod):
    """The period ends after the current business day: its entries are not all in yet."""

    code = "period_not_ended"
    status = 422


class PeriodOverlaps(ClearingError):
    """A closed settlement period overlaps the requested one (closed periods are immutable)."""

    code = "period_overlaps"
    status = 409


class RunNotFound(ClearingError):
    code = "run_not_found"
    status = 404


class LineNotFound(ClearingError):
    code = "statement_line_not_found"
    status = 404


class DisputeNotFound(ClearingError):
    code = "dispute_not_found"
    status = 404


class DisputeClosed(ClearingError):
    code = "dispute_closed"
    status = 409


class InvalidCsv(ClearingError):
    """The upload is not a CSV we can read at all (no header, wrong columns, not UTF-8)."""

    code = "invalid_csv"
    status = 422
