"""`ticketing.reports.operator_stats`: validations bucketed by local day exactly, also across a daylight-saving
change (the buckets are the UTC instants of each local midnight), on both backends; only the operator's own."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ticketing.models import GateValidation
from ticketing.reports import operator_stats

PARIS = ZoneInfo("Europe/Paris")


def _scan(session, operator_id: str, at: dt.datetime, result: str = "accepted") -> None:  # noqa: ANN001
    session.add(GateValidation(gate_id="g1", operator_id=operator_id, stop_id="s", result=result, method="qr",
                               scanned_at=at.astimezone(dt.UTC)))


def test_validations_by_local_day_across_a_daylight_saving_change(session) -> None:  # noqa: ANN001
    # the last Sunday of March: clocks go from 02:00 to 03:00 (a 23-hour day) in Paris
    year = (dt.datetime.now(dt.UTC)).year
    sunday = max(dt.date(year, 3, d) for d in range(25, 32) if dt.date(year, 3, d).weekday() == 6)
    sat, mon = sunday - dt.timedelta(days=1), sunday + dt.timedelta(days=1)
    local = lambda day, h, m=0: dt.datetime.combine(day, dt.time(h, m), PARIS)  # noqa: E731
    _scan(session, "op", local(sat, 23, 59))  # Saturday, 22:59 UTC
    _scan(session, "op", local(sunday, 0, 30))  # Sunday, 23:30 UTC on Saturday
    _scan(session, "op", local(sunday, 23, 30), result="rejected")  # Sunday, 21:30 UTC (UTC+2 now)
    _scan(session, "op", local(mon, 0, 10))  # Monday, 22:10 UTC on Sunday
    _scan(session, "other", local(sunday, 12))  # another operator's gate
    session.flush()
    stats = operator_stats(session, operator_id="op", start=sat, end=mon + dt.timedelta(days=1), tz=PARIS)
    assert [(r.key, r.validations, r.rejected) for r in stats.rows] == [
        (sat.isoformat(), 1, 0), (sunday.isoformat(), 1, 1), (mon.isoformat(), 1, 0)]
    assert (stats.totals.validations, stats.totals.rejected) == (3, 1)
    # the period's edges are local midnights too
    only_sunday = operator_stats(session, operator_id="op", start=sunday, end=mon, tz=PARIS)
    assert [(r.validations, r.rejected) for r in only_sunday.rows] == [(1, 1)]


def test_bad_periods_are_refused(session) -> None:  # noqa: ANN001
    day = dt.date(2026, 1, 1)
    with pytest.raises(ValueError):
        operator_stats(session, operator_id="op", start=day, end=day, tz=PARIS)
    with pytest.raises(ValueError):
        operator_stats(session, operator_id="op", start=day, end=day + dt.timedelta(days=367), tz=PARIS)
