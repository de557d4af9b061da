"""Domain errors of the ticketing package.

Every error carries a snake_case ``code`` (machine-readable), a human
``message``, an HTTP-like ``status`` and a ``details`` dict. The shell maps
them to the contract's error shape ``{"error": {"code", "message", "details"}}``;
``ticketing`` itself knows nothing of HTTP. Subclass :class:`TicketingError`
with a class-level ``code``/``status`` for each failure the caller can act on.
"""

from __future__ import annotations

from typing import Any


class TicketingError(Exception):
    """Base class of every ticketing domain error."""

    code: str = "ticketing_error"
    status: int = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The contract's error body: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}
