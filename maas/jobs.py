"""Background jobs, run by `maas jobs run [NAME]` from a scheduler (cron, systemd timer, k8s CronJob).

Each job is idempotent and runs in its own transaction: running it twice, or
concurrently on two machines, changes nothing the second time. Domain
packages contribute jobs by registering them here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, delete

from maas.db import get_engine, session_scope, utcnow
from maas.errors import NotFound
from maas.models import RefreshToken
from maas.settings import Settings

Job = Callable[[Session, Settings, dt.datetime], Any]
JOBS: dict[str, Job] = {}
#: Jobs run in ascending order: expiries (10-30) before settlement (90), so a run counts what just expired.
ORDER: dict[str, int] = {}


def job(name: str, *, order: int = 50) -> Callable[[Job], Job]:
    def register(fn: Job) -> Job:
        JOBS[name] = fn
        ORDER[name] = order
        return fn

    return register


@job("refresh_tokens.purge")
def purge_refresh_tokens(session: Session, settings: Settings, now: dt.datetime) -> str:
    """Forget refresh tokens that expired more than a day ago (they can never be accepted again)."""
    cutoff = now - dt.timedelta(days=1)
    result = session.exec(delete(RefreshToken).where(RefreshToken.expires_at < cutoff))  # type: ignore[call-overload]
    return f"{result.rowcount or 0} expired refresh tokens purged"


#: Modules that register jobs with `@job` when imported.
JOB_MODULES = ("maas.journeys", "maas.faces")


def load_job_modules() -> None:
    import importlib

    for name in JOB_MODULES:
        importlib.import_module(name)


class UnknownJob(NotFound):
    code = "unknown_job"


def run_jobs(settings: Settings, name: str | None = None, *, now: dt.datetime | None = None) -> dict[str, Any]:
    load_job_modules()
    now = now or utcnow()
    if name is not None and name not in JOBS:
        raise UnknownJob(f"no job named {name!r}; known: {', '.join(sorted(JOBS))}")
    names = [name] if name else sorted(JOBS, key=lambda n: (ORDER[n], n))
    results: dict[str, Any] = {}
    engine = get_engine(settings)
    for job_name in names:
        with session_scope(engine) as session:
            results[job_name] = JOBS[job_name](session, settings, now)
    return results
