"""Attacks on gate credentials (issue 12, items 9-12), performed over HTTP on the demo city (both backends).

9. weak device keys: the Ed25519 identity point (and every other small-order or
   non-canonical encoding) as the "device key" of a ticket lets anyone who holds
   the credential mint codes: R = identity, S = 0 verifies for any message.
"""

from __future__ import annotations

import base64
import datetime as dt
import struct

import pytest

from tests.ticketing_support import buy, city, demo, gate_headers, journey, traveler  # noqa: F401
from ticketing.qr import IssuerKeys, QRRejected, verify_qr

# --------------------------------------------------------------------------- the known bad Ed25519 points

P = 2**255 - 19
#: y of the order-8 points (x = ±...); the other order-8 pair has y = P - Y8.
Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022


def _enc(y: int, sign: int = 0) -> bytes:
    return (y | (sign << 255)).to_bytes(32, "little")


#: The 8 points of small order in their canonical encodings: identity (order 1), (0, -1) (order 2),
#: (±sqrt(-1), 0) (order 4) and the four points of order 8.
SMALL_ORDER = [_enc(1), _enc(P - 1), _enc(0), _enc(0, 1), _enc(Y8), _enc(Y8, 1), _enc(P - Y8), _enc(P - Y8, 1)]
#: Non-canonical encodings of them: x = 0 with the sign bit set, and y >= p (y = p is 0, y = p + 1 is 1).
NON_CANONICAL = [_enc(1, 1), _enc(P - 1, 1), _enc(P), _enc(P, 1), _enc(P + 1), _enc(P + 1, 1)]
BAD_KEYS = SMALL_ORDER + NON_CANONICAL
IDENTITY = SMALL_ORDER[0]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _legacy_credential(issuer: IssuerKeys, ticket_id: str, device_key: bytes, valid_from: dt.datetime,
                       valid_until: dt.datetime) -> bytes:
    """A kind-2 credential signed by the issuer for any key, as one bound before keys were checked."""
    kid = issuer.current.encode()
    body = (bytes([2, len(kid)]) + kid + bytes.fromhex(ticket_id[4:])
            + struct.pack(">II", int(valid_from.timestamp()), int(valid_until.timestamp())) + device_key)
    return body + issuer.private[issuer.current].sign(body)


def _forged_device_qr(credential: bytes, t: int) -> str:
    """A kind-2 code 'signed' without any private key: R = identity, S = 0."""
    signed = credential + struct.pack(">I", t)
    return "MQR" + _b64(signed + IDENTITY + bytes(32))


def _bought_ticket(client, login, demo):  # noqa: ANN001, ANN202
    _uid, h = login("passenger")
    _offer, order = buy(client, h, journey(client, demo), [traveler()])
    r = client.post(order["payment"]["confirm_url"], headers=h)
    assert r.status_code == 200, r.text
    return h, client.get("/v1/tickets", headers=h).json()["tickets"][0]


# --------------------------------------------------------------------------- 9. weak device keys


def test_the_bad_points_are_what_they_claim() -> None:
    assert len(set(SMALL_ORDER)) == 8 and len(set(NON_CANONICAL)) == 6 and IDENTITY == bytes([1]) + bytes(31)


@pytest.mark.parametrize("bad", BAD_KEYS, ids=[b.hex()[:8] + b.hex()[-2:] for b in BAD_KEYS])
def test_a_credential_naming_a_weak_device_key_never_verifies(bad: bytes) -> None:
    """Even a credential the issuer did sign (bound before this check existed) is refused; the issuer
    itself no longer signs one."""
    issuer = IssuerKeys("q1:" + base64.b64encode(bytes(range(32))).decode())
    now = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
    cred = _legacy_credential(issuer, "tkt_" + "ab" * 12, bad, now - dt.timedelta(hours=1), now + dt.timedelta(hours=1))
    with pytest.raises(ValueError):
        issuer.device_credential("tkt_" + "ab" * 12, device_key=bad, valid_from=now, valid_until=now)
    with pytest.raises(QRRejected) as exc:
        verify_qr(_forged_device_qr(cred, int(now.timestamp())), issuer.public, now=now, ttl_s=30)
    assert exc.value.code == "bad_device_key"


def test_weak_device_keys_are_refused_at_registration_and_at_the_gate(client, login, engine, app, demo):
    from maas.journeys import runtime

    h, ticket = _bought_ticket(client, login, demo)
    tid = ticket["ticket_id"]
    for bad in BAD_KEYS:
        r = client.post(f"/v1/tickets/{tid}/device-key", headers=h, json={"public_key": _b64(bad)})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_device_key", (bad.hex(), r.text)
    assert client.get(f"/v1/tickets/{tid}", headers=h).json()["device_bound"] is False

    # a credential bound to the identity point (as one issued before the fix): the gate refuses the forgery
    issued = _legacy_credential(runtime(app).issuer, tid, IDENTITY,
                                dt.datetime.fromisoformat(ticket["legs"][0]["valid_from"]),
                                dt.datetime.fromisoformat(ticket["legs"][-1]["valid_until"]))
    gate, gh = gate_headers(engine, "yunxi-bus", "yx-bus:YXYZ")
    forged = _forged_device_qr(issued, int(demo.now.timestamp()))
    d = client.post("/v1/gates/validate", headers=gh,
                    json={"gate_id": gate, "stop_id": "yx-bus:YXYZ", "payload": forged}).json()
    assert (d["result"], d["reason"]) == ("rejected", "bad_device_key")
    taps = client.post("/v1/gates/taps", headers=gh, json={"gate_id": gate, "stop_id": "yx-bus:YXYZ", "taps": [
        {"tap_id": "x1", "payload": forged, "scanned_at": demo.now.isoformat()}]}).json()
    assert taps["results"][0]["reason"] == "bad_device_key" and taps["accepted"] == 0
    legs = client.get(f"/v1/tickets/{tid}", headers=h).json()["legs"]
    assert {leg["status"] for leg in legs} == {"unused"}


# --------------------------------------------------------------------------- 10. device binding is exclusive


def test_a_device_bound_ticket_gets_no_rotating_codes_and_old_ones_no_longer_admit(client, login, engine, demo):
    from ticketing.qr_client import build_device_qr, generate_device_key

    h, ticket = _bought_ticket(client, login, demo)
    tid = ticket["ticket_id"]
    before = client.get(f"/v1/tickets/{tid}/qr", headers=h)
    assert before.status_code == 200
    key, public = generate_device_key()
    r = client.post(f"/v1/tickets/{tid}/device-key", headers=h, json={"public_key": public})
    assert r.status_code == 200, r.text
    credential = r.json()["credential"]

    # the thief asks the server for a shareable code: refused, in every format
    for fmt in ("json", "svg", "png"):
        r = client.get(f"/v1/tickets/{tid}/qr", headers=h, params={"format": fmt})
        assert r.status_code == 409 and r.json()["error"]["code"] == "device_bound", (fmt, r.status_code)

    # a rotating code fetched just before binding (still fresh) no longer opens an online gate
    gate, gh = gate_headers(engine, "yunxi-bus", "yx-bus:YXYZ")
    body = {"gate_id": gate, "stop_id": "yx-bus:YXYZ"}
    d = client.post("/v1/gates/validate", headers=gh, json={**body, "payload": before.json()["payload"]}).json()
    assert (d["result"], d["reason"]) == ("rejected", "device_bound")
    assert {leg["status"] for leg in client.get(f"/v1/tickets/{tid}", headers=h).json()["legs"]} == {"unused"}
    # a credential the issuer signed for another (valid) key does not match the binding
    from maas.journeys import runtime

    _k2, other_public = generate_device_key()
    other = runtime(client.app).issuer.device_credential(
        tid, device_key=base64.urlsafe_b64decode(other_public + "="),
        valid_from=dt.datetime.fromisoformat(ticket["legs"][0]["valid_from"]),
        valid_until=dt.datetime.fromisoformat(ticket["legs"][-1]["valid_until"]))
    d = client.post("/v1/gates/validate", headers=gh,
                    json={**body, "payload": build_device_qr(_b64(other), _k2, now=demo.now)}).json()
    assert (d["result"], d["reason"]) == ("rejected", "device_mismatch")
    # the device's own code does
    d = client.post("/v1/gates/validate", headers=gh,
                    json={**body, "payload": build_device_qr(credential, key, now=demo.now)}).json()
    assert d["result"] == "accepted", d


# --------------------------------------------------------------------------- 11. a gate validates only where it stands


def test_a_gate_cannot_claim_another_stop(client, login, engine, demo):
    h, ticket = _bought_ticket(client, login, demo)
    qr = client.get(f"/v1/tickets/{ticket['ticket_id']}/qr", headers=h).json()["payload"]
    # a bus gate standing at 人民广场 names the stop where the ticket's bus leg starts
    elsewhere, eh = gate_headers(engine, "yunxi-bus", "yx-bus:RMGC")
    r = client.post("/v1/gates/validate", headers=eh, json={"gate_id": elsewhere, "stop_id": "yx-bus:YXYZ",
                                                            "payload": qr})
    assert r.status_code == 403 and r.json()["error"]["code"] == "stop_mismatch", r.text
    r = client.post("/v1/gates/taps", headers=eh, json={"gate_id": elsewhere, "stop_id": "yx-bus:YXYZ", "taps": [
        {"tap_id": "a1", "payload": qr, "scanned_at": demo.now.isoformat()}]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "stop_mismatch", r.text
    # a gate registered without a stop roams only when explicitly allowed
    from maas import accounts
    from maas.db import session_scope

    with session_scope(engine) as s:
        loose, token = accounts.create_gate(s, operator_id="yunxi-bus")
    lh = {"Authorization": f"Bearer {token}"}
    r = client.post("/v1/gates/validate", headers=lh, json={"gate_id": loose.gate_id, "stop_id": "yx-bus:YXYZ",
                                                            "payload": qr})
    assert r.status_code == 403 and r.json()["error"]["code"] == "gate_stop_required", r.text
    assert {leg["status"] for leg in client.get(f"/v1/tickets/{ticket['ticket_id']}", headers=h).json()["legs"]} \
        == {"unused"}
    # only the operator's staff (or an admin) may let it roam
    _, other_staff = login("operator", "yunxi-metro")
    r = client.patch(f"/v1/operators/yunxi-bus/gates/{loose.gate_id}", headers=other_staff, json={"roaming": True})
    assert r.status_code == 403
    _, staff = login("operator", "yunxi-bus")
    r = client.patch(f"/v1/operators/yunxi-metro/gates/{loose.gate_id}", headers=other_staff, json={"roaming": True})
    assert r.status_code == 404  # not a gate of that operator
    r = client.patch(f"/v1/operators/yunxi-bus/gates/{loose.gate_id}", headers=staff, json={"roaming": True})
    assert r.status_code == 200 and r.json()["roaming"] is True, r.text
    d = client.post("/v1/gates/validate", headers=lh, json={"gate_id": loose.gate_id, "stop_id": "yx-bus:YXYZ",
                                                            "payload": qr}).json()
    assert d["result"] == "accepted", d


def test_a_gate_at_the_right_stop_or_its_parent_station_admits(client, login, engine, demo):
    h, ticket = _bought_ticket(client, login, demo)
    qr = client.get(f"/v1/tickets/{ticket['ticket_id']}/qr", headers=h).json()["payload"]
    gate, gh = gate_headers(engine, "yunxi-bus", "yx-bus:YXYZ")
    d = client.post("/v1/gates/validate", headers=gh, json={"gate_id": gate, "stop_id": "yx-bus:YXYZ",
                                                            "payload": qr}).json()
    assert d["result"] == "accepted", d
    # a metro gate registered at a platform may name the platform's station
    metro_leg = ticket["legs"][1]
    platform = metro_leg["from_stop_id"]
    mgate, mh = gate_headers(engine, "yunxi-metro", platform)
    station = "yx-metro:RMGC"
    assert platform.startswith(station) and platform != station
    qr = client.get(f"/v1/tickets/{ticket['ticket_id']}/qr", headers=h).json()["payload"]
    d = client.post("/v1/gates/validate", headers=mh, json={"gate_id": mgate, "stop_id": station, "payload": qr}).json()
    assert d["result"] == "accepted", d
    # admins register roaming gates explicitly
    _, admin = login("admin")
    r = client.post("/v1/admin/gates", headers=admin, json={"operator_id": "yunxi-coach", "roaming": True})
    assert r.status_code == 201 and r.json()["roaming"] is True
    r = client.post("/v1/admin/gates", headers=admin, json={"operator_id": "yunxi-coach", "stop_id": "yx-coach:YXZZ",
                                                            "roaming": True})
    assert r.status_code == 400  # a gate either stands at a stop or roams


# --------------------------------------------------------------------------- 12. another operator's gate learns nothing


def test_another_operators_gate_learns_nothing_from_faces_or_id_numbers(client, login, app, engine, demo,
                                                                        shared_data):
    from maas import accounts
    from maas.db import session_scope
    from tests.face_support import caching_encoder, enrol, photo_b64
    from tests.ticketing_support import resident_id

    app.state.face_encoder = caching_encoder()
    _uid, h = login("passenger")
    enrolled_id, bare_id = resident_id(seq="321"), resident_id(seq="654")
    _offer, order = buy(client, h, journey(client, demo), [traveler("张三", id_number=enrolled_id),
                                                           traveler("李四", id_number=bare_id)])
    assert client.post(order["payment"]["confirm_url"], headers=h).json()["status"] == "ticketed"
    t1, t2 = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()["tickets"]
    obama = photo_b64(shared_data, "face_recognition/obama.jpg")
    assert enrol(client, h, t1["traveler"]["traveler_id"], obama).status_code == 201

    with session_scope(engine) as s:
        accounts.ensure_operator(s, operator_id="rival", name="rival")
    gate, gh = gate_headers(engine, "rival", "yx-bus:YXYZ")
    calls = caching_encoder().calls

    def ask(**credential):  # noqa: ANN003, ANN202
        r = client.post("/v1/gates/validate", headers=gh, json={"gate_id": gate, "stop_id": "yx-bus:YXYZ",
                                                                **credential})
        assert r.status_code == 200, r.text
        return r.json()

    not_found = ask(ticket_id="tkt_" + "00" * 12, face_image=obama)
    answers = {
        "the same face (a match)": ask(ticket_id=t1["ticket_id"], face_image=photo_b64(shared_data,
                                                                                   "face_recognition/obama2.jpg")),
        "another face (a mismatch)": ask(ticket_id=t1["ticket_id"], face_image=photo_b64(
            shared_data, "face_recognition/biden.jpg")),
        "a traveller without a face": ask(ticket_id=t2["ticket_id"], face_image=obama),
    }
    for what, answer in answers.items():
        assert answer == not_found, what
    assert not_found == {"result": "rejected", "reason": "unknown_ticket", "ticket_id": None, "leg_id": None}
    assert caching_encoder().calls == calls  # no biometric work for a gate that may not admit the ticket

    # an ID number holding a ticket looks exactly like one that holds none
    assert ask(id_number=enrolled_id) == ask(id_number=resident_id(seq="987")) == not_found
    with session_scope(engine) as s:
        from ticketing.models import TicketLeg

        assert {x.status for x in s.query(TicketLeg).filter(TicketLeg.ticket_id.in_([t1["ticket_id"],
                                                                                   t2["ticket_id"]]))} == {"unused"}
