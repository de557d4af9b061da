"""Errors of the fare engine (subclasses of `ticketing.errors.TicketingError`)."""

from __future__ import annotations

from ticketing.errors import TicketingError


class FareDataError(TicketingError):
    """A fare file or fare configuration is malformed; the message names the file and line."""

    code = "invalid_fare_data"
    status = 422


class InvalidLeg(TicketingError):
    """A leg given to the fare engine lacks a field it needs or has an unusable value."""

    code = "invalid_fare_leg"
    status = 422


class UnknownRiderCategory(TicketingError):
    """The rider category is not defined by any loaded feed or configuration."""

    code = "unknown_rider_category"
    status = 422


class NotEligible(TicketingError):
    """A traveller does not qualify for the concession (rider category) claimed."""

    code = "concession_not_eligible"
    status = 422
