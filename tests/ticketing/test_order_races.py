"""Order creation without a savepoint (one INSERT ... ON CONFLICT DO NOTHING): concurrent requests for one offer
still make one order, a retry with the same Idempotency-Key gets that order, another body gets 409 as before
(both backends)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlmodel import select

from tests.ticketing_support import city, demo, journey, traveler  # noqa: F401


def _offer(client, h, demo):  # noqa: ANN001, ANN202
    r = client.post("/v1/offers", headers=h, json={"itinerary": journey(client, demo),
                                                  "travelers": [{"rider_category": "adult"}]})
    assert r.status_code == 201, r.text
    return r.json()


def test_concurrent_orders_of_one_offer_with_one_key_make_one_order(client, login, engine, demo) -> None:  # noqa: ANN001
    from maas.db import session_scope
    from ticketing.models import Order, Traveler

    _uid, h = login("passenger")
    offer = _offer(client, h, demo)
    body = {"offer_id": offer["offer_id"], "travelers": [traveler()]}

    def order(_i: int) -> tuple[int, str]:
        r = client.post("/v1/orders", headers={**h, "Idempotency-Key": "k-1"}, json=body)
        return r.status_code, r.json().get("order_id") or r.json()["error"]["code"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(order, range(16)))
    ids = {oid for _code, oid in results}
    assert len(ids) == 1, results
    assert sorted(code for code, _ in results).count(201) == 1 and {c for c, _ in results} <= {200, 201}
    with session_scope(engine) as s:
        orders = s.exec(select(Order).where(Order.offer_id == offer["offer_id"])).all()
        assert len(orders) == 1
        assert len(s.exec(select(Traveler).where(Traveler.order_id == orders[0].order_id)).all()) == 1
    # the same key with another body is refused; another key for the ordered offer too
    r = client.post("/v1/orders", headers={**h, "Idempotency-Key": "k-1"},
                    json={**body, "travelers": [traveler(name="李四")]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"
    r = client.post("/v1/orders", headers={**h, "Idempotency-Key": "k-2"}, json=body)
    assert r.status_code == 409 and r.json()["error"]["code"] == "offer_already_ordered"


def test_concurrent_orders_of_one_offer_without_keys_make_one_order(client, login, engine, demo) -> None:  # noqa: ANN001
    _uid, h = login("passenger")
    offer = _offer(client, h, demo)
    body = {"offer_id": offer["offer_id"], "travelers": [traveler()]}

    def order(_i: int) -> tuple[int, str]:
        r = client.post("/v1/orders", headers=h, json=body)
        return r.status_code, r.json().get("order_id") or r.json()["error"]["code"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(order, range(12)))
    assert [c for c, _ in results].count(201) == 1, results
    assert all(v == "offer_already_ordered" for c, v in results if c != 201)
    created = next(v for c, v in results if c == 201)
    got = client.get(f"/v1/orders/{created}", headers=h).json()
    assert got["status"] == "pending_payment" and got["payment"]["status"] == "pending"
