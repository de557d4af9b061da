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
    InvalidSeats,
    ItineraryDeparted,
    ItineraryMismatch,
    LegNotPriced,
    NoSeatCapacity,
    NoSeatMap,
    OfferAlreadyOrdered,
    OfferExpired,
    OfferNotFound,
    SeatHoldLimit,
    SeatTaken,
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


class SeatsIn(Strict):
    leg_index: int = Field(ge=0, le=100, description="a reserved-seat leg of the offer (see GET .../seats)")
    seats: list[int] = Field(min_length=1, max_length=9,
                             description="one seat number (1..capacity) per traveller, in travellers' order")


@router.get("/v1/offers/{offer_id}/seats", responses=error_responses(OfferNotFound))
def offer_seats(offer_id: str, request: Request, session: SessionDep, redis: RedisDep,
                principal: CurrentPassenger) -> dict[str, Any]:
    """The seat map of the offer's reserved-seat (coach) legs: `{offer_id, expires_at, legs: [{leg_index,
    capacity, mine, taken, ...}]}`; seats are numbered 1..capacity, `mine[i]` is traveller i's seat."""
    offer = offers.get_offer(session, offer_id, user_id=principal.subject)
    return offers.seat_map(redis, offer, now=now(request.app))


@router.put("/v1/offers/{offer_id}/seats",
            responses=error_responses(OfferNotFound, OfferAlreadyOrdered, OfferExpired, NoSeatMap, InvalidSeats,
                                      SeatTaken, RateLimited))
def choose_offer_seats(offer_id: str, body: SeatsIn, request: Request, session: SessionDep, redis: RedisDep,
                       principal: CurrentPassenger) -> dict[str, Any]:
    """Moves the offer's held seats on one leg to the chosen free seats (atomic; 409 `seat_taken` changes
    nothing); returns the seat map. Only before the offer is ordered; the tickets carry the chosen seats."""
    offer = offers.choose_seats(session, redis, offer_id, user_id=principal.subject, leg_index=body.leg_index,
                                chosen=body.seats, now=now(request.app))
    return offers.seat_map(redis, offer, now=now(request.app))
