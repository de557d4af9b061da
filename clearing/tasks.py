"""Scheduled clearing work, for the shell to register as jobs (`maas jobs run`).

Register with ``maas.jobs.job("clearing.settle_daily")(lambda session, settings, now:
clearing.tasks.settle_previous_day(session, now=now))``: idempotent (the run of a
period is created once; later calls return it), one transaction per call.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from clearing import settlement
from clearing.clock import local_date


def settle_previous_day(session: Session, *, now: dt.datetime, currency: str = "CNY") -> str:
    """Close yesterday (T+1, in the clearing time zone) unless it is closed already; returns a summary line."""
    today = local_date(now)
    run, created = settlement.run_settlement(session, period_start=today - dt.timedelta(days=1), period_end=today,
                                             currency=currency, actor_id="job:clearing.settle_daily", now=now)
    verb = "closed" if created else "already closed"
    return f"{run.period_start.isoformat()} {verb}: run {run.run_id}, {run.lines} lines, net {run.net_payable}"
