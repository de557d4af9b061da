"""The demo city's cross-operator transfer discount (联程优惠) and concessions, end to end through
`GET /v1/plan` and `POST /v1/offers` (both backends)."""

from __future__ import annotations

import datetime as dt

from tests.ticketing_support import city, demo, journey, plan  # noqa: F401

DISCOUNT = 100  # platform/fare_agreements.json: 1 CNY off a bus <-> metro change within 60 min


def _standalone(app, leg: dict, category: str = "adult") -> int:  # noqa: ANN001
    return app.state.planner.snapshot.fares.price_legs([leg], rider_category=category).total.amount


def test_bus_to_metro_discount_on_plan_and_offer(client, login, app, demo) -> None:  # noqa: ANN001
    it = journey(client, demo)  # bus -> metro -> coach
    transit = [leg for leg in it["legs"] if leg["mode"] != "WALK"]
    bus, metro, coach = transit
    gap = dt.datetime.fromisoformat(metro["departure"]) - dt.datetime.fromisoformat(bus["arrival"])
    assert gap <= dt.timedelta(minutes=60), "precondition: the change is inside the discount's time limit"
    alone = [_standalone(app, leg) for leg in transit]
    assert it["fare"] == {"amount": sum(alone) - DISCOUNT, "currency": "CNY"}

    _, h = login("passenger")
    r = client.post("/v1/offers", headers=h, json={"itinerary": it, "travelers": [{"rider_category": "adult"}]})
    assert r.status_code == 201, r.text
    assert r.json()["total"] == it["fare"]


def test_discount_lapses_after_the_time_limit(client, app, demo) -> None:  # noqa: ANN001
    """The same bus and metro rides, the metro boarded 40 min after the bus, then 100 min after."""
    it = journey(client, demo)
    bus, metro = (leg for leg in it["legs"] if leg["mode"] in ("BUS", "SUBWAY"))
    day, tz = demo.now.date(), dt.timezone(dt.timedelta(hours=8))

    def at(leg: dict, dep: dt.time, arr: dt.time) -> dict:
        return {**leg, "departure": dt.datetime.combine(day, dep, tz).isoformat(),
                "arrival": dt.datetime.combine(day, arr, tz).isoformat()}

    fares = app.state.planner.snapshot.fares
    first = at(bus, dt.time(8, 0), dt.time(8, 20))
    within = fares.price_legs([first, at(metro, dt.time(8, 40), dt.time(8, 55))]).total.amount
    after = fares.price_legs([first, at(metro, dt.time(9, 40), dt.time(9, 55))]).total.amount
    assert after - within == DISCOUNT


def test_concessions_on_plan_and_offer(client, login, app, demo) -> None:  # noqa: ANN001
    it = journey(client, demo)
    fares = {}
    for category in ("adult", "senior", "disabled", "child"):
        its = plan(client, "yx-bus:YXYZ", "yx-coach:QSX", demo.now + dt.timedelta(minutes=30), window_s=3600,
                   max_itineraries=10, rider_category=category)
        same = next(x for x in its if x["id"] == it["id"])
        fares[category] = same["fare"]["amount"]
    assert fares["senior"] < fares["adult"] and fares["disabled"] < fares["adult"]
    assert 0 < fares["child"] < fares["adult"]

    _, h = login("passenger")
    r = client.post("/v1/offers", headers=h, json={"itinerary": it, "travelers": [
        {"rider_category": c} for c in ("adult", "senior", "disabled", "child")]})
    assert r.status_code == 201, r.text
    assert r.json()["total"]["amount"] == sum(fares.values())
