"""Issue 12, item 4: one account must not hoard a coach departure's seats with unpaid offers.

The attack (over HTTP): one passenger asked for offers of 9 travellers on the same coach departure
until all 45 seats were held, paying for none; nobody else could buy. Now an account's unpaid holds
are capped per departure and in total (README), offers are rate-limited, and paid seats do not
count against the caps.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.ticketing_support import buy, city, demo, journey, traveler  # noqa: F401

NINE = [{"rider_category": "adult"}] * 9


def _offer(client, h, it, travelers):  # noqa: ANN001, ANN202
    return client.post("/v1/offers", headers=h, json={"itinerary": it, "travelers": travelers})


def test_one_account_cannot_hold_a_whole_departure(client, login, app, demo):  # noqa: ANN001
    _uid, h = login("passenger")
    it = journey(client, demo)
    first = _offer(client, h, it, NINE)
    assert first.status_code == 201, first.text
    held = [_offer(client, h, it, NINE) for _ in range(4)]  # the attack: the other 36 seats
    assert {r.status_code for r in held} == {409}, [r.text for r in held]
    err = held[0].json()["error"]
    assert err["code"] == "seat_hold_limit" and err["details"]["scope"] == "departure"
    assert err["details"]["limit"] == 9 and err["details"]["held"] == 9
    one_more = _offer(client, h, it, NINE[:1])
    assert one_more.status_code == 409  # not even one seat more on this departure
    # everybody else can still buy seats on it
    _uid2, h2 = login("passenger")
    assert _offer(client, h2, it, NINE[:2]).status_code == 201
    s = app.state.settings
    assert (s.seat_holds_per_departure, s.seat_holds_per_account) == (9, 18)  # the defaults README states


def test_the_account_cap_spans_departures_and_paid_seats_do_not_count(client, login, app, demo):  # noqa: ANN001
    from tests.ticketing_support import Clock, resident_id

    _uid, h = login("passenger")
    its: list[dict] = []
    for minutes in range(0, 8 * 60, 30):  # the same journey on later coaches
        it = journey(client, Clock(demo.now + dt.timedelta(minutes=minutes)))
        if all(it["legs"][-1]["trip_id"] != x["legs"][-1]["trip_id"] for x in its):
            its.append(it)
        if len(its) == 3:
            break
    assert len(its) == 3, "precondition: three coach departures"
    assert _offer(client, h, its[0], NINE).status_code == 201
    nine = [traveler(f"旅客{i}", id_number=resident_id(seq=f"{i:03d}")) for i in range(9)]
    _o, order = buy(client, h, its[1], nine)  # ordered, not yet paid: still held
    r = _offer(client, h, its[2], NINE[:1])
    assert r.status_code == 409, r.text
    assert r.json()["error"]["details"] == {"scope": "account", "limit": 18, "held": 18, "requested": 1}
    # a paid order's seats are sold, not held: the account may hold again
    assert client.post(order["payment"]["confirm_url"], headers=h).json()["status"] == "ticketed"
    assert _offer(client, h, its[2], NINE).status_code == 201
    # an offer that lapsed unpaid stops counting too
    demo.advance(seconds=app.state.settings.offer_ttl_s + 1)
    later = journey(client, demo)
    assert _offer(client, h, later, NINE).status_code == 201


def test_offers_are_rate_limited(client, login, app, demo):  # noqa: ANN001
    from maas.ratelimit import parse_limits

    app.state.rate_limits = {**app.state.rate_limits, **parse_limits("offers=3/3600")}
    _uid, h = login("passenger")
    it = journey(client, demo)
    answers = [_offer(client, h, it, NINE[:1]) for _ in range(4)]
    assert [r.status_code for r in answers] == [201, 201, 201, 429]
    assert answers[3].json()["error"]["code"] == "rate_limited" and int(answers[3].headers["Retry-After"]) >= 1


@pytest.mark.parametrize("attempt", range(2))
def test_concurrent_offers_cannot_exceed_the_cap(client, login, app, demo, backend, attempt):  # noqa: ANN001
    if backend["kind"] != "postgres":
        pytest.skip("concurrency is checked on PostgreSQL")
    _uid, h = login("passenger")
    it = journey(client, demo)
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: _offer(client, h, it, NINE[:5]).status_code, range(6)))
    assert sorted(codes) == [201] + [409] * 5, codes
