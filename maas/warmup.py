"""Start-up warm-up: nothing compiles on the request path (issue 14, part 2).

The app's lifespan calls :func:`warm_up` before it reports ready (uvicorn
binds the socket only after the lifespan's start-up, so `/health` answers only
then, with ``ready: true``):

1. the routing kernels' on-disk cache goes to ``<data_dir>/kernel-cache`` for
   an installed package (``NUMBA_CACHE_DIR`` or a source checkout's
   ``__pycache__`` are kept), see :func:`routing.warmup.configure_cache`;
2. every kernel variant is compiled or loaded from that cache on a tiny network
   (:func:`routing.warmup.warm_kernels`, once per process);
3. requests go through the app in process before it listens
   (:func:`prime_requests`): FastAPI builds its per-route state (lazily, on a
   route's first match: ~0.2-0.7 s), and one `/v1/plan` of each kind on the
   served timetable builds its per-timetable data (the time-reversed network of
   arrive-by, the real-time view, the fare tables of the default rider
   category) that the first requests would otherwise build.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import structlog

log = structlog.get_logger("maas.warmup")


def warm_up_default(settings: Any) -> bool:
    """Warm up at start-up? ``MAAS_WARM_UP`` = 1/0 when set, else everywhere but in the test environment
    (the test suite's many short-lived apps; tests of the warm-up ask for it)."""
    value = os.environ.get("MAAS_WARM_UP", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return settings.environment != "test"


async def _asgi_get(app: Any, path: str, params: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One GET through the whole ASGI app, in process (no socket: the server is not listening yet)."""
    from urllib.parse import urlencode

    sent = False
    status = 0
    body = bytearray()

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": urlencode(params or {}).encode(), "server": ("127.0.0.1", 0),
             "client": ("127.0.0.1", 0),
             "headers": [(b"host", b"localhost"), (b"x-request-id", b"warm-up-request")]}
    await app(scope, receive, send)
    return status, bytes(body)


async def prime_requests(app: Any) -> dict[str, Any]:
    """Requests through the app before it listens: the web framework builds its per-route state (FastAPI
    does it on a route's first match) and one `/v1/plan` of each kind builds the per-timetable data of the
    served snapshot (the time-reversed network of arrive-by, the real-time view, the fare tables of the
    default rider category). ``{request: [status, milliseconds]}``."""
    import anyio
    import numpy as np

    from maas.feeds import NoFeeds
    from maas.journeys import now

    out: dict[str, Any] = {}

    async def timed(name: str, path: str, params: dict[str, str] | None = None) -> None:
        started = time.perf_counter()
        status, _ = await _asgi_get(app, path, params)
        out[name] = [status, round((time.perf_counter() - started) * 1000, 1)]

    await timed("unrouted", "/__warm-up__")  # matches no route: every route's state is built on the way
    await timed("health", "/health")

    def stops() -> tuple[str, str, bool] | None:
        try:
            snap = app.state.planner.current()
        except NoFeeds:
            return None
        tt = snap.timetable
        served = np.flatnonzero(np.diff(np.asarray(tt.stop_pattern_offsets)) > 0)
        if served.shape[0] < 2:
            return None
        return str(tt.stop_ids[served[0]]), str(tt.stop_ids[served[-1]]), snap.fares is not None

    found = await anyio.to_thread.run_sync(stops) if getattr(app.state, "load_timetable_on_start", True) else None
    if found is None:
        return out
    origin, destination, fares = found
    at = now(app).replace(microsecond=0)
    base = {"from": origin, "to": destination}
    kinds = {"depart_at": {"depart_at": at.isoformat()},
             "arrive_by": {"arrive_by": (at + dt.timedelta(hours=1)).isoformat()},
             "range": {"depart_at": at.isoformat(), "window_s": "3600"}}
    if fares:
        kinds["fare"] = {"depart_at": at.isoformat(), "optimize": "fare"}
    for kind, params in kinds.items():
        await timed(f"plan_{kind}", "/v1/plan", {**base, **params})
    return out


def warm_up(app: Any) -> dict[str, Any]:
    """Compile or load every routing kernel (blocking: run it in a worker thread)."""
    from routing import warmup as rw

    started = time.perf_counter()
    cache_dir = rw.configure_cache(app.state.settings.data_dir / "kernel-cache")
    kernels = rw.warm_kernels()
    return {"seconds": round(time.perf_counter() - started, 3), "kernel_seconds": kernels["seconds"],
            "kernel_cache_dir": cache_dir, "kernel_signatures": kernels["signatures"]}


async def start_up(app: Any) -> dict[str, Any]:
    """Everything the lifespan does before the app reports ready (see the module docstring)."""
    import anyio

    started = time.perf_counter()
    report = await anyio.to_thread.run_sync(warm_up, app)
    report["primed"] = await prime_requests(app)
    report["seconds"] = round(time.perf_counter() - started, 3)
    log.info("warmup_done", **report)
    return report
