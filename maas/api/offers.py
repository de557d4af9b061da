"""POST /v1/offers: a re-checked, priced itinerary with seats held (plain `def`: pricing is CPU work)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field

from maas.api.deps import CurrentPassenger, RedisDep, SessionDep, SettingsDep
from maas.errors import error_responses
from maas.feeds import NoFeeds
from maas.journeys import leg_values, now
from maas.ratelimit import RateLimited, rate_limit
from ticketing import offers
from ticketing.errors import (
    InvalidItinerary,
    ItineraryDeparted,
    ItineraryMismatch,
    LegNotPriced,
    NoSeatCapacity,
    SeatHoldLimit,
    SoldOut,
)
from ticketing.fares.errors import InvalidLeg, UnknownRiderCategory

router = APIRouter(tags=["ticketing"], dependencies=[rate_limit("offers")])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TravelerCategoryIn(Strict):
    rider_category: str = Field(default="adult", min_length=1, max_length=32, examples=["adult"])


class OfferIn(Strict):
    itinerary: dict[str, Any] = Field(description="an itinerary exactly as returned by GET /v1/plan")
    travelers: list[TravelerCategoryIn] = Field(min_length=1, max_length=9)


@router.post("/v1/offers", status_code=status.HTTP_201_CREATED,
             responses=error_responses(InvalidItinerary, ItineraryMismatch, ItineraryDeparted, LegNotPriced,
                                       NoSeatCapacity, SoldOut, SeatHoldLimit, InvalidLeg, UnknownRiderCategory,
                                       NoFeeds, RateLimited))
def create_offer(body: OfferIn, request: Request, session: SessionDep, settings: SettingsDep, redis: RedisDep,
                 principal: CurrentPassenger) -> dict[str, Any]:
    """`{offer_id, expires_at, total, legs: [{operator_id, price, ...}], travelers: [...]}`.

    An account holds at most `seat_holds_per_departure` unpaid seats on one departure and
    `seat_holds_per_account` in all (409 `seat_hold_limit`); offers are rate-limited (`offers` group, 429)."""
    snap = request.app.state.planner.current()
    offer = offers.create_offer(
        session, redis, user_id=principal.subject, timetable=snap.timetable, itinerary=body.itinerary,
        categories=[t.rider_category for t in body.travelers], pricer=snap.fares,
        seat_capacity=snap.seat_capacity.get, now=now(request.app), ttl_s=settings.offer_ttl_s,
        realtime=snap.realtime, leg_values=leg_values(session, now(request.app)),
        hold_caps=offers.HoldCaps(per_departure=settings.seat_holds_per_departure,
                                  per_account=settings.seat_holds_per_account))
    return offers.offer_view(offer)
