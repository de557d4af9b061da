"""Structured JSON logging with request ids and no personal data.

Every log line passes `scrub_personal_data`, which removes values under
sensitive keys and scrubs free text (messages, rendered tracebacks) with
`scrub_text`: SQL parameters and the values PostgreSQL quotes in its error
details, query strings, coordinates, bearer tokens and JWTs, ID numbers,
phone numbers in any format (E.164, international, national) and long
base64 blobs (images, templates). Personal data must not be logged in the
first place (the engines hide SQL parameters, the access line has no query
string); this is the safety net the tests check.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

SENSITIVE_KEYS = {
    "password", "new_password", "phone", "name", "id_number", "face_image", "image", "template",
    "embedding", "token", "access_token", "refresh_token", "authorization", "secret", "traveler_name",
    "email", "payload", "password_hash", "query", "query_string", "lat", "lon", "coordinates", "client",
    "client_addr", "parameters", "params",
}
_CN_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_BLOB = re.compile(r"[A-Za-z0-9+/=_-]{200,}")
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_GATE_TOKEN = re.compile(r"\bmgt_[A-Za-z0-9_-]+")
# SQLAlchemy's rendering of bound parameters (also "[generated in 0.001s] (...)" echo lines), and the
# values PostgreSQL quotes back in its messages: DETAIL lines with keys or whole rows, offending input.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_SQL_ECHO_PARAMETERS = re.compile(r"(\[(?:generated|cached since|raw sql|insertmanyvalues)[^\]\n]*\]) [^\n]*")
_PG_KEY_VALUES = re.compile(r"(Key \([^\n]*?\))=\((?:[^()\n]|\([^()\n]*\))*\)")
_PG_FAILING_ROW = re.compile(r"(Failing row contains) \([^\n]*\)")
_PG_QUOTED_INPUT = re.compile(r"(invalid input (?:syntax|value) for [^:\n]*: |\bvalue )\"[^\"\n]*\"")
# Query strings (anything after "?" that holds a key=value) and latitude,longitude pairs anywhere.
_QUERY = re.compile(r"\?[^\s\"'<>#?]*=[^\s\"'<>#]*")
_COORDINATES = re.compile(r"-?\d{1,3}\.\d{2,}\s*(?:,|%2[Cc])\s*-?\d{1,3}\.\d{2,}")
# Phone numbers of any country and format: digit groups joined by spaces, dots, dashes, slashes or
# parentheses, optionally after + or 00; 7 to 17 digits (5+ after a +). ISO dates and times are not.
_PHONE_CANDIDATE = re.compile(r"(?<![\w.+])(?<!\d:)(?:\+|\b00)?\s?\(?\d+\)?(?:[ ./-]{1,2}\(?\d+\)?)*(?![\w])")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    stripped = text.strip()
    digits = sum(ch.isdigit() for ch in stripped)
    international = stripped.startswith("+") or stripped.startswith("00")
    if _ISO_DATE.match(stripped) or not ((7 if not international else 5) <= digits <= 17):
        return text
    return text[: len(text) - len(text.lstrip())] + "[phone]"


def scrub_text(text: str) -> str:
    """Free text (a message, a rendered traceback) without personal data, tokens or SQL values."""
    text = _SQL_PARAMETERS.sub("[parameters: redacted]", text)
    text = _SQL_ECHO_PARAMETERS.sub(r"\1 [parameters redacted]", text)
    text = _PG_KEY_VALUES.sub(r"\1=([redacted])", text)
    text = _PG_FAILING_ROW.sub(r"\1 ([redacted])", text)
    text = _PG_QUOTED_INPUT.sub(r'\1"[redacted]"', text)
    text = _BEARER.sub("Bearer [redacted]", text)
    text = _JWT.sub("[jwt]", text)
    text = _GATE_TOKEN.sub("[gate-token]", text)
    text = _QUERY.sub("?[query]", text)
    text = _COORDINATES.sub("[coordinates]", text)
    text = _CN_ID.sub("[id-number]", text)
    text = _PHONE_CANDIDATE.sub(_mask_phone, text)
    return _BLOB.sub("[blob]", text)


mask_text = scrub_text


def _scrub(value: Any, key: str | None = None) -> Any:
    if key is not None and key.lower() in SENSITIVE_KEYS:
        return "[redacted]"
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def scrub_personal_data(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: (_scrub(v, k) if k != "event" else _scrub(v)) for k, v in event_dict.items()}


class _AlreadyLogged(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and getattr(record.exc_info[1], "_maas_logged", False))


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, sqlalchemy) through one JSON renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        scrub_personal_data,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_maas", False):
            root.removeHandler(existing)
    handler._maas = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # The app logs an unhandled error itself, with the request id (maas.errors); the server's copy goes.
    server_errors = logging.getLogger("uvicorn.error")
    for existing in list(server_errors.filters):
        if isinstance(existing, _AlreadyLogged):
            server_errors.removeFilter(existing)
    server_errors.addFilter(_AlreadyLogged())
    # The app writes its own access line (maas.app: method, path without the query string, status, time);
    # uvicorn's would add the client address and the full query string (coordinates, tokens).
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
