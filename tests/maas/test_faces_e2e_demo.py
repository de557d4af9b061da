"""The face and ID-document gate flow end to end over HTTP on the demo city (both backends, real model).

Buy a two-traveller ticket, enrol the first traveller's face, open the bus
gate by face once (the replay is refused), open it for the second traveller
by ID number; nothing of the face or the ID number reaches the logs, the
errors or the audit log.
"""

from __future__ import annotations

import json
import logging

from sqlmodel import select

from tests.face_support import b64, caching_encoder, enrol, photo_b64
from tests.ticketing_support import buy, city, demo, gate_headers, journey, resident_id, traveler  # noqa: F401


def test_gate_opens_by_face_once_and_by_id_number_without_leaking_either(client, app, engine, login, demo,
                                                                         shared_data, caplog):
    from maas.db import session_scope
    from maas.models import AuditEntry
    from ticketing.models_face import FaceTemplate

    app.state.face_encoder = caching_encoder()
    second_id = resident_id(birth="19880214", seq="318")
    enrol_image = photo_b64(shared_data, "face_recognition/obama.jpg")
    probe_image = photo_b64(shared_data, "face_recognition/obama2.jpg")
    garbage = b64(b"GIF89a not really a picture " * 20)
    responses: list[str] = []
    with caplog.at_level(logging.DEBUG):
        _uid, h = login("passenger")
        _offer, order = buy(client, h, journey(client, demo), [traveler("张三"), traveler("李四", id_number=second_id)])
        assert client.post(order["payment"]["confirm_url"], headers=h).json()["status"] == "ticketed"
        t1, t2 = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()["tickets"]
        bus_leg_1, bus_leg_2 = t1["legs"][0]["leg_id"], t2["legs"][0]["leg_id"]

        r = enrol(client, h, t1["traveler"]["traveler_id"], garbage)
        responses.append(r.text)
        assert r.json()["error"]["code"] == "not_an_image"
        r = enrol(client, h, t1["traveler"]["traveler_id"], enrol_image)
        responses.append(r.text)
        assert r.status_code == 201, r.text

        gate, gh = gate_headers(engine, "yunxi-bus")
        face = {"gate_id": gate, "stop_id": "yx-bus:YXYZ", "ticket_id": t1["ticket_id"], "face_image": probe_image}
        first = client.post("/v1/gates/validate", headers=gh, json=face)
        replay = client.post("/v1/gates/validate", headers=gh, json=face)
        by_id = client.post("/v1/gates/validate", headers=gh,
                            json={"gate_id": gate, "stop_id": "yx-bus:YXYZ", "id_number": second_id})
        id_replay = client.post("/v1/gates/validate", headers=gh,
                                json={"gate_id": gate, "stop_id": "yx-bus:YXYZ", "id_number": second_id})
        bad = client.post("/v1/gates/validate", headers=gh,
                          json={"gate_id": gate, "stop_id": "yx-bus:YXYZ", "id_number": second_id,
                                "ticket_id": t2["ticket_id"], "face_image": probe_image})
        responses += [first.text, replay.text, by_id.text, id_replay.text, bad.text]
        deleted = client.delete(f"/v1/travelers/{t1['traveler']['traveler_id']}/face", headers=h)
        responses.append(deleted.text)
        logging.getLogger("maas.test").info("face flow done")

    assert first.json() == {"result": "accepted", "reason": None, "ticket_id": t1["ticket_id"], "leg_id": bus_leg_1}
    assert (replay.json()["result"], replay.json()["reason"]) == ("rejected", "already_used")
    assert by_id.json() == {"result": "accepted", "reason": None, "ticket_id": t2["ticket_id"], "leg_id": bus_leg_2}
    assert id_replay.json()["reason"] == "already_used"
    assert bad.status_code == 422
    assert deleted.json()["template_deleted"] is True
    tickets = {t["ticket_id"]: t for t in client.get("/v1/tickets", headers=h).json()["tickets"]}
    assert tickets[t1["ticket_id"]]["legs"][0]["status"] == "used"
    assert tickets[t2["ticket_id"]]["legs"][0]["status"] == "used"

    # privacy: no ID number, no image data, no template in logs, responses or the audit log
    ours = next(handler for handler in logging.getLogger().handlers if getattr(handler, "_maas", False))
    logs = "\n".join(ours.format(rec) + " " + rec.getMessage() for rec in caplog.records)
    assert "request" in logs and caplog.records
    with session_scope(engine) as s:
        audit_rows = s.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert s.exec(select(FaceTemplate)).all() == []
    audit_text = json.dumps([[a.action, a.target, a.details] for a in audit_rows], ensure_ascii=False)
    actions = [a.action for a in audit_rows]
    assert actions.count("face.enrol") == 1 and actions.count("face.verify") == 2
    assert actions.count("id_number.verify") == 2 and actions.count("face.delete") == 1
    samples = [second_id, second_id.lower(), "李四"] + [img[i:i + 40] for img in (enrol_image, probe_image, garbage)
                                                      for i in (0, len(img) // 2, len(img) - 40)]
    for secret in samples:
        assert secret not in logs, secret
        assert secret not in audit_text, secret
        assert all(secret not in text for text in responses), secret
