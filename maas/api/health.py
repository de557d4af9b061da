"""GET /health: liveness, versions and the backends in use."""

from __future__ import annotations

import platform

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel

from maas import __version__
from maas.redis_client import redis_ok

router = APIRouter(tags=["health"])


class Backend(BaseModel):
    kind: str
    ok: bool


class HealthOut(BaseModel):
    status: str
    #: null in production unless ``MAAS_EXPOSE_VERSION=true``.
    version: str | None
    python: str | None
    environment: str
    database: Backend
    redis: Backend
    timetable: dict | None = None
    #: true once start-up is done: timetable loaded, every routing kernel compiled (no compile on requests)
    ready: bool = False
    #: what the start-up warm-up did (maas.warmup): seconds, kernel cache directory, primed searches
    warmup: dict | None = None


@router.get("/health", response_model=HealthOut)
def health(request: Request) -> HealthOut:
    state = request.app.state
    try:
        with state.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        db_ok = True
    except sa.exc.SQLAlchemyError:
        db_ok = False
    r_ok = redis_ok(state.redis)
    timetable = getattr(state, "timetable_info", None)
    return HealthOut(
        status="ok" if db_ok and r_ok else "degraded", version=__version__ if state.settings.version_exposed else None,
        python=platform.python_version() if state.settings.version_exposed else None,
        environment=state.settings.environment,
        database=Backend(kind=state.settings.database_backend, ok=db_ok),
        redis=Backend(kind=state.settings.redis_backend, ok=r_ok),
        timetable=timetable() if callable(timetable) else timetable,
        ready=bool(getattr(state, "ready", False)), warmup=getattr(state, "warmup", None),
    )
