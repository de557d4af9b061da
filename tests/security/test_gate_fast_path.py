"""The gate's fast path (issue 14 part 3) keeps its guarantees, over HTTP on the demo city (both backends).

- a device deactivated, moved or no longer allowed to roam is refused by its very next scan (the device is
  read with the token on every request, on every worker: nothing cached can let it through);
- concurrent scans of one code admit exactly one, and the ledger recognises that leg once (after the job);
- the statements a QR validation sends stay few (a regression guard on round trips, not a timing).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy import event

from tests.ticketing_support import buy, city, demo, gate_headers, journey, traveler  # noqa: F401


def _ticket_qr(client, login, demo):  # noqa: ANN001, ANN202
    _uid, h = login("passenger")
    _offer, order = buy(client, h, journey(client, demo), [traveler()])
    client.post(order["payment"]["confirm_url"], headers=h)
    ticket = client.get("/v1/tickets", headers=h).json()["tickets"][0]
    payload = client.get(f"/v1/tickets/{ticket['ticket_id']}/qr", headers=h).json()["payload"]
    return ticket, payload, h


def _set_gate(engine, gate_id: str, **values) -> None:  # noqa: ANN001, ANN003
    from maas.models import GateDevice

    with engine.begin() as conn:
        conn.execute(sa.update(GateDevice.__table__).where(GateDevice.__table__.c.gate_id == gate_id).values(**values))


def test_a_deactivated_gate_is_refused_at_its_next_scan(client, login, engine, demo) -> None:  # noqa: ANN001
    ticket, payload, _h = _ticket_qr(client, login, demo)
    gate_id, gh = gate_headers(engine, "yunxi-bus")
    body = {"gate_id": gate_id, "stop_id": "yx-bus:YXYZ", "payload": payload}
    # a first scan (warms whatever a cache would hold) is answered
    assert client.post("/v1/gates/validate", headers=gh, json={**body, "payload": "MQR-garbage"}).status_code == 200
    _set_gate(engine, gate_id, active=False)
    r = client.post("/v1/gates/validate", headers=gh, json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    assert client.get("/v1/gates/keys", headers=gh).status_code == 401
    r = client.post("/v1/gates/taps", headers=gh, json={"gate_id": gate_id, "stop_id": "yx-bus:YXYZ", "taps": [
        {"tap_id": "t1", "payload": payload, "scanned_at": demo.now.isoformat()}]})
    assert r.status_code == 401
    _set_gate(engine, gate_id, active=True)
    assert client.post("/v1/gates/validate", headers=gh, json=body).json()["result"] == "accepted"
    assert ticket["ticket_id"]


def test_a_gate_moved_or_no_longer_roaming_is_refused_at_once(client, login, engine, demo) -> None:  # noqa: ANN001
    _ticket, payload, _h = _ticket_qr(client, login, demo)
    gate_id, gh = gate_headers(engine, "yunxi-bus")  # roaming
    body = {"gate_id": gate_id, "stop_id": "yx-bus:YXYZ", "payload": "MQR-garbage"}
    assert client.post("/v1/gates/validate", headers=gh, json=body).status_code == 200
    _set_gate(engine, gate_id, roaming=False)
    r = client.post("/v1/gates/validate", headers=gh, json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "gate_stop_required"
    _set_gate(engine, gate_id, stop_id="yx-bus:RMGC")
    r = client.post("/v1/gates/validate", headers=gh, json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "stop_mismatch"


def test_other_principals_get_what_they_got_before(client, login, engine, demo) -> None:  # noqa: ANN001
    gate_id, _gh = gate_headers(engine, "yunxi-bus")
    body = {"gate_id": gate_id, "stop_id": "yx-bus:YXYZ", "payload": "MQR-garbage"}
    _uid, h = login("passenger")
    r = client.post("/v1/gates/validate", headers=h, json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_role"
    r = client.post("/v1/gates/validate", headers={"Authorization": "Bearer mgt_not-a-token"}, json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    r = client.post("/v1/gates/validate", json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_token"


def test_concurrent_http_scans_admit_once_and_the_ledger_recognises_once(client, login, engine,  # noqa: ANN001
                                                                          demo) -> None:
    from clearing import ledger
    from clearing.interface import recognise_pending_uses
    from clearing.models import JournalLine, Validation
    from maas.db import session_scope

    ticket, payload, _h = _ticket_qr(client, login, demo)
    gate_id, gh = gate_headers(engine, "yunxi-bus")
    body = {"gate_id": gate_id, "stop_id": "yx-bus:YXYZ", "payload": payload}

    def scan(_i: int) -> str:
        d = client.post("/v1/gates/validate", headers=gh, json=body).json()
        return d["result"] if d["result"] == "accepted" else d["reason"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(scan, range(24)))
    assert results.count("accepted") == 1 and results.count("already_used") == 23
    leg_id = ticket["legs"][0]["leg_id"]
    with session_scope(engine) as s:
        assert s.get(Validation, leg_id).pending is True
        assert recognise_pending_uses(s) == 1
    with session_scope(engine) as s:
        closes = s.execute(sa.select(sa.func.count()).select_from(JournalLine).where(
            JournalLine.leg_id == leg_id, JournalLine.purpose == "close")).scalar_one()
        assert closes == 1 and ledger.unbalanced_entries(s) == []
        assert recognise_pending_uses(s) == 0


def test_a_qr_validation_sends_few_statements(client, login, engine, demo) -> None:  # noqa: ANN001
    _ticket, payload, _h = _ticket_qr(client, login, demo)
    gate_id, gh = gate_headers(engine, "yunxi-bus")
    body = {"gate_id": gate_id, "stop_id": "yx-bus:YXYZ", "payload": payload}
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_a) -> None:  # noqa: ANN001, ANN002
        seen.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.post("/v1/gates/validate", headers=gh, json=body).json()["result"] == "accepted"
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # device by token; ticket + legs; admission UPDATE ... RETURNING; the ledger's use; the validation record
    # (the ticket's status only when its last leg is used). SQLite's BEGIN IMMEDIATE is not a statement here.
    assert len([s for s in seen if s not in ("BEGIN",)]) <= 6, seen
