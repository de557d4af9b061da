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


# --------------------------------------------------------------------------- offers, orders, payments, tickets


class NotFound(TicketingError):
    code = "not_found"
    status = 404


class OfferNotFound(NotFound):
    code = "offer_not_found"


class OrderNotFound(NotFound):
    code = "order_not_found"


class TicketNotFound(NotFound):
    code = "ticket_not_found"


class Conflict(TicketingError):
    code = "conflict"
    status = 409


class ItineraryMismatch(Conflict):
    """A leg of the itinerary does not match the loaded timetable (tampered, or planned on older data)."""

    code = "itinerary_mismatch"


class ItineraryDeparted(Conflict):
    """The itinerary's first ride has already left."""

    code = "itinerary_departed"


class InvalidItinerary(TicketingError):
    code = "invalid_itinerary"
    status = 422


class LegNotPriced(TicketingError):
    """No fare data prices a leg for a rider category: the offer cannot be made."""

    code = "leg_not_priced"
    status = 422


class NoSeatCapacity(TicketingError):
    code = "no_seat_capacity"
    status = 422


class SoldOut(Conflict):
    code = "sold_out"


class SeatHoldLimit(Conflict):
    """The account already holds as many unpaid seats as it may (on this departure, or in total)."""

    code = "seat_hold_limit"


class OfferExpired(Conflict):
    code = "offer_expired"


class OfferAlreadyOrdered(Conflict):
    code = "offer_already_ordered"


class SeatTaken(Conflict):
    """A chosen seat is held or sold by someone else."""

    code = "seat_taken"


class NoSeatMap(TicketingError):
    """The leg has no reserved seats to choose from (not a reserved-seat leg of this offer)."""

    code = "no_seat_map"
    status = 422


class InvalidSeats(TicketingError):
    """Chosen seats that cannot be: outside the vehicle, the same seat twice, not one per traveller."""

    code = "invalid_seats"
    status = 422


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class TravelersMismatch(TicketingError):
    code = "travelers_mismatch"
    status = 422


class UnsupportedIdType(TicketingError):
    code = "unsupported_id_type"
    status = 422


class IllegalTransition(Conflict):
    """An order state change the state machine does not allow."""

    code = "illegal_transition"


class PaymentProviderError(TicketingError):
    """The payment provider refused or failed a request (its message is passed on)."""

    code = "payment_provider_error"
    status = 502


class ProviderNotAvailable(TicketingError):
    code = "payment_provider_unavailable"
    status = 503


class PaymentMethodUnavailable(TicketingError):
    """The order names a payment method this deployment does not offer (or not configured)."""

    code = "payment_method_unavailable"
    status = 422


class PayerRequired(TicketingError):
    """The payment method needs the payer's id at the provider (WeChat JSAPI: openid)."""

    code = "payer_required"
    status = 422


class InvalidBill(TicketingError):
    """A provider's bill file that cannot be read (its line number is in the message)."""

    code = "invalid_bill"
    status = 502


class InvalidWebhook(TicketingError):
    code = "invalid_webhook_signature"
    status = 400


class SandboxDisabled(NotFound):
    code = "sandbox_disabled"


class LegNotRefundable(Conflict):
    code = "leg_not_refundable"


class InvalidDeviceKey(TicketingError):
    code = "invalid_device_key"
    status = 422


class DeviceBound(Conflict):
    """The ticket is bound to a device: only that device's codes admit, the server mints no rotating code."""

    code = "device_bound"


class GateMismatch(TicketingError):
    code = "gate_mismatch"
    status = 403
