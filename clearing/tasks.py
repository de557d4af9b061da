"""Scheduled clearing work, for the shell to register as jobs (`maas jobs run`).

Register with ``maas.jobs.job("clearing.settle_daily")(lambda session, settings, now:
clearing.tasks.settle_previous_day(session, now=now))``: idempotent (the run of a
period is created once; later calls return it), one transaction per call.

``recognise_uses`` (job ``clearing.recognise_uses``) posts the recognition of the
uses gates recorded (`clearing.interface.queue_use`), one committed batch at a
time: a crash loses at most the batch in flight, which the next run does again,
and each use is recognised once (the journal's ``close:<leg_id>`` key).
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from clearing import interface, settlement
from clearing.clock import local_date


def settle_previous_day(session: Session, *, now: dt.datetime, currency: str = "CNY") -> str:
    """Close yesterday (T+1, in the clearing time zone) unless it is closed already; returns a summary line."""
    today = local_date(now)
    run, created = settlement.run_settlement(session, period_start=today - dt.timedelta(days=1), period_end=today,
                                             currency=currency, actor_id="job:clearing.settle_daily", now=now)
    verb = "closed" if created else "already closed"
    return f"{run.period_start.isoformat()} {verb}: run {run.run_id}, {run.lines} lines, net {run.net_payable}"


def recognise_uses(session: Session, *, batch: int = interface.RECOGNITION_BATCH, max_batches: int | None = None,
                   ) -> str:
    """Recognise the pending uses, committing each batch of ``batch``; returns a summary line."""
    uses = posted = batches = 0
    while max_batches is None or batches < max_batches:
        done, p = interface.recognise_batch(session, size=batch, skip_locked=True)
        session.commit()
        uses += done
        posted += p
        batches += 1
        if done < batch:
            break
    return f"{posted} used legs recognised ({uses} uses, {batches} batches)"
