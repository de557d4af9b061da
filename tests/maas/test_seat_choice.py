"""Choosing seats on an offer's reserved-seat (coach) leg: the seat map, and the attacks on it (both backends).

``GET /v1/offers/{id}/seats`` shows each reserved leg's capacity, the seats held or sold to others and the
offer's own; ``PUT /v1/offers/{id}/seats`` swaps the offer's hold to chosen free seats atomically, and
the tickets carry them. A seat another passenger holds or bought, a seat outside the coach, the same
seat twice, another account's offer, an ordered or lapsed offer: all refused, nothing changed.
"""

from __future__ import annotations

from tests.ticketing_support import buy, city, demo, journey, traveler  # noqa: F401


def _offer(client, headers, it, n: int = 1) -> dict:  # noqa: ANN001
    r = client.post("/v1/offers", headers=headers, json={"itinerary": it, "travelers": [{"rider_category": "adult"}] * n})
    assert r.status_code == 201, r.text
    return r.json()


def _coach(seat_map: dict) -> dict:
    (leg,) = [x for x in seat_map["legs"] if x["mode"] == "COACH"]
    return leg


def test_seat_map_and_choosing_a_free_seat_carries_it_onto_the_ticket(client, login, demo) -> None:  # noqa: ANN001, F811
    _, a = login("passenger")
    _, b = login("passenger")
    it = journey(client, demo)
    offer_a = _offer(client, a, it)
    offer_b = _offer(client, b, it, 2)
    r = client.get(f"/v1/offers/{offer_b['offer_id']}/seats", headers=b)
    assert r.status_code == 200, r.text
    coach = _coach(r.json())
    assert len(r.json()["legs"]) == 1  # only reserved-seat legs have a map
    assert coach["capacity"] >= 10 and coach["mine"] == [2, 3] and coach["taken"] == [1]
    leg_index = coach["leg_index"]

    r = client.put(f"/v1/offers/{offer_b['offer_id']}/seats", headers=b, json={"leg_index": leg_index, "seats": [9, 5]})
    assert r.status_code == 200, r.text
    assert _coach(r.json())["mine"] == [9, 5]  # in travellers' order
    assert _coach(client.get(f"/v1/offers/{offer_a['offer_id']}/seats", headers=a).json())["taken"] == [5, 9]
    # seats 2 and 3 are free again: a third passenger's offer gets them
    _, c = login("passenger")
    assert _coach(client.get(f"/v1/offers/{_offer(client, c, it)['offer_id']}/seats", headers=c).json())["mine"] == [2]

    r = client.post("/v1/orders", headers=b, json={"offer_id": offer_b["offer_id"],
                                                   "travelers": [traveler("张三"), traveler("李四")]})
    assert r.status_code == 201, r.text
    order = r.json()
    assert client.post(order["payment"]["confirm_url"], headers=b).status_code == 200
    tickets = client.get(f"/v1/orders/{order['order_id']}", headers=b).json()["tickets"]
    assert [[x["seat"] for x in t["legs"] if x["seat"]] for t in tickets] == [["9"], ["5"]]


def test_seat_choice_attacks_are_refused_and_change_nothing(client, login, demo) -> None:  # noqa: ANN001, F811
    _, a = login("passenger")
    _, b = login("passenger")
    it = journey(client, demo)
    offer_a = _offer(client, a, it)
    offer_b = _offer(client, b, it)
    url_b = f"/v1/offers/{offer_b['offer_id']}/seats"
    coach = _coach(client.get(url_b, headers=b).json())
    leg_index, capacity = coach["leg_index"], coach["capacity"]
    assert coach["mine"] == [2]

    # another passenger's held seat
    r = client.put(url_b, headers=b, json={"leg_index": leg_index, "seats": [1]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "seat_taken", r.text
    # outside the coach, the wrong count, the same seat twice, a leg without seats
    for seats_ in ([0], [capacity + 1], [-3], [4, 5]):
        r = client.put(url_b, headers=b, json={"leg_index": leg_index, "seats": seats_})
        assert r.status_code == 422, (seats_, r.text)
    r = client.put(url_b, headers=b, json={"leg_index": 0, "seats": [4]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_seat_map", r.text
    # someone else's offer: not found, like one that does not exist
    r = client.put(f"/v1/offers/{offer_a['offer_id']}/seats", headers=b, json={"leg_index": leg_index, "seats": [7]})
    assert r.status_code == 404
    assert client.get(f"/v1/offers/{offer_a['offer_id']}/seats", headers=b).status_code == 404
    assert _coach(client.get(url_b, headers=b).json())["mine"] == [2]  # nothing changed
    assert _coach(client.get(f"/v1/offers/{offer_a['offer_id']}/seats", headers=a).json())["mine"] == [1]

    _, c = login("passenger")
    offer_c = _offer(client, c, it, 2)
    r = client.put(f"/v1/offers/{offer_c['offer_id']}/seats", headers=c, json={"leg_index": leg_index, "seats": [6, 6]})
    assert r.status_code == 422, r.text

    # a sold seat is taken too; an ordered offer's seats no longer move
    r = client.post("/v1/orders", headers=a, json={"offer_id": offer_a["offer_id"], "travelers": [traveler()]})
    assert r.status_code == 201, r.text
    assert client.post(r.json()["payment"]["confirm_url"], headers=a).status_code == 200
    r = client.put(url_b, headers=b, json={"leg_index": leg_index, "seats": [1]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "seat_taken"
    r = client.put(f"/v1/offers/{offer_a['offer_id']}/seats", headers=a, json={"leg_index": leg_index, "seats": [8]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "offer_already_ordered", r.text

    # a lapsed offer (its hold gone) cannot take a seat
    demo.advance(hours=1)
    r = client.put(url_b, headers=b, json={"leg_index": leg_index, "seats": [8]})
    assert r.status_code in (409, 410) and r.json()["error"]["code"] in ("offer_expired",), r.text


def test_concurrent_choices_of_one_seat_give_it_to_exactly_one_hold(settings) -> None:  # noqa: ANN001
    """Nineteen holds race for free seat 30 (Lua, atomic on real Redis and fakeredis): one gets it, nobody else moves."""
    import datetime as dt
    from concurrent.futures import ThreadPoolExecutor

    from maas.redis_client import get_redis
    from ticketing import seats

    r = get_redis(settings)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    day = now.date().isoformat()
    key = seats.hold_key("yx-coach:RACE", day)
    until = now + dt.timedelta(minutes=10)
    held = {f"off_{i}": seats.acquire(r, key=key, service_date=day, hold_id=f"off_{i}", seats=1, capacity=45,
                                      until=until, now=now) for i in range(20)}
    assert sorted(s for v in held.values() for s in v) == list(range(1, 21))
    racers = [h for h, v in held.items() if v != [7]]

    def choose(hold_id: str) -> int:
        return seats.choose(r, key=key, service_date=day, hold_id=hold_id, seats=[30], until=until, now=now)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(zip(racers, pool.map(choose, racers)))
    assert sorted(results.values()) == [0] * (len(racers) - 1) + [1]
    (winner,) = [h for h, ok in results.items() if ok == 1]
    owners = {}
    for m in r.zrange(key, 0, -1):
        seat, hold = (m.decode() if isinstance(m, bytes) else m).split("|")
        assert seat not in owners, f"seat {seat} held twice"
        owners[seat] = hold
    assert owners["30"] == winner and len(owners) == 20
    assert seats.choose(r, key=key, service_date=day, hold_id="off_gone", seats=[31], until=until, now=now) == -1
