"""Offers: an itinerary re-checked against the timetable, priced per leg and traveller, seats held.

The client sends back an itinerary it got from ``/v1/plan``. Nothing in it is
trusted: every transit leg is looked up in the loaded `routing.timetable.Timetable`
(the trip must run on that service date and call at both stops at exactly
those times) and the leg that is priced and sold is the one rebuilt from the
timetable. Prices come from the fare engine (`ticketing.fares.FareEngine`);
reserved-seat legs hold seats in Redis (`ticketing.seats`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import redis
import sqlalchemy as sa
from sqlalchemy import or_
from sqlmodel import Session, select

from routing.realtime import view_for
from routing.timetable import MODES, PICKUP_NONE, Timetable
from ticketing import seats
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
from ticketing.fares.concessions import PLATFORM_CATEGORIES
from ticketing.fares.errors import UnknownRiderCategory
from ticketing.models import Offer, Order, OrderStatus, new_id

#: Modes sold with a reserved seat (客运班线): their trips need a configured capacity.
RESERVED_MODES = frozenset({"COACH"})


#: ``(traveller's total, [{"operator_id", "distance_m", "standalone", "price"}]) -> (rule id, values)``
LegValues = Callable[[int, list[dict[str, Any]]], tuple[str, list[int]]]


class Pricer(Protocol):
    def price_legs(self, legs: Sequence[dict[str, Any]], rider_category: str = "adult",
                   fare_media: str | None = None) -> Any: ...


# --------------------------------------------------------------------------- re-check


def _trips_named(tt: Timetable, trip_id: str, rt_only: bool = False) -> list[int]:
    """The trips ``trip_id`` names (in-seat combined trips are internal: legs name their parts); with
    ``rt_only`` only those a real-time view adds (``meta["realtime"]["rt_trip"]``: ADDED / DUPLICATED trips
    and the real-time copies of updated ones, each running on its day only)."""
    combined = tt.trip_is_combined
    rt = tt.meta.get("realtime") if rt_only else None
    if rt_only and rt is None:
        return []
    return [t for t in tt.trip_index.get(trip_id, ()) if not combined[t] and (rt is None or rt["rt_trip"][t])]


def _parse_time(value: Any, where: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidItinerary(f"{where} is not an ISO 8601 time", details={"field": where}) from None
    if t.tzinfo is None:
        raise InvalidItinerary(f"{where} has no UTC offset", details={"field": where})
    return t


def _stop_ref(tt: Timetable, s: int) -> dict[str, Any]:
    parent = int(tt.stop_parent[s])
    return {"stop_id": str(tt.stop_ids[s]), "name": str(tt.stop_names[s]),
            "lat": float(tt.stop_lat[s]), "lon": float(tt.stop_lon[s]),
            "parent_station": str(tt.stop_ids[parent]) if parent >= 0 else None}


def _field(leg: dict[str, Any], name: str, i: int) -> Any:
    value = leg.get(name)
    if value in (None, ""):
        raise InvalidItinerary(f"leg {i}: {name} is missing", details={"leg_index": i, "field": name})
    return value


def recheck_leg(tt: Timetable, leg: dict[str, Any], i: int, realtime: Any = None) -> dict[str, Any]:
    """The transit leg ``leg`` rebuilt from the timetable; raises `ItineraryMismatch` if no trip matches.

    With a ``realtime`` overlay (`routing.realtime.RealtimeOverlay`) the leg may
    carry either the scheduled or the predicted times, and a cancelled trip
    does not match. A leg no static trip matches may be on a trip only real
    time has (ADDED / NEW, DUPLICATED): it is matched against the real-time
    trips of the overlay's view (`routing.realtime.view_for`) with that
    trip_id, on their service day and at their own times only; without the
    overlay (or with a later one that no longer has the trip) it does not
    match. Returns an API-shaped leg (see API.md, Itinerary) plus ``leg_index``.
    """
    trip_id = str(_field(leg, "trip_id", i))
    try:
        service_date = dt.date.fromisoformat(str(_field(leg, "service_date", i)))
    except ValueError:
        raise InvalidItinerary(f"leg {i}: service_date is not YYYY-MM-DD", details={"leg_index": i}) from None
    frm = leg.get("from") or {}
    to = leg.get("to") or {}
    if not isinstance(frm, dict) or not isinstance(to, dict):
        raise InvalidItinerary(f"leg {i}: from/to must be objects", details={"leg_index": i})
    from_stop = tt.find_stop(str(frm.get("stop_id")))
    to_stop = tt.find_stop(str(to.get("stop_id")))
    departure = _parse_time(_field(leg, "departure", i), f"legs[{i}].departure")
    arrival = _parse_time(_field(leg, "arrival", i), f"legs[{i}].arrival")
    details = {"leg_index": i, "trip_id": trip_id}
    static = _trips_named(tt, trip_id)
    if from_stop is None or to_stop is None or (not static and realtime is None):
        raise ItineraryMismatch(f"leg {i}: trip or stops are not in the loaded timetable", details=details)
    day = tt.day_index(service_date)
    if day < 0 or day >= tt.n_days:
        raise ItineraryMismatch(f"leg {i}: no service on {service_date}", details=details)
    want = _LegQuery(i, trip_id, service_date, day, from_stop, to_stop, departure, arrival)
    # static trips first (scheduled or, with an overlay, predicted times) ...
    for t in static:
        out = _match_trip(tt, t, want, realtime)
        if out is not None:
            return out
    if realtime is not None:
        # ... then the trips only real time has, on the view the planner searched (built only when needed)
        view = view_for(tt, realtime)
        added = _trips_named(view, trip_id, rt_only=True)
        if not static and not added:
            raise ItineraryMismatch(f"leg {i}: trip is neither in the loaded timetable nor in its real-time "
                                    "snapshot", details=details)
        for t in added:
            out = _match_trip(view, t, want)
            if out is not None:
                return out
    raise ItineraryMismatch(f"leg {i}: trip {trip_id} does not run from {frm.get('stop_id')} to "
                            f"{to.get('stop_id')} at those times on {service_date}", details=details)


@dataclass(frozen=True)
class _LegQuery:
    """What a client's leg claims: trip, service day (``day``: index in the timetable), stops and times."""

    leg_index: int
    trip_id: str
    service_date: dt.date
    day: int
    from_stop: int
    to_stop: int
    departure: dt.datetime
    arrival: dt.datetime


def _match_trip(tt: Timetable, t: int, q: _LegQuery, realtime: Any = None) -> dict[str, Any] | None:
    """The leg ``q`` rebuilt on trip ``t`` of ``tt`` (the static timetable, or a real-time view for a trip
    only real time has), or ``None`` if ``t`` does not run that day or not between those stops at those
    times. With ``realtime`` (static ``tt`` only) the trip's predicted times match too, and a trip cancelled
    that day matches nothing."""
    if not tt.service_days[int(tt.trip_service[t]), q.day]:
        return None
    p = int(tt.trip_pattern[t])
    c = t - int(tt.pattern_trip_offsets[p])
    so = int(tt.pattern_stop_offsets[p])
    stops = np.asarray(tt.pattern_stops[so:int(tt.pattern_stop_offsets[p + 1])])
    route = int(tt.trip_route[t])
    feed = int(tt.route_feed[route])
    day0 = tt.day_start_utc(feed, q.day)
    arr_s, dep_s = tt.pattern_times(p)
    variants = [(arr_s[:, c], dep_s[:, c], None)]
    if realtime is not None:
        updated = np.flatnonzero(np.asarray(realtime.updated_trips) == t)
        if any(int(realtime.trip_day[u]) == q.day for u in updated.tolist()):
            if bool(realtime.trip_cancelled[t]):
                return None
            block = realtime.pattern_times(tt, p)
            if block is not None:
                variants.append((block[0][:, c], block[1][:, c], block[2][:, c]))
    for arr_col, dep_col, skipped in variants:
        match = _match_positions(tt, so, stops, q.from_stop, q.to_stop, arr_col, dep_col, skipped, day0,
                                 q.departure, q.arrival)
        if match is None:
            continue
        b, a, dep, arr = match
        dist = float(tt.pattern_stop_dist_m[so + a]) - float(tt.pattern_stop_dist_m[so + b])
        return {
            "leg_index": q.leg_index,
            "mode": MODES[int(tt.route_modes[route])],
            "operator_id": str(tt.route_operator_ids[route]),
            "agency": tt.route_agency(route),
            "feed_id": str(tt.feed_ids[feed]),
            "route_id": str(tt.route_ids[route]),
            "route_name": str(tt.route_short_names[route]) or str(tt.route_long_names[route]),
            "trip_id": q.trip_id,
            "service_date": q.service_date.isoformat(),
            "from": _stop_ref(tt, q.from_stop),
            "to": _stop_ref(tt, q.to_stop),
            "departure": dep.astimezone(q.departure.tzinfo).isoformat(),
            "arrival": arr.astimezone(q.arrival.tzinfo).isoformat(),
            "distance_m": int(round(max(dist, 0.0))),
            "intermediate_stops": [{"stop_id": str(tt.stop_ids[int(s)])} for s in stops[b + 1:a]],
        }
    return None


def _match_positions(tt: Timetable, so: int, stops: np.ndarray, from_stop: int, to_stop: int, arr_col: np.ndarray,
                     dep_col: np.ndarray, skipped: np.ndarray | None, day0: dt.datetime, departure: dt.datetime,
                     arrival: dt.datetime) -> tuple[int, int, dt.datetime, dt.datetime] | None:
    """Board/alight positions of one trip whose times equal the leg's, or ``None``."""
    for b in np.flatnonzero(stops == from_stop).tolist():
        if int(tt.pattern_pickup[so + b]) == PICKUP_NONE or (skipped is not None and skipped[b]):
            continue
        dep = day0 + dt.timedelta(seconds=int(dep_col[b]))
        if dep != departure:
            continue
        for a in np.flatnonzero(stops == to_stop).tolist():
            if a <= b or int(tt.pattern_dropoff[so + a]) == PICKUP_NONE or (skipped is not None and skipped[a]):
                continue
            arr = day0 + dt.timedelta(seconds=int(arr_col[a]))
            if arr == arrival:
                return b, a, dep, arr
    return None


def recheck_itinerary(tt: Timetable, itinerary: dict[str, Any], *, now: dt.datetime,
                      realtime: Any = None) -> list[dict[str, Any]]:
    """The transit legs of ``itinerary`` rebuilt from the timetable, in order.

    Raises `InvalidItinerary` (malformed), `ItineraryMismatch` (a leg the
    timetable does not have, or legs that do not connect in time) and
    `ItineraryDeparted` (the first ride has left).
    """
    legs = itinerary.get("legs") if isinstance(itinerary, dict) else None
    if not isinstance(legs, list) or not legs:
        raise InvalidItinerary("the itinerary has no legs")
    out: list[dict[str, Any]] = []
    for i, leg in enumerate(legs):
        if not isinstance(leg, dict):
            raise InvalidItinerary(f"leg {i} is not an object", details={"leg_index": i})
        if str(leg.get("mode", "")).upper() == "WALK":
            continue
        out.append(recheck_leg(tt, leg, i, realtime))
    if not out:
        raise InvalidItinerary("the itinerary has no transit legs: there is nothing to sell")
    for prev, nxt in zip(out, out[1:]):
        if dt.datetime.fromisoformat(nxt["departure"]) < dt.datetime.fromisoformat(prev["arrival"]):
            raise ItineraryMismatch(f"leg {nxt['leg_index']} departs before leg {prev['leg_index']} arrives",
                                    details={"leg_index": nxt["leg_index"]})
    if dt.datetime.fromisoformat(out[0]["departure"]) <= now:
        raise ItineraryDeparted("the first ride of this itinerary has already departed",
                                details={"departure": out[0]["departure"]})
    return out


# --------------------------------------------------------------------------- pricing


def price_travelers(pricer: Pricer, legs: list[dict[str, Any]], categories: list[str]) -> list[dict[str, Any]]:
    """One quote per traveller: ``{"rider_category", "total": int, "currency", "legs": [{"price", "standalone"}]}``.

    ``legs[k]`` of a quote prices ``legs[k]`` of the input. Raises `LegNotPriced`
    when a leg has no price for a category (the reason names the leg).
    """
    quotes = []
    for category in categories:
        if category not in PLATFORM_CATEGORIES:
            raise UnknownRiderCategory(f"unknown rider category {category!r}",
                                       details={"rider_category": category, "known": list(PLATFORM_CATEGORIES)})
        q = pricer.price_legs(legs, rider_category=category)
        by_index = {lf.leg_index: lf for lf in q.legs}
        if q.total is None or len(by_index) != len(legs):
            unpriced = [k for k in range(len(legs)) if k not in by_index or by_index[k].price is None]
            k = unpriced[0] if unpriced else 0
            raise LegNotPriced(f"no fare for leg {legs[k]['leg_index']} ({legs[k]['route_id']}) for rider "
                               f"category {category}: {q.reason}",
                               details={"leg_index": legs[k]["leg_index"], "rider_category": category,
                                        "operator_id": legs[k]["operator_id"]})
        quotes.append({
            "rider_category": category, "total": q.total.amount, "currency": q.total.currency,
            "fare_media_id": q.fare_media_id,
            "legs": [{"price": by_index[k].price.amount,
                      "standalone": by_index[k].standalone.amount if by_index[k].standalone else None}
                     for k in range(len(legs))],
        })
    return quotes


# --------------------------------------------------------------------------- offers


def create_offer(session: Session, redis_client: redis.Redis, *, user_id: str, timetable: Timetable,
                 itinerary: dict[str, Any], categories: list[str], pricer: Pricer,
                 seat_capacity: Callable[[str], int | None], now: dt.datetime, ttl_s: int,
                 realtime: Any = None, leg_values: LegValues | None = None,
                 hold_caps: HoldCaps | None = None) -> Offer:
    """Re-checks, prices and holds seats; the offer is valid ``ttl_s`` seconds from ``now``.

    ``realtime``: the serving snapshot's overlay (predicted times are accepted too).
    ``leg_values(total, legs)``: values each traveller's legs (`LegValues`; the shell passes clearing's rule,
    docs/refunds.md); without it a leg is worth the fare engine's price for it.
    ``seat_capacity(trip_id)`` gives the seats of a reserved-seat trip (``None``
    when the operator configured none). Raises the `recheck_itinerary` errors,
    `LegNotPriced`, `NoSeatCapacity` and `SoldOut` (nothing stays held then).
    ``hold_caps``: the account's unpaid seat holds may not exceed these (`SeatHoldLimit`).
    """
    if not categories:
        raise InvalidItinerary("an offer needs at least one traveller")
    legs = recheck_itinerary(timetable, itinerary, now=now, realtime=realtime)
    quotes = price_travelers(pricer, legs, categories)
    if leg_values is not None:
        for q in quotes:
            agreement_id, values = leg_values(q["total"], [
                {"operator_id": leg["operator_id"], "distance_m": leg.get("distance_m"), "standalone": ql["standalone"],
                 "price": ql["price"]} for leg, ql in zip(legs, q["legs"], strict=True)])
            if sum(values) != q["total"] or len(values) != len(legs):
                raise ValueError("leg values must give one value per leg, summing to the traveller's total")
            q["agreement_id"] = agreement_id
            for ql, v in zip(q["legs"], values, strict=True):
                ql["charged"], ql["price"] = ql["price"], int(v)
    currencies = {q["currency"] for q in quotes}
    if len(currencies) != 1:
        raise LegNotPriced("the travellers' fares are in different currencies", details={})
    expires_at = now + dt.timedelta(seconds=ttl_s)
    offer_id = new_id("off")
    holds: list[dict[str, Any]] = []
    for leg in legs:
        leg["reserved"] = seat_capacity(leg["trip_id"]) is not None or leg["mode"] in RESERVED_MODES
    reserved = [seats.hold_key(leg["trip_id"], leg["service_date"]) for leg in legs if leg["reserved"]]
    if hold_caps is not None and reserved:
        check_hold_caps(session, user_id=user_id, keys=reserved, seats_each=len(categories), caps=hold_caps,
                        now=now)
    try:
        for leg in legs:
            if not leg["reserved"]:
                continue
            capacity = seat_capacity(leg["trip_id"])
            if capacity is None:
                raise NoSeatCapacity(f"leg {leg['leg_index']} needs a reserved seat but trip {leg['trip_id']} "
                                     "has no configured capacity", details={"leg_index": leg["leg_index"]})
            key = seats.hold_key(leg["trip_id"], leg["service_date"])
            got = seats.acquire(redis_client, key=key, service_date=leg["service_date"], hold_id=offer_id,
                                seats=len(categories), capacity=capacity, until=expires_at, now=now)
            if got is None:
                raise SoldOut(f"trip {leg['trip_id']} on {leg['service_date']} has fewer than {len(categories)} "
                              "free seats", details={"leg_index": leg["leg_index"], "trip_id": leg["trip_id"]})
            holds.append({"key": key, "hold_id": offer_id, "leg_index": leg["leg_index"], "seats": got,
                          "service_date": leg["service_date"], "capacity": capacity})
    except BaseException:
        seats.release_all(redis_client, holds)
        raise
    offer = Offer(offer_id=offer_id, user_id=user_id, itinerary_id=str(itinerary.get("id") or "")[:64] or None,
                  legs=legs, quotes=quotes, holds=holds, total_amount=sum(q["total"] for q in quotes),
                  currency=currencies.pop(), created_at=now, expires_at=expires_at)
    session.add(offer)
    session.flush()
    return offer


@dataclass(frozen=True)
class HoldCaps:
    """Seats one account may hold unpaid: on one departure (trip and service date), and in total."""

    per_departure: int
    per_account: int


def open_holds(session: Session, *, user_id: str, now: dt.datetime) -> dict[str, int]:
    """Seats the account holds unpaid right now, by hold key: offers not yet ordered and still valid, and
    orders awaiting payment within their payment window. Sold, cancelled and lapsed holds do not count."""
    rows = session.exec(select(Offer, Order)
                        .join(Order, Order.offer_id == Offer.offer_id, isouter=True)  # type: ignore[arg-type]
                        .where(Offer.user_id == user_id,
                               or_(Offer.expires_at > now, Order.expires_at > now))).all()  # type: ignore[arg-type]
    held: dict[str, int] = {}
    for offer, order in rows:
        if order is None:
            open_ = offer.expires_at > now
        else:
            open_ = order.status == OrderStatus.pending_payment.value and order.expires_at > now
        if open_:
            for h in offer.holds:
                held[h["key"]] = held.get(h["key"], 0) + len(h["seats"])
    return held


def check_hold_caps(session: Session, *, user_id: str, keys: list[str], seats_each: int, caps: HoldCaps,
                    now: dt.datetime) -> None:
    """Raises `SeatHoldLimit` when holding ``seats_each`` more seats on each of ``keys`` would exceed a cap.

    On PostgreSQL the account's offers are serialised (a transaction-scoped advisory lock on the account),
    so concurrent requests cannot both pass the check.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                        {"k": f"seat-holds:{user_id}"})
    held = open_holds(session, user_id=user_id, now=now)
    for key in keys:
        if held.get(key, 0) + seats_each > caps.per_departure:
            raise SeatHoldLimit("this account already holds the most unpaid seats it may on this departure; "
                                "pay for or cancel an order, or let an offer lapse",
                                details={"scope": "departure", "limit": caps.per_departure,
                                         "held": held.get(key, 0), "requested": seats_each})
    total = sum(held.values())
    if total + seats_each * len(keys) > caps.per_account:
        raise SeatHoldLimit("this account already holds the most unpaid seats it may; pay for or cancel an "
                            "order, or let an offer lapse",
                            details={"scope": "account", "limit": caps.per_account, "held": total,
                                     "requested": seats_each * len(keys)})


def seat_map(redis_client: redis.Redis, offer: Offer, *, now: dt.datetime) -> dict[str, Any]:
    """The offer's reserved-seat legs: capacity, seats held or sold to others now, and the offer's own seats
    (in travellers' order: traveller ``i`` sits in ``mine[i]``). Seats are numbered 1..capacity."""
    legs = []
    for hold in offer.holds:
        leg = next(x for x in offer.legs if x["leg_index"] == hold["leg_index"])
        legs.append({"leg_index": hold["leg_index"], "mode": leg["mode"], "operator_id": leg["operator_id"],
                     "trip_id": leg["trip_id"], "service_date": leg["service_date"],
                     "from_stop_id": leg["from"]["stop_id"], "to_stop_id": leg["to"]["stop_id"],
                     "departure": leg["departure"], "capacity": int(hold["capacity"]),
                     "mine": [int(x) for x in hold["seats"]],
                     "taken": seats.taken_by_others(redis_client, key=hold["key"], hold_id=hold["hold_id"], now=now)})
    return {"offer_id": offer.offer_id, "expires_at": offer.expires_at.isoformat(), "legs": legs}


def choose_seats(session: Session, redis_client: redis.Redis, offer_id: str, *, user_id: str, leg_index: int,
                 chosen: Sequence[int], now: dt.datetime) -> Offer:
    """Moves the offer's hold on a reserved-seat leg to ``chosen`` (one free seat per traveller, in travellers'
    order), atomically in Redis; the tickets then carry them. Only while the offer is live and not ordered.

    Raises `OfferNotFound` (not the caller's), `OfferAlreadyOrdered`, `OfferExpired` (also when the hold has
    lapsed), `NoSeatMap`, `InvalidSeats` and `SeatTaken` (held or sold by another: nothing changes)."""
    offer = session.exec(select(Offer).where(Offer.offer_id == offer_id).with_for_update()).first()
    if offer is None or offer.user_id != user_id:
        raise OfferNotFound("no such offer", details={"offer_id": offer_id})
    if session.exec(select(Order.order_id).where(Order.offer_id == offer_id)).first() is not None:
        raise OfferAlreadyOrdered("this offer already has an order: its seats are fixed", details={"offer_id": offer_id})
    if offer.expires_at <= now:
        raise OfferExpired("the offer has expired; ask for a new one", details={"offer_id": offer_id})
    hold = next((h for h in offer.holds if h["leg_index"] == leg_index), None)
    if hold is None:
        raise NoSeatMap("this leg of the offer has no reserved seats", details={"leg_index": leg_index})
    want = [int(x) for x in chosen]
    capacity = int(hold["capacity"])
    if len(want) != len(hold["seats"]) or len(set(want)) != len(want) or not all(1 <= x <= capacity for x in want):
        raise InvalidSeats(f"choose {len(hold['seats'])} different seats numbered 1 to {capacity}",
                           details={"leg_index": leg_index, "travelers": len(hold["seats"]), "capacity": capacity})
    done = seats.choose(redis_client, key=hold["key"], service_date=hold["service_date"], hold_id=hold["hold_id"],
                        seats=want, until=offer.expires_at, now=now)
    if done == 0:
        raise SeatTaken("a chosen seat is taken; choose another", details={
            "leg_index": leg_index,
            "taken": seats.taken_by_others(redis_client, key=hold["key"], hold_id=hold["hold_id"], now=now)})
    if done < 0:
        raise OfferExpired("the offer's seat hold has lapsed; ask for a new offer", details={"offer_id": offer_id})
    offer.holds = [dict(h, seats=want) if h["leg_index"] == leg_index else dict(h) for h in offer.holds]
    session.add(offer)
    session.flush()
    return offer


def get_offer(session: Session, offer_id: str, *, user_id: str) -> Offer:
    offer = session.get(Offer, offer_id)
    if offer is None or offer.user_id != user_id:
        raise OfferNotFound("no such offer", details={"offer_id": offer_id})
    return offer


def offer_view(offer: Offer) -> dict[str, Any]:
    """The contract's offer: ``{offer_id, expires_at, total, legs: [{operator_id, price}], ...}``."""
    cur = offer.currency
    legs = []
    for k, leg in enumerate(offer.legs):
        hold = next((h for h in offer.holds if h["leg_index"] == leg["leg_index"]), None)
        legs.append({
            "leg_index": leg["leg_index"], "operator_id": leg["operator_id"], "mode": leg["mode"],
            "trip_id": leg["trip_id"], "service_date": leg["service_date"],
            "from_stop_id": leg["from"]["stop_id"], "to_stop_id": leg["to"]["stop_id"],
            "departure": leg["departure"], "arrival": leg["arrival"],
            "price": {"amount": sum(q["legs"][k]["price"] for q in offer.quotes), "currency": cur},
            "seats": [str(s) for s in hold["seats"]] if hold else None,
        })
    return {
        "offer_id": offer.offer_id, "expires_at": offer.expires_at.isoformat(),
        "total": {"amount": offer.total_amount, "currency": cur}, "legs": legs,
        "travelers": [{"rider_category": q["rider_category"], "total": {"amount": q["total"], "currency": cur},
                       "legs": [{"leg_index": leg["leg_index"], "price": {"amount": ql["price"], "currency": cur}}
                                for leg, ql in zip(offer.legs, q["legs"])]} for q in offer.quotes],
    }
