"""Structured JSON logging with request ids and no personal data.

Every log line passes `scrub_personal_data`, which removes values under
sensitive keys and masks phone numbers, ID numbers and long base64 blobs
(images, templates) that slip into free text. Personal data must not be
logged in the first place; this is the safety net the tests check.
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
    "email", "payload",
}
_CN_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)")
_BLOB = re.compile(r"[A-Za-z0-9+/=_-]{200,}")
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")


def mask_text(text: str) -> str:
    text = _BEARER.sub("Bearer [redacted]", text)
    text = _CN_ID.sub("[id-number]", text)
    text = _PHONE.sub("[phone]", text)
    return _BLOB.sub("[blob]", text)


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
    for name in ("uvicorn.access",):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
