"""Fares: GTFS Fares v2 (with v1 fallback), operator fare tables, interoperator agreements, concessions.

Entry point: `FareEngine.from_feeds([(feed_id, path), ...], agreements=..., operator_tables=...)`
then `engine.price_legs(legs, rider_category="adult", fare_media=None) -> FareQuote`.
"""

from ticketing.fares.concessions import ConcessionRules, Eligibility, check_eligibility, require_eligibility
from ticketing.fares.config import Agreement, OperatorTable, load_agreements, load_operator_tables
from ticketing.fares.engine import AppliedTransfer, FareEngine, FareQuote, LegFare, LegRuleIndex
from ticketing.fares.errors import FareDataError, InvalidLeg, NotEligible, UnknownRiderCategory
from ticketing.fares.gtfs_fares import FeedFares, read_feed_fares
from ticketing.fares.money import Money, allocate, currency_exponent, to_minor

__all__ = [
    "Agreement", "AppliedTransfer", "ConcessionRules", "Eligibility", "FareDataError", "FareEngine", "FareQuote",
    "FeedFares", "InvalidLeg", "LegFare", "LegRuleIndex", "Money", "NotEligible", "OperatorTable",
    "UnknownRiderCategory", "allocate", "check_eligibility", "currency_exponent", "load_agreements",
    "load_operator_tables", "read_feed_fares", "require_eligibility", "to_minor",
]
