"""One error hierarchy, one renderer.

`MaasError` is the shell's base; the domain packages have their own bases
(`routing.errors.RoutingError`, `ticketing.errors.TicketingError`,
`clearing.errors.ClearingError`) with the same attributes: ``code``
(snake_case, machine-readable), ``message`` (for people), ``status`` and
``details``. `install_error_handlers` renders all of them, request
validation errors and HTTP errors in the contract's shape::

    {"error": {"code": "...", "message": "...", "details": {...}}}

Anything else is a bug and stays a 500 (logged with its request id), never a
disguised 4xx.
"""

from __future__ import annotations

from typing import Any

import redis
import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("maas.errors")


class MaasError(Exception):
    code: str = "error"
    status: int = 400
    #: When true, the transaction that raised the error still commits what it wrote (e.g. a revocation
    #: that must outlive the refused request). `maas.db.session_scope` honours it for any exception.
    keep_writes: bool = False

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None,
                 status: int | None = None, keep_writes: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.keep_writes = keep_writes
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class NotFound(MaasError):
    code = "not_found"
    status = 404


class Conflict(MaasError):
    code = "conflict"
    status = 409


class Unauthorized(MaasError):
    code = "unauthorized"
    status = 401


class InvalidToken(Unauthorized):
    code = "invalid_token"


class TokenExpired(Unauthorized):
    code = "token_expired"


class TokenRevoked(Unauthorized):
    code = "token_revoked"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class Forbidden(MaasError):
    code = "forbidden"
    status = 403


class AlreadyExists(Conflict):
    code = "already_exists"


class BadRequest(MaasError):
    code = "bad_request"
    status = 400


class PayloadTooLarge(MaasError):
    code = "payload_too_large"
    status = 413


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(code: str, message: str, status: int, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def domain_error_classes() -> tuple[type[Exception], ...]:
    """The base classes whose instances carry code/message/status/details."""
    classes: list[type[Exception]] = [MaasError]
    for module, name in (("routing.errors", "RoutingError"), ("ticketing.errors", "TicketingError"),
                         ("clearing.errors", "ClearingError")):
        try:
            mod = __import__(module, fromlist=[name])
        except ImportError:
            continue
        cls = getattr(mod, name, None)
        if cls is not None:
            classes.append(cls)
    return tuple(classes)


def render_domain_error(exc: Exception) -> JSONResponse:
    status = int(getattr(exc, "status", 400))
    code = str(getattr(exc, "code", "error"))
    message = str(getattr(exc, "message", None) or exc)
    details = getattr(exc, "details", None) or {}
    headers = getattr(exc, "headers", None)
    return error_response(code, message, status, details, headers)


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    fields = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        fields.append({"field": ".".join(loc), "type": err.get("type"), "message": err.get("msg")})
    return {"fields": fields}


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        return render_domain_error(exc)

    for cls in domain_error_classes():
        app.add_exception_handler(cls, on_domain_error)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response("malformed_json", "the request body is not valid JSON", 400,
                                  _validation_details(exc))
        return error_response("validation_error", "the request is not valid: " + "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors[:5]), 422,
            _validation_details(exc))

    # Infrastructure that is down is a 503 the client may retry, in the contract's shape; the transaction
    # was rolled back, so nothing is half written. Other database errors are bugs and stay 500s.
    @app.exception_handler(sqlalchemy.exc.OperationalError)
    @app.exception_handler(sqlalchemy.exc.InterfaceError)
    async def on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", error=type(getattr(exc, "orig", exc)).__name__)
        return error_response("database_unavailable", "the database is unavailable; retry shortly", 503,
                              headers={"Retry-After": "2"})

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def on_redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("redis_unavailable", error=type(exc).__name__)
        return error_response("redis_unavailable", "a required service is unavailable; retry shortly", 503,
                              headers={"Retry-After": "2"})

    # A bug: still a 500, but in the contract's shape with the request id; the traceback is logged here, with
    # the request id, through the scrubbing handler (the server's own copy of it is dropped, see
    # maas.logging). No exception text is sent.
    @app.exception_handler(Exception)
    async def on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        log.error("unhandled_error", method=request.method, path=request.url.path, exc_info=exc)
        try:
            exc._maas_logged = True  # type: ignore[attr-defined]
        except AttributeError:
            pass
        return error_response("internal_error", "an unexpected error; it has been logged", 500,
                              {"request_id": request_id} if request_id else None,
                              headers={"x-request-id": request_id} if request_id else None)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden",
                 413: "payload_too_large", 415: "unsupported_media_type"}
        code = codes.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(code, message, exc.status_code, headers=getattr(exc, "headers", None))


def error_responses(*errors: type[Exception]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: declares the error codes it may return."""
    by_status: dict[int, list[str]] = {}
    for err in errors:
        by_status.setdefault(int(getattr(err, "status", 400)), []).append(str(getattr(err, "code", "error")))
    return {
        status: {"model": ErrorResponse, "description": "error codes: " + ", ".join(sorted(set(codes)))}
        for status, codes in sorted(by_status.items())
    }



class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    error: ErrorDetail
