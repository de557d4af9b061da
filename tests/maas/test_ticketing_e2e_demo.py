"""End to end over HTTP on the demo city with the sandbox provider (both backends).

plan -> offer -> order -> sandbox confirm -> tickets -> QR -> gates -> refund,
on a multi-operator journey: bus (云溪公交) + metro (云溪地铁) + coach (云溪客运).
"""

from __future__ import annotations

import datetime as dt

from tests.ticketing_support import buy, city, demo, gate_headers, journey, resident_id, traveler  # noqa: F401


def test_multi_operator_ticket_bought_validated_and_partly_refunded(client, login, engine, demo):
    _uid, h = login("passenger")
    it = journey(client, demo)
    child_id = resident_id(birth=f"{demo.now.year - 8}0601", seq="456")
    offer, order = buy(client, h, it, [traveler("张三"), traveler("李小明", "child", id_number=child_id)])
    assert [leg["operator_id"] for leg in offer["legs"]] == ["yunxi-bus", "yunxi-metro", "yunxi-coach"]
    assert offer["total"]["currency"] == "CNY" and offer["total"]["amount"] > 0
    assert offer["total"]["amount"] == sum(leg["price"]["amount"] for leg in offer["legs"])
    adult, child = offer["travelers"]
    assert child["total"]["amount"] < adult["total"]["amount"]  # child concession
    assert offer["legs"][2]["seats"] == ["1", "2"] and offer["legs"][0]["seats"] is None
    assert order["status"] == "pending_payment" and order["payment"]["provider"] == "sandbox"

    r = client.post(order["payment"]["confirm_url"], headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ticketed"
    got = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()
    assert got["status"] == "ticketed" and got["payments"][0]["status"] == "succeeded"
    t1, t2 = got["tickets"]
    assert t1["traveler"]["name"] == "张*" and t1["traveler"]["id_number"] == "110***********" + resident_id()[-4:]
    assert "李小明" not in r.text + str(got) and child_id not in str(got)
    assert [len(t["legs"]) for t in got["tickets"]] == [3, 3]
    assert {leg["status"] for t in got["tickets"] for leg in t["legs"]} == {"unused"}
    assert [leg["seat"] for leg in t1["legs"]] == [None, None, "1"]
    assert sum(leg["price"]["amount"] for t in got["tickets"] for leg in t["legs"]) == offer["total"]["amount"]

    # QR at the bus gate: accepted once, then the replay, a tampered code and another operator's gate are refused
    qr = client.get(f"/v1/tickets/{t1['ticket_id']}/qr", headers=h).json()
    assert qr["payload"].startswith("MQR") and qr["size_bytes"] < 200
    bus_gate, bus_h = gate_headers(engine, "yunxi-bus")
    metro_gate, metro_h = gate_headers(engine, "yunxi-metro")
    body = {"gate_id": bus_gate, "stop_id": "yx-bus:YXYZ", "payload": qr["payload"]}
    ok = client.post("/v1/gates/validate", headers=bus_h, json=body).json()
    assert ok == {"result": "accepted", "reason": None, "ticket_id": t1["ticket_id"],
                  "leg_id": t1["legs"][0]["leg_id"]}
    again = client.post("/v1/gates/validate", headers=bus_h, json=body).json()
    assert (again["result"], again["reason"]) == ("rejected", "already_used")
    p = qr["payload"]
    tampered = p[:12] + ("A" if p[12] != "A" else "B") + p[13:]
    bad = client.post("/v1/gates/validate", headers=bus_h, json={**body, "payload": tampered}).json()
    assert (bad["result"], bad["reason"]) == ("rejected", "bad_signature")
    wrong = client.post("/v1/gates/validate", headers=metro_h,
                        json={"gate_id": metro_gate, "stop_id": "yx-bus:YXYZ", "payload": p}).json()
    assert wrong["reason"] == "wrong_stop" or wrong["reason"] == "wrong_operator"
    wrong_op = client.post("/v1/gates/validate", headers=bus_h,
                           json={"gate_id": bus_gate, "stop_id": t1["legs"][1]["from_stop_id"],
                                 "payload": p}).json()
    assert wrong_op["reason"] == "wrong_stop"
    r = client.post("/v1/gates/validate", headers=bus_h, json={**body, "gate_id": metro_gate})
    assert r.status_code == 403 and r.json()["error"]["code"] == "gate_mismatch"

    # the screenshot goes stale
    demo.advance(seconds=120)
    stale = client.post("/v1/gates/validate", headers=metro_h,
                        json={"gate_id": metro_gate, "stop_id": t1["legs"][1]["from_stop_id"], "payload": p}).json()
    assert stale["reason"] == "expired_qr"

    # refund the adult's coach leg; the used bus leg is not refundable
    coach_leg = t1["legs"][2]["leg_id"]
    r = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h, json={"leg_ids": [t1["legs"][0]["leg_id"]]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "leg_not_refundable"
    r = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h, json={"leg_ids": [coach_leg]})
    assert r.status_code == 201, r.text
    refund = r.json()
    coach_price = t1["legs"][2]["price"]["amount"]
    assert refund["amount"]["amount"] + refund["fee"]["amount"] == coach_price
    assert refund["fee"]["amount"] == (coach_price * 5 + 50) // 100  # 2-24 h before departure: 5 %
    got = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()
    assert got["status"] == "partially_refunded" and got["refunds"][0]["status"] == "succeeded"

    coach_gate, coach_h = gate_headers(engine, "yunxi-coach")
    demo.advance(hours=2)  # boarding time at the coach station
    cbody = {"gate_id": coach_gate, "stop_id": "yx-coach:YXZZ"}
    q1 = client.get(f"/v1/tickets/{t1['ticket_id']}/qr", headers=h).json()["payload"]
    q2 = client.get(f"/v1/tickets/{t2['ticket_id']}/qr", headers=h).json()["payload"]
    assert client.post("/v1/gates/validate", headers=coach_h, json={**cbody, "payload": q1}).json()["reason"] \
        == "refunded"
    assert client.post("/v1/gates/validate", headers=coach_h, json={**cbody, "payload": q2}).json()["result"] \
        == "accepted"
    keys = client.get("/v1/gates/keys", headers=coach_h).json()
    assert coach_leg in keys["revoked_legs"] and keys["keys"][0]["kty"] == "OKP"

    # the second traveller's ID card opens the metro gate at the station of the boarding platform (一证通行)
    assert t2["legs"][1]["from_stop_id"] == "yx-metro:RMGC_L1"
    r = client.post("/v1/gates/validate", headers=metro_h,
                    json={"gate_id": metro_gate, "stop_id": "yx-metro:RMGC", "id_number": child_id})  # the station
    assert r.json() == {"result": "accepted", "reason": None, "ticket_id": t2["ticket_id"],
                        "leg_id": t2["legs"][1]["leg_id"]}
    svg = client.get(f"/v1/tickets/{t2['ticket_id']}/qr?format=svg", headers=h)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    png = client.get(f"/v1/tickets/{t2['ticket_id']}/qr?format=png", headers=h)
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_id_number_opens_the_gate_once(client, login, engine, demo):
    _uid, h = login("passenger")
    it = journey(client, demo)
    number = resident_id(birth="19851111", seq="777")
    _offer, order = buy(client, h, it, [traveler("王五", id_number=number)])
    assert client.post(order["payment"]["confirm_url"], headers=h).json()["status"] == "ticketed"
    gate, gh = gate_headers(engine, "yunxi-bus")
    body = {"gate_id": gate, "stop_id": "yx-bus:YXYZ", "id_number": number.lower()}
    first = client.post("/v1/gates/validate", headers=gh, json=body).json()
    assert first["result"] == "accepted"
    assert client.post("/v1/gates/validate", headers=gh, json=body).json()["reason"] == "already_used"
    other = client.post("/v1/gates/validate", headers=gh, json={**body, "id_number": resident_id(seq="999")}).json()
    assert other["reason"] == "unknown_ticket"


def test_other_passengers_cannot_see_or_pay_an_order(client, login, demo):
    _uid, h = login("passenger")
    _uid2, h2 = login("passenger")
    it = journey(client, demo)
    _offer, order = buy(client, h, it, [traveler()])
    assert client.get(f"/v1/orders/{order['order_id']}", headers=h2).status_code == 404
    assert client.post(order["payment"]["confirm_url"], headers=h2).status_code == 404
    assert client.get("/v1/tickets", headers=h2).json() == {"tickets": []}


def test_order_is_idempotent_and_states_are_enforced(client, login, demo):
    _uid, h = login("passenger")
    it = journey(client, demo)
    r = client.post("/v1/offers", headers=h, json={"itinerary": it, "travelers": [{"rider_category": "adult"}]})
    offer = r.json()
    body = {"offer_id": offer["offer_id"], "travelers": [traveler()]}
    hk = dict(h, **{"Idempotency-Key": "k-1"})
    first = client.post("/v1/orders", headers=hk, json=body)
    second = client.post("/v1/orders", headers=hk, json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["order_id"] == second.json()["order_id"]
    other = client.post("/v1/orders", headers=hk, json={**body, "travelers": [traveler("李四")]})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    dup = client.post("/v1/orders", headers=dict(h, **{"Idempotency-Key": "k-2"}), json=body)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "offer_already_ordered"
    order_id = first.json()["order_id"]
    assert client.post(f"/v1/orders/{order_id}/cancel", headers=h).json()["status"] == "cancelled"
    r = client.post(f"/v1/orders/{order_id}/cancel", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"
    assert r.json()["error"]["details"] == {"order_id": order_id, "from": "cancelled", "to": "cancelled"}
    late = client.post(f"/v1/payments/sandbox/{order_id}/confirm", headers=h).json()
    assert late["status"] == "cancelled" and late["outcome"] == "refunded_late_payment"


def test_bad_travellers_are_refused_with_codes(client, login, demo):
    _uid, h = login("passenger")
    it = journey(client, demo)
    offer = client.post("/v1/offers", headers=h, json={"itinerary": it, "travelers": [
        {"rider_category": "senior"}]}).json()

    def order(t):  # noqa: ANN001, ANN202
        return client.post("/v1/orders", headers=h, json={"offer_id": offer["offer_id"], "travelers": [t]})

    bad_check = resident_id()[:-1] + ("0" if resident_id()[-1] != "0" else "1")
    assert order(traveler(rider_category="senior", id_number=bad_check)).json()["error"]["code"] \
        == "invalid_id_number"
    assert order(traveler(rider_category="senior")).json()["error"]["code"] == "concession_not_eligible"
    assert order(traveler(rider_category="adult")).json()["error"]["code"] == "travelers_mismatch"
    assert order({**traveler(rider_category="senior"), "id_type": "library_card"}).json()["error"]["code"] \
        == "unsupported_id_type"
    passport = {**traveler(rider_category="senior"), "id_type": "passport", "id_number": "E12345678",
                "birth_date": "1950-01-01"}
    assert order(passport).status_code == 201


def test_tampered_or_departed_itineraries_are_refused(client, login, demo):
    _uid, h = login("passenger")
    it = journey(client, demo)

    def offer(x):  # noqa: ANN001, ANN202
        return client.post("/v1/offers", headers=h, json={"itinerary": x, "travelers": [{"rider_category": "adult"}]})

    import copy

    moved = copy.deepcopy(it)
    bus = next(leg for leg in moved["legs"] if leg["mode"] == "BUS")
    bus["departure"] = (dt.datetime.fromisoformat(bus["departure"]) - dt.timedelta(minutes=5)).isoformat()
    assert offer(moved).json()["error"]["code"] == "itinerary_mismatch"
    other_trip = copy.deepcopy(it)
    next(leg for leg in other_trip["legs"] if leg["mode"] == "COACH")["trip_id"] = "yx-coach:nope"
    assert offer(other_trip).status_code == 409
    no_legs = {"legs": []}
    assert offer(no_legs).json()["error"]["code"] == "invalid_itinerary"
    demo.advance(hours=3)
    r = offer(it)
    assert r.status_code == 409 and r.json()["error"]["code"] == "itinerary_departed"


def test_expiry_job_expires_unpaid_orders_and_past_legs(client, login, demo, settings):
    from maas.jobs import run_jobs

    _uid, h = login("passenger")
    it = journey(client, demo)
    _offer, unpaid = buy(client, h, it, [traveler()])
    _offer, paid = buy(client, h, it, [traveler("李四")])
    assert client.post(paid["payment"]["confirm_url"], headers=h).json()["status"] == "ticketed"
    later = demo.now + dt.timedelta(days=1)
    first = run_jobs(settings, now=later)
    assert first["ticketing.expire_orders"] == "1 unpaid orders expired"
    assert first["ticketing.expire_legs"] == "3 ticket legs expired"
    again = run_jobs(settings, now=later)
    assert again["ticketing.expire_orders"].startswith("0 ") and again["ticketing.expire_legs"].startswith("0 ")
    assert client.get(f"/v1/orders/{unpaid['order_id']}", headers=h).json()["status"] == "expired"
    tickets = client.get("/v1/tickets", headers=h).json()["tickets"]
    assert [t["status"] for t in tickets] == ["expired"]
    assert {leg["status"] for leg in tickets[0]["legs"]} == {"expired"}


def test_device_bound_qr_works_offline_and_offline_taps_are_never_counted_twice(client, login, engine, demo):
    from ticketing.qr_client import build_device_qr, generate_device_key

    _uid, h = login("passenger")
    _offer, order = buy(client, h, journey(client, demo), [traveler()])
    client.post(order["payment"]["confirm_url"], headers=h)
    ticket = client.get("/v1/tickets", headers=h).json()["tickets"][0]
    key, public = generate_device_key()
    r = client.post(f"/v1/tickets/{ticket['ticket_id']}/device-key", headers=h, json={"public_key": public})
    assert r.status_code == 200, r.text
    credential = r.json()["credential"]
    _other, other_public = generate_device_key()
    r = client.post(f"/v1/tickets/{ticket['ticket_id']}/device-key", headers=h, json={"public_key": other_public})
    assert r.status_code == 409 and r.json()["error"]["code"] == "device_already_bound"

    # the phone is offline: it signs the current time itself; the gate checks both signatures
    gate, gh = gate_headers(engine, "yunxi-bus")
    other_gate, ogh = gate_headers(engine, "yunxi-bus")
    scanned = demo.now
    code = build_device_qr(credential, key, now=scanned)
    assert len(code) < 300
    # offline gates upload later: the first tap is counted, a re-upload is a duplicate, a second
    # gate seeing the same leg is a conflict, the same gate again a replay — none counted twice
    demo.advance(minutes=20)
    taps = {"gate_id": gate, "stop_id": "yx-bus:YXYZ",
            "taps": [{"tap_id": "t1", "payload": code, "scanned_at": scanned.isoformat()},
                     {"tap_id": "t2", "payload": build_device_qr(credential, key, now=scanned + dt.timedelta(seconds=5)),
                      "scanned_at": (scanned + dt.timedelta(seconds=5)).isoformat()}]}
    first = client.post("/v1/gates/taps", headers=gh, json=taps).json()
    assert [x["result"] for x in first["results"]] == ["accepted", "flagged"]
    assert first["results"][1]["flag"] == "replay" and first["accepted"] == 1
    again = client.post("/v1/gates/taps", headers=gh, json=taps).json()
    assert again["duplicates"] == 2 and again["accepted"] == 0
    other = client.post("/v1/gates/taps", headers=ogh, json={**taps, "gate_id": other_gate, "taps": taps["taps"][:1]})
    assert other.json()["results"][0]["flag"] == "conflict"
    legs = client.get(f"/v1/tickets/{ticket['ticket_id']}", headers=h).json()["legs"]
    assert [leg["status"] for leg in legs] == ["used", "unused", "unused"]
    # online, a stale device code is refused; a fresh one for the metro leg passes
    metro_gate, mh = gate_headers(engine, "yunxi-metro")
    mbody = {"gate_id": metro_gate, "stop_id": legs[1]["from_stop_id"]}
    stale = client.post("/v1/gates/validate", headers=mh, json={**mbody, "payload": code}).json()
    assert stale["reason"] == "expired_qr"
    forged = build_device_qr(credential, _other, now=demo.now)
    assert client.post("/v1/gates/validate", headers=mh, json={**mbody, "payload": forged}).json()["reason"] \
        == "bad_device_signature"
    fresh = build_device_qr(credential, key, now=demo.now)
    assert client.post("/v1/gates/validate", headers=mh, json={**mbody, "payload": fresh}).json()["result"] \
        == "accepted"


def test_sold_out_coach_is_refused_and_seats_come_back(client, login, app, demo):
    _uid, h = login("passenger")
    it = journey(client, demo)
    coach = next(leg for leg in it["legs"] if leg["mode"] == "COACH")
    snap = app.state.planner.snapshot
    snap.seat_capacity[coach["trip_id"]] = 2  # shrink this trip to 2 seats (operator configuration)
    body = {"itinerary": it, "travelers": [{"rider_category": "adult"}, {"rider_category": "adult"}]}
    first = client.post("/v1/offers", headers=h, json=body)
    assert first.status_code == 201
    r = client.post("/v1/offers", headers=h, json={**body, "travelers": body["travelers"][:1]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "sold_out"
    demo.advance(seconds=app.state.settings.offer_ttl_s + 1)  # the hold lapses by itself
    assert client.post("/v1/offers", headers=h, json=body).status_code == 201
