"""Periods and k-anonymous cells shared by the regulator views."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from clearing.clock import CLEARING_TZ
from maas.errors import MaasError

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
#: The longest period a regulator view aggregates over (days), to keep queries bounded.
MAX_PERIOD_DAYS = 3660
#: Dates outside this range are refused (they cannot be data of this system, and date arithmetic near
#: ``date.min``/``date.max`` would overflow).
EARLIEST, LATEST = dt.date(1970, 1, 1), dt.date(2999, 12, 31)


class InvalidPeriod(MaasError):
    code = "invalid_period"
    status = 422


@dataclass(frozen=True)
class Period:
    """Dates ``[start, end)`` in the clearing time zone (the settlement calendar) and their UTC instants."""

    start: dt.date
    end: dt.date

    @property
    def start_utc(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), CLEARING_TZ).astimezone(dt.UTC)

    @property
    def end_utc(self) -> dt.datetime:
        return dt.datetime.combine(self.end, dt.time(), CLEARING_TZ).astimezone(dt.UTC)

    def to_dict(self) -> dict[str, str]:
        return {"period_start": self.start.isoformat(), "period_end": self.end.isoformat()}


def resolve_period(*, period: str | None, period_start: dt.date | None, period_end: dt.date | None,
                   today: dt.date, default_days: int | None = None) -> Period:
    """``period=YYYY-MM`` (that calendar month) or ``period_start``/``period_end`` (end exclusive).

    Without either: the last ``default_days`` days up to and including ``today``, or the current
    month when ``default_days`` is None. Raises InvalidPeriod on a malformed or empty period.
    """
    for name, value in (("period_start", period_start), ("period_end", period_end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise InvalidPeriod(f"{name} must be between {EARLIEST} and {LATEST}", details={name: value.isoformat()})
    if period is not None:
        if period_start is not None or period_end is not None:
            raise InvalidPeriod("give period=YYYY-MM or period_start/period_end, not both")
        m = _MONTH.match(period)
        if not m:
            raise InvalidPeriod("period must be YYYY-MM", details={"period": period[:20]})
        y, mo = int(m.group(1)), int(m.group(2))
        if not EARLIEST.year <= y < LATEST.year:
            raise InvalidPeriod(f"period must be a month between {EARLIEST.year} and {LATEST.year - 1}",
                                details={"period": period})
        start = dt.date(y, mo, 1)
        end = dt.date(y + (mo == 12), mo % 12 + 1, 1)
        return Period(start, end)
    if period_start is None and period_end is None:
        if default_days is None:
            start = today.replace(day=1)
            return Period(start, dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1))
        return Period(today - dt.timedelta(days=default_days - 1), today + dt.timedelta(days=1))
    end = period_end or today + dt.timedelta(days=1)
    start = period_start or end - dt.timedelta(days=default_days or 30)
    if end <= start:
        raise InvalidPeriod("period_end must be after period_start (the end is exclusive)",
                            details={"period_start": start.isoformat(), "period_end": end.isoformat()})
    if (end - start).days > MAX_PERIOD_DAYS:
        raise InvalidPeriod(f"a period is at most {MAX_PERIOD_DAYS} days")
    return Period(start, end)


def share(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator`` rounded to 4 decimals; None when there is nothing to divide by."""
    return round(numerator / denominator, 4) if denominator else None


def count_cell(n: int, k: int) -> dict[str, Any]:
    """A count, suppressed (``value: null``) when it is 1..k-1: small groups could single people out."""
    if 0 < n < k:
        return {"value": None, "suppressed": True}
    return {"value": int(n), "suppressed": False}


def rate_cell(numerator: int, denominator: int, k: int) -> dict[str, Any]:
    """A ratio, suppressed when either count is 1..k-1 (the ratio would reveal the small count)."""
    if 0 < numerator < k or 0 < denominator < k:
        return {"value": None, "suppressed": True}
    return {"value": share(numerator, denominator), "suppressed": False}


def amount_cell(amount: int, n: int, k: int) -> dict[str, Any]:
    """A money total over ``n`` items (minor units), suppressed with its count."""
    if 0 < n < k:
        return {"value": None, "suppressed": True}
    return {"value": int(amount), "suppressed": False}
