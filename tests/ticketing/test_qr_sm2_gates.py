"""SM2-signed QR codes at the gates, over HTTP on the demo city (issue 16, item 4; both backends).

An operator that chose SM2 gets SM2-signed codes for the tickets with one of its legs; they admit online
(`POST /v1/gates/validate`) and offline (the reference verifier with `GET /v1/gates/keys`, then the
uploaded taps); a tampered one is refused; an operator on Ed25519 is unaffected.
"""

from __future__ import annotations

import base64
import datetime as dt

from tests.ticketing_support import buy, city, demo, gate_headers, journey, traveler  # noqa: F401
from ticketing.qr import IssuerKeys, generate_sm2_private_key, jwks_public_keys, verify_qr

STOP = "yx-bus:YXYZ"


def _with_sm2_key(app, settings) -> IssuerKeys:  # noqa: ANN001
    from maas.journeys import runtime

    spec = settings.secret("issuer_keys") + ",s1:sm2:" + base64.b64encode(generate_sm2_private_key()).decode()
    rt = runtime(app)
    rt.issuer = IssuerKeys(spec)
    return rt.issuer


def _choose(engine, operator_id: str, alg: str) -> None:  # noqa: ANN001
    from maas.db import session_scope
    from maas.models import Operator

    with session_scope(engine) as session:
        op = session.get(Operator, operator_id)
        assert op is not None and op.qr_alg == "ed25519"  # the default, from the migration
        op.qr_alg = alg
        session.add(op)


def _ticket(client, login, demo):  # noqa: ANN001, ANN202
    _uid, h = login("passenger")
    _offer, order = buy(client, h, journey(client, demo), [traveler()])
    r = client.post(order["payment"]["confirm_url"], headers=h)
    assert r.status_code == 200, r.text
    return h, client.get("/v1/tickets", headers=h).json()["tickets"][-1]


def _kid(payload: str) -> str:
    raw = base64.urlsafe_b64decode(payload[3:] + "=" * (-len(payload[3:]) % 4))
    return raw[2:2 + raw[1]].decode()


def test_an_sm2_operator_code_admits_online_and_a_tampered_one_is_refused(client, login, engine, app, settings,
                                                                           demo):
    _with_sm2_key(app, settings)
    _choose(engine, "yunxi-bus", "sm2")
    h, ticket = _ticket(client, login, demo)
    tid = ticket["ticket_id"]
    payload = client.get(f"/v1/tickets/{tid}/qr", headers=h).json()["payload"]
    assert _kid(payload) == "s1"

    gate, gh = gate_headers(engine, "yunxi-bus", STOP)
    body = {"gate_id": gate, "stop_id": STOP}
    keys = client.get("/v1/gates/keys", headers=gh).json()
    sm2 = [k for k in keys["keys"] if k["kid"] == "s1"]
    assert sm2 and (sm2[0]["kty"], sm2[0]["crv"], sm2[0]["alg"]) == ("EC", "SM2", "SM2-SM3")

    i = len(payload) - 10  # inside the signature
    tampered = payload[:i] + ("A" if payload[i] != "A" else "B") + payload[i + 1:]
    d = client.post("/v1/gates/validate", headers=gh, json={**body, "payload": tampered}).json()
    assert (d["result"], d["reason"]) == ("rejected", "bad_signature")
    d = client.post("/v1/gates/validate", headers=gh, json={**body, "payload": payload}).json()
    assert (d["result"], d["ticket_id"]) == ("accepted", tid), d
    d = client.post("/v1/gates/validate", headers=gh, json={**body, "payload": payload}).json()
    assert (d["result"], d["reason"]) == ("rejected", "already_used")


def test_an_sm2_code_admits_offline_with_the_keys_document_and_its_taps_upload(client, login, engine, app,
                                                                                settings, demo):
    _with_sm2_key(app, settings)
    _choose(engine, "yunxi-bus", "sm2")
    h, ticket = _ticket(client, login, demo)
    tid = ticket["ticket_id"]
    payload = client.get(f"/v1/tickets/{tid}/qr", headers=h).json()["payload"]
    gate, gh = gate_headers(engine, "yunxi-bus", STOP)
    doc = client.get("/v1/gates/keys", headers=gh).json()

    # the gate is offline: it verifies with the reference verifier and the keys it fetched earlier
    v = verify_qr(payload, jwks_public_keys(doc), now=demo.now, ttl_s=doc["qr_ttl_s"])
    assert (v.ticket_id, v.kid) == (tid, "s1")
    i = len(payload) - 5
    tampered = payload[:i] + ("A" if payload[i] != "A" else "B") + payload[i + 1:]
    taps = client.post("/v1/gates/taps", headers=gh, json={"gate_id": gate, "stop_id": STOP, "taps": [
        {"tap_id": "t1", "payload": payload, "scanned_at": demo.now.isoformat()},
        {"tap_id": "t2", "payload": tampered, "scanned_at": demo.now.isoformat()}]}).json()
    assert taps["accepted"] == 1 and taps["rejected"] == 1, taps
    assert taps["results"][1]["reason"] == "bad_signature"
    legs = client.get(f"/v1/tickets/{tid}", headers=h).json()["legs"]
    assert [leg["status"] for leg in legs].count("used") == 1


def test_an_sm2_device_credential_admits_offline(client, login, engine, app, settings, demo):
    from ticketing.qr_client import build_device_qr, generate_device_key

    _with_sm2_key(app, settings)
    _choose(engine, "yunxi-bus", "sm2")
    h, ticket = _ticket(client, login, demo)
    tid = ticket["ticket_id"]
    key, public = generate_device_key()
    r = client.post(f"/v1/tickets/{tid}/device-key", headers=h, json={"public_key": public})
    assert r.status_code == 200, r.text
    code = build_device_qr(r.json()["credential"], key, now=demo.now)
    assert _kid(code) == "s1"
    gate, gh = gate_headers(engine, "yunxi-bus", STOP)
    taps = client.post("/v1/gates/taps", headers=gh, json={"gate_id": gate, "stop_id": STOP, "taps": [
        {"tap_id": "d1", "payload": code, "scanned_at": demo.now.isoformat()}]}).json()
    assert taps["accepted"] == 1, taps


def test_an_ed25519_operator_is_unaffected_and_keys_rotate_by_kid(client, login, engine, app, settings, demo):
    issuer = _with_sm2_key(app, settings)
    h, ticket = _ticket(client, login, demo)  # every operator of the journey on the default
    tid = ticket["ticket_id"]
    payload = client.get(f"/v1/tickets/{tid}/qr", headers=h).json()["payload"]
    assert _kid(payload) == issuer.signing["ed25519"]
    gate, gh = gate_headers(engine, "yunxi-bus", STOP)
    body = {"gate_id": gate, "stop_id": STOP}

    # SM2 chosen afterwards, and the SM2 key rotated: codes already shown (Ed25519) still admit
    from maas.journeys import runtime

    _choose(engine, "yunxi-bus", "sm2")
    runtime(app).issuer = IssuerKeys(settings.secret("issuer_keys") + ",s1:sm2:"
                                     + base64.b64encode(generate_sm2_private_key()).decode()
                                     + ",s2:sm2:" + base64.b64encode(generate_sm2_private_key()).decode())
    _h2, t2 = _ticket(client, login, demo)
    p2 = client.get(f"/v1/tickets/{t2['ticket_id']}/qr", headers=_h2).json()["payload"]
    assert _kid(p2) == "s2"
    kids = {k["kid"] for k in client.get("/v1/gates/keys", headers=gh).json()["keys"]}
    assert {"s1", "s2", issuer.signing["ed25519"]} <= kids
    d = client.post("/v1/gates/validate", headers=gh, json={**body, "payload": payload}).json()
    assert (d["result"], d["ticket_id"]) == ("accepted", tid), d
    d = client.post("/v1/gates/validate", headers=gh, json={**body, "payload": p2}).json()
    assert d["result"] == "accepted", d
    assert demo.now.tzinfo is not None and isinstance(demo.now, dt.datetime)


def test_an_admin_chooses_sm2_for_a_new_operator(client, login, app, settings):
    _with_sm2_key(app, settings)
    _uid, admin = login("admin")
    r = client.post("/v1/admin/operators", headers=admin, json={"operator_id": "gm-metro", "name": "国密地铁",
                                                                "qr_alg": "sm2"})
    assert r.status_code == 201 and r.json()["qr_alg"] == "sm2", r.text
    r = client.post("/v1/admin/operators", headers=admin, json={"operator_id": "plain", "name": "plain"})
    assert r.json()["qr_alg"] == "ed25519"
    assert client.get("/v1/operators/gm-metro", headers=admin).json()["qr_alg"] == "sm2"
    r = client.post("/v1/admin/operators", headers=admin, json={"operator_id": "x", "name": "x", "qr_alg": "rsa"})
    assert r.status_code == 422


def test_an_operator_switches_to_sm2_and_another_operator_cannot(client, login, engine, app, settings, demo):
    _with_sm2_key(app, settings)
    _uid, staff = login("operator", "yunxi-bus")
    _uid, other = login("operator", "yunxi-metro")
    assert client.patch("/v1/operators/yunxi-bus", headers=other, json={"qr_alg": "sm2"}).status_code == 403
    assert client.patch("/v1/operators/yunxi-bus", headers=staff, json={"qr_alg": "rsa"}).status_code == 422
    h, ticket = _ticket(client, login, demo)
    tid = ticket["ticket_id"]
    before = client.get(f"/v1/tickets/{tid}/qr", headers=h).json()["payload"]
    r = client.patch("/v1/operators/yunxi-bus", headers=staff, json={"qr_alg": "sm2"})
    assert r.status_code == 200 and r.json()["qr_alg"] == "sm2", r.text
    after = client.get(f"/v1/tickets/{tid}/qr", headers=h).json()["payload"]
    assert (_kid(before), _kid(after)) == ("q1", "s1")
    gate, gh = gate_headers(engine, "yunxi-bus", STOP)
    d = client.post("/v1/gates/validate", headers=gh, json={"gate_id": gate, "stop_id": STOP, "payload": after})
    assert d.json()["result"] == "accepted", d.text


def test_sm2_cannot_be_chosen_without_an_sm2_issuer_key(client, login, engine, demo):
    """Otherwise every code of the operator's tickets would fail (503) until a key is configured."""
    _uid, staff = login("operator", "yunxi-bus")
    r = client.patch("/v1/operators/yunxi-bus", headers=staff, json={"qr_alg": "sm2"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "qr_algorithm_unavailable", r.text
    _uid, admin = login("admin")
    r = client.post("/v1/admin/operators", headers=admin, json={"operator_id": "gm2", "name": "x", "qr_alg": "sm2"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "qr_algorithm_unavailable", r.text
    h, ticket = _ticket(client, login, demo)
    assert client.get(f"/v1/tickets/{ticket['ticket_id']}/qr", headers=h).status_code == 200
