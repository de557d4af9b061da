"""Domain errors of the routing core.

Every error carries a snake_case ``code``, a human ``message``, an HTTP-like
``status`` (400/404/422) and a ``details`` dict. The HTTP and CLI layers map
them to the contract's error shape; ``routing`` itself knows nothing of HTTP.
"""

from __future__ import annotations

from typing import Any


class RoutingError(Exception):
    """Base class of every routing domain error."""

    code: str = "routing_error"
    status: int = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The contract's error body: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class FeedError(RoutingError):
    """A GTFS feed is broken and was refused; ``report`` is its :class:`~routing.feeds.FeedReport`."""

    code = "invalid_feed"
    status = 422

    def __init__(self, message: str, *, report: Any = None, details: dict[str, Any] | None = None) -> None:
        d = dict(details or {})
        if report is not None:
            d.setdefault("feed_id", getattr(report, "feed_id", None))
            d.setdefault("problems", list(getattr(report, "problems", [])))
        super().__init__(message, details=d)
        self.report = report


class NoItinerary(RoutingError):
    """No journey satisfies the request."""

    code = "no_itinerary"
    status = 404


class UnknownStop(RoutingError):
    """An origin/destination stop id is not in the timetable."""

    code = "unknown_stop"
    status = 404


class InvalidQuery(RoutingError):
    """The request itself is malformed (both/neither of depart_at/arrive_by, naive time, ...)."""

    code = "invalid_query"
    status = 400


class RealtimeError(RoutingError):
    """A GTFS-Realtime message could not be parsed at all."""

    code = "invalid_realtime_feed"
    status = 422
