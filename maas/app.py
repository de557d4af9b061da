"""The FastAPI app factory: the composition root of the HTTP API."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import structlog
from fastapi import Depends, FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maas import __version__
from maas.api import (
    admin,
    audit,
    auth,
    faces,
    gates,
    health,
    offers,
    orders,
    payments,
    plan,
    reconciliation,
    refund_quote,
    regulator,
    settlements,
    stops,
    tickets,
)
from maas.db import get_engine
from maas.errors import error_body, install_error_handlers
from maas.logging import configure_logging
from maas.planner import Planner
from maas.ratelimit import parse_limits
from maas.redis_client import get_redis
from maas.settings import Settings, get_settings
from maas.validation import refuse_unsafe_input

log = structlog.get_logger("maas.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    """Request ids, one access-log line per request, and the request-body size limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = secrets.token_hex(8)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send_with_id)
            self._log(scope, status_holder["status"], started)
            return

        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    raise _BodyTooLarge(self.max_body_bytes)
            return message

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            await self._too_large(send_with_id)
        finally:
            # The request id stays bound (each request clears it first): an unhandled error is answered and
            # logged by the outer error middleware and the server after this, and both carry it.
            self._log(scope, status_holder["status"], started)

    async def _too_large(self, send: Send) -> None:
        import json

        body = json.dumps(error_body("payload_too_large",
                                     f"the request body is larger than {self.max_body_bytes} bytes")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        log.info("request", method=scope.get("method"), path=scope.get("path"), status=status,
                 duration_ms=round((time.perf_counter() - started) * 1000, 2))


class _BodyTooLarge(StarletteHTTPException):
    """A streamed (chunked) body past the limit. An HTTPException, so that FastAPI's body parsing and routes
    reading the body themselves let it through to the error handler (413 ``payload_too_large``) instead of
    turning it into a 400; the middleware answers it itself if it escapes the app."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is larger than {limit} bytes")


def create_app(settings: Settings | None = None, *, load_timetable: bool = True,
               warm_up: bool | None = None) -> FastAPI:
    """``warm_up``: compile or load every routing kernel and prime the timetable before the app reports
    ready (maas.warmup); default: ``MAAS_WARM_UP`` (1/0), else everywhere but in the test environment."""
    from maas.warmup import warm_up_default

    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("startup", version=__version__, database=settings.database_backend, redis=settings.redis_backend)
        if app.state.load_timetable_on_start:
            # Compute-heavy (first compile) or I/O (cache map): off the event loop.
            await anyio.to_thread.run_sync(app.state.planner.refresh)
        if app.state.warm_up_on_start:
            from maas.warmup import start_up

            app.state.warmup = await start_up(app)
        app.state.ready = True
        yield

    # Production serves no API documentation unless MAAS_EXPOSE_DOCS=true (`python -m maas.openapi` still
    # writes the document).
    docs = settings.docs_enabled
    app = FastAPI(
        title="MaaS backend", version=__version__, lifespan=lifespan,
        # Every route: no control characters in path, query or JSON body, JSON integers within 64 bits.
        dependencies=[Depends(refuse_unsafe_input)],
        description="Journey planning, multi-operator e-ticketing and revenue clearing (出行即服务).",
        docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        swagger_ui_oauth2_redirect_url="/docs/oauth2-redirect" if docs else None,
    )
    configure_logging(settings.log_level, settings.log_json)
    app.state.settings = settings
    app.state.engine = get_engine(settings)
    app.state.redis = get_redis(settings)
    app.state.rate_limits = parse_limits(settings.rate_limits)
    app.state.planner = Planner(settings, app.state.engine)
    app.state.load_timetable_on_start = load_timetable
    app.state.warm_up_on_start = warm_up_default(settings) if warm_up is None else warm_up
    app.state.ready = False  # set once the lifespan's start-up (timetable, warm-up) is done
    app.state.warmup = None
    app.state.timetable_info = app.state.planner.info
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    for module in (health, auth, admin, audit, plan, offers, orders, payments, tickets, faces, gates, settlements,
                   reconciliation, regulator):
        app.include_router(module.router)
    app.include_router(auth.me_router)
    app.include_router(plan.realtime_router)
    app.include_router(stops.router)
    app.include_router(refund_quote.router)

    from maas.web import mount as mount_web  # the /app front ends (HTML shells over this API)

    mount_web(app)
    return app
