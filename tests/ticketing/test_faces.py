"""Face credentials on the demo city, both backends, with the real dlib model on real photos.

Enrolment (consent, sealed template only, refusals with their codes),
1:1 verification at the gate (match, mismatch, threshold, liveness policy,
trusted-gate embeddings), deletion and the retention job. Photos are encoded
once per process (`tests.face_support.caching_encoder`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from sqlmodel import select

from tests.face_support import b64, blank_png, caching_encoder, enrol, photo, photo_b64
from tests.ticketing_support import buy, city, demo, gate_headers, journey, traveler  # noqa: F401

OBAMA, OBAMA_2, BIDEN, TWO_PEOPLE = ("face_recognition/obama.jpg", "face_recognition/obama2.jpg",
                                     "face_recognition/biden.jpg", "face_recognition/two_people.jpg")
KUN, KUN_2, WOMAN = "inspireface/kun.jpg", "inspireface/jntm.jpg", "inspireface/woman.png"
BUS_STOP = "yx-bus:YXYZ"


@pytest.fixture
def face_app(app, demo):  # noqa: ANN001, ANN201
    """The demo app with the caching real encoder."""
    app.state.face_encoder = caching_encoder()
    return app


@pytest.fixture
def ticketed(client, login, face_app, demo):  # noqa: ANN001, ANN201
    """A paid order of two travellers: (passenger headers, [ticket JSON, ticket JSON])."""
    _uid, h = login("passenger")
    _offer, order = buy(client, h, journey(client, demo), [traveler("张三"), traveler("李四")])
    assert client.post(order["payment"]["confirm_url"], headers=h).json()["status"] == "ticketed"
    return h, client.get(f"/v1/orders/{order['order_id']}", headers=h).json()["tickets"]


def _set(app: Any, **changes: Any) -> None:
    app.state.settings = app.state.settings.model_copy(update=changes)


def _face_gate(client: Any, gh: dict[str, str], gate: str, ticket_id: str, **credential: Any) -> dict[str, Any]:
    r = client.post("/v1/gates/validate", headers=gh,
                    json={"gate_id": gate, "stop_id": BUS_STOP, "ticket_id": ticket_id, **credential})
    assert r.status_code == 200, r.text
    return r.json()


def _verifications(engine: Any, ticket_id: str) -> list[Any]:
    from maas.db import session_scope
    from ticketing.models_face import FaceVerification

    with session_scope(engine) as s:
        return list(s.exec(select(FaceVerification).where(FaceVerification.ticket_id == ticket_id)
                           .order_by(FaceVerification.verified_at)))


def test_enrolment_without_consent_is_refused_and_stores_nothing(client, engine, ticketed, shared_data):
    from maas.db import session_scope
    from ticketing.models_face import FaceConsent, FaceTemplate

    h, (t1, _t2) = ticketed
    traveler_id = t1["traveler"]["traveler_id"]
    for consent in (False, None):
        r = enrol(client, h, traveler_id, photo_b64(shared_data, OBAMA), consent=consent)
        assert r.status_code == 422 and r.json()["error"]["code"] == "consent_required", r.text
    calls = caching_encoder().calls
    r = enrol(client, h, traveler_id, "not even base64 !!", consent=False)
    assert r.json()["error"]["code"] == "consent_required"  # consent is checked before the image is touched
    assert caching_encoder().calls == calls
    with session_scope(engine) as s:
        assert s.exec(select(FaceConsent)).all() == [] and s.exec(select(FaceTemplate)).all() == []


def test_enrolment_stores_a_consent_record_and_only_the_sealed_template(client, app, engine, ticketed, shared_data):
    from maas.db import session_scope
    from maas.journeys import runtime
    from maas.models import AuditEntry
    from ticketing.credentials.face import open_template
    from ticketing.crypto import DecryptionFailed
    from ticketing.models_face import FaceConsent, FaceTemplate

    h, (t1, t2) = ticketed
    traveler_id = t1["traveler"]["traveler_id"]
    r = enrol(client, h, traveler_id, photo_b64(shared_data, OBAMA))
    assert r.status_code == 201, r.text
    out = r.json()
    assert set(out) == {"traveler_id", "enrolled_at", "model_version", "consent", "delete_after"}
    assert out["consent"]["what"] == "face_template" and out["consent"]["purpose"] == "gate_verification"
    assert out["consent"]["retention_days"] == 30 and out["consent"]["withdrawn_at"] is None
    last_leg_end = max(dt.datetime.fromisoformat(x["valid_until"]) for x in t1["legs"])
    assert dt.datetime.fromisoformat(out["delete_after"]) == last_leg_end + dt.timedelta(days=30)

    keyring = runtime(app).keyring
    with session_scope(engine) as s:
        template = s.get(FaceTemplate, traveler_id)
        consent = s.get(FaceConsent, out["consent"]["consent_id"])
        audits = s.exec(select(AuditEntry).where(AuditEntry.action == "face.enrol")).all()
    assert template is not None and consent is not None and consent.traveler_id == traveler_id
    assert template.key_id == keyring.current and template.template_enc.startswith(f"{keyring.current}:")
    enrolled = open_template(keyring, template.template_enc, traveler_id=traveler_id)
    assert np.array_equal(enrolled, caching_encoder().encode(photo(shared_data, OBAMA)))
    with pytest.raises(DecryptionFailed):  # bound to its traveller: useless in another row
        open_template(keyring, template.template_enc, traveler_id=t2["traveler"]["traveler_id"])
    assert [a.target for a in audits] == [traveler_id]
    assert "template" not in str(audits[0].details).replace("model_version", "")
    assert template.template_enc not in r.text


@pytest.mark.parametrize(("make_image", "code", "status"), [
    (lambda d: b64(blank_png()), "no_face", 422),
    (lambda d: photo_b64(d, TWO_PEOPLE), "multiple_faces", 422),
    (lambda d: b64(b"%PDF-1.4 this is a document, not a photo"), "not_an_image", 415),
    (lambda d: "@@@ not base64 @@@", "invalid_base64", 400),
])
def test_unusable_photos_are_refused_with_their_codes(client, engine, ticketed, shared_data, make_image, code,
                                                      status):
    from maas.db import session_scope
    from ticketing.models_face import FaceTemplate

    h, (t1, _t2) = ticketed
    r = enrol(client, h, t1["traveler"]["traveler_id"], make_image(shared_data))
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    with session_scope(engine) as s:
        assert s.exec(select(FaceTemplate)).all() == []


def test_oversized_photo_is_refused(client, app, ticketed, shared_data):
    _set(app, face_max_image_bytes=100_000)
    h, (t1, _t2) = ticketed
    r = enrol(client, h, t1["traveler"]["traveler_id"], photo_b64(shared_data, OBAMA))  # 280 kB
    assert (r.status_code, r.json()["error"]["code"]) == (413, "image_too_large")


def test_only_the_owner_of_the_order_enrols_or_deletes(client, login, ticketed, shared_data):
    _h, (t1, _t2) = ticketed
    _other, h2 = login("passenger")
    traveler_id = t1["traveler"]["traveler_id"]
    r = enrol(client, h2, traveler_id, photo_b64(shared_data, OBAMA))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "traveler_not_found")
    r = client.delete(f"/v1/travelers/{traveler_id}/face", headers=h2)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "traveler_not_found")


def test_same_person_is_admitted_once_and_a_different_person_is_rejected(client, engine, ticketed, shared_data):
    from maas.db import session_scope
    from ticketing.credentials.face import DEFAULT_THRESHOLD, DlibFaceEncoder
    from ticketing.models import GateValidation, TicketLeg

    h, (t1, _t2) = ticketed
    assert enrol(client, h, t1["traveler"]["traveler_id"], photo_b64(shared_data, OBAMA)).status_code == 201
    gate, gh = gate_headers(engine, "yunxi-bus")
    bus_leg = t1["legs"][0]["leg_id"]

    impostor = _face_gate(client, gh, gate, t1["ticket_id"], face_image=photo_b64(shared_data, BIDEN))
    assert impostor == {"result": "rejected", "reason": "face_mismatch", "ticket_id": t1["ticket_id"],
                        "leg_id": None}
    with session_scope(engine) as s:
        assert s.get(TicketLeg, bus_leg).status == "unused"  # a refused face uses nothing

    ok = _face_gate(client, gh, gate, t1["ticket_id"], face_image=photo_b64(shared_data, OBAMA_2))
    assert ok == {"result": "accepted", "reason": None, "ticket_id": t1["ticket_id"], "leg_id": bus_leg}
    again = _face_gate(client, gh, gate, t1["ticket_id"], face_image=photo_b64(shared_data, OBAMA_2))
    assert (again["result"], again["reason"]) == ("rejected", "already_used")

    rows = _verifications(engine, t1["ticket_id"])
    assert [r.match for r in rows] == [False, True, True]
    assert all(r.threshold == DEFAULT_THRESHOLD and r.model_version == DlibFaceEncoder.model_version
               and r.probe == "image" for r in rows)
    assert rows[0].distance > DEFAULT_THRESHOLD > rows[1].distance > 0
    with session_scope(engine) as s:
        methods = s.exec(select(GateValidation.method, GateValidation.result)
                         .where(GateValidation.ticket_id == t1["ticket_id"])).all()
    assert sorted(methods) == [("face", "accepted"), ("face", "rejected"), ("face", "rejected")]


def test_east_asian_pair_matches_and_impostor_does_not(client, engine, ticketed, shared_data):
    h, (t1, t2) = ticketed
    assert enrol(client, h, t1["traveler"]["traveler_id"], photo_b64(shared_data, KUN)).status_code == 201
    assert enrol(client, h, t2["traveler"]["traveler_id"], photo_b64(shared_data, WOMAN)).status_code == 201
    gate, gh = gate_headers(engine, "yunxi-bus")
    # 1:1 only: kun's photo against the second traveller's ticket is a mismatch, not a search hit
    assert _face_gate(client, gh, gate, t2["ticket_id"], face_image=photo_b64(shared_data, KUN))["reason"] \
        == "face_mismatch"
    assert _face_gate(client, gh, gate, t1["ticket_id"], face_image=photo_b64(shared_data, KUN_2))["result"] \
        == "accepted"


def test_unusable_capture_at_the_gate_is_a_recorded_rejection(client, engine, ticketed, shared_data):
    h, (t1, _t2) = ticketed
    assert enrol(client, h, t1["traveler"]["traveler_id"], photo_b64(shared_data, OBAMA)).status_code == 201
    gate, gh = gate_headers(engine, "yunxi-bus")
    assert _face_gate(client, gh, gate, t1["ticket_id"], face_image=photo_b64(shared_data, TWO_PEOPLE))["reason"] \
        == "multiple_faces"
    assert _face_gate(client, gh, gate, t1["ticket_id"], face_image=b64(blank_png()))["reason"] == "no_face"
    assert _face_gate(client, gh, gate, "tkt_nope", face_image=b64(blank_png()))["reason"] == "unknown_ticket"
    assert [r.distance for r in _verifications(engine, t1["ticket_id"])] == [None, None]


def test_re_enrolment_replaces_the_template(client, engine, ticketed, shared_data):
    from maas.db import session_scope
    from ticketing.models_face import FaceConsent

    h, (t1, _t2) = ticketed
    traveler_id = t1["traveler"]["traveler_id"]
    first = enrol(client, h, traveler_id, photo_b64(shared_data, BIDEN)).json()
    second = enrol(client, h, traveler_id, photo_b64(shared_data, OBAMA)).json()
    with session_scope(engine) as s:
        old = s.get(FaceConsent, first["consent"]["consent_id"])
        new = s.get(FaceConsent, second["consent"]["consent_id"])
    assert old.withdrawn_reason == "replaced" and old.withdrawn_at is not None and new.withdrawn_at is None
    gate, gh = gate_headers(engine, "yunxi-bus")
    assert _face_gate(client, gh, gate, t1["ticket_id"], face_image=photo_b64(shared_data, OBAMA_2))["result"] \
        == "accepted"


def test_deletion_withdraws_consent_and_verification_then_fails(client, engine, ticketed, shared_data):
    from maas.db import session_scope
    from maas.models import AuditEntry
    from ticketing.models_face import FaceTemplate

    h, (t1, _t2) = ticketed
    traveler_id = t1["traveler"]["traveler_id"]
    assert enrol(client, h, traveler_id, photo_b64(shared_data, OBAMA)).status_code == 201
    r = client.delete(f"/v1/travelers/{traveler_id}/face", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["template_deleted"] is True and r.json()["consent"]["withdrawn_reason"] == "user_request"
    again = client.delete(f"/v1/travelers/{traveler_id}/face", headers=h).json()
    assert again["template_deleted"] is False  # idempotent
    with session_scope(engine) as s:
        assert s.get(FaceTemplate, traveler_id) is None
        assert len(s.exec(select(AuditEntry).where(AuditEntry.action == "face.delete")).all()) == 2
    gate, gh = gate_headers(engine, "yunxi-bus")
    d = _face_gate(client, gh, gate, t1["ticket_id"], face_image=photo_b64(shared_data, OBAMA_2))
    assert (d["result"], d["reason"]) == ("rejected", "no_face_template")


def test_expired_template_is_gone_after_the_retention_job(client, app, engine, ticketed, shared_data):
    from maas.db import session_scope
    from maas.jobs import run_jobs
    from maas.models import AuditEntry
    from ticketing.models_face import FaceConsent, FaceTemplate

    h, (t1, t2) = ticketed
    for t, rel in ((t1, OBAMA), (t2, BIDEN)):
        assert enrol(client, h, t["traveler"]["traveler_id"], photo_b64(shared_data, rel)).status_code == 201
    end = max(dt.datetime.fromisoformat(x["valid_until"]) for x in t1["legs"])
    settings = app.state.settings
    assert run_jobs(settings, "faces.retention", now=end + dt.timedelta(days=29))["faces.retention"].startswith("0 ")
    with session_scope(engine) as s:
        assert len(s.exec(select(FaceTemplate)).all()) == 2
    assert run_jobs(settings, "faces.retention", now=end + dt.timedelta(days=30, seconds=1))["faces.retention"] \
        .startswith("2 ")
    assert run_jobs(settings, "faces.retention", now=end + dt.timedelta(days=31))["faces.retention"].startswith("0 ")
    with session_scope(engine) as s:
        assert s.exec(select(FaceTemplate)).all() == []
        consents = s.exec(select(FaceConsent)).all()
        expired = s.exec(select(AuditEntry).where(AuditEntry.action == "face.template.expired")).all()
    assert {c.withdrawn_reason for c in consents} == {"retention_expired"}
    assert sorted(a.target for a in expired) == sorted(t["traveler"]["traveler_id"] for t in (t1, t2))
    gate, gh = gate_headers(engine, "yunxi-bus")
    assert _face_gate(client, gh, gate, t1["ticket_id"], face_image=photo_b64(shared_data, OBAMA_2))["reason"] \
        == "no_face_template"


def test_shorter_retention_setting_applies_to_existing_templates(client, app, engine, ticketed, shared_data):
    from maas.jobs import run_jobs

    h, (t1, _t2) = ticketed
    assert enrol(client, h, t1["traveler"]["traveler_id"], photo_b64(shared_data, OBAMA)).status_code == 201
    end = max(dt.datetime.fromisoformat(x["valid_until"]) for x in t1["legs"])
    shorter = app.state.settings.model_copy(update={"face_retention_days": 1})
    assert run_jobs(shorter, "faces.retention", now=end + dt.timedelta(days=2))["faces.retention"].startswith("1 ")


def test_liveness_policy(client, app, engine, ticketed, shared_data):
    h, (t1, _t2) = ticketed
    assert enrol(client, h, t1["traveler"]["traveler_id"], photo_b64(shared_data, OBAMA)).status_code == 201
    gate, gh = gate_headers(engine, "yunxi-bus")
    probe = photo_b64(shared_data, OBAMA_2)
    spoof = {"passed": False, "score": 0.12, "vendor": "acme-pad"}
    # a gate that says "spoof" is refused whatever the policy
    assert _face_gate(client, gh, gate, t1["ticket_id"], face_image=probe, liveness=spoof)["reason"] \
        == "liveness_failed"
    _set(app, face_require_liveness=True)
    assert _face_gate(client, gh, gate, t1["ticket_id"], face_image=probe)["reason"] == "liveness_required"
    ok = _face_gate(client, gh, gate, t1["ticket_id"], face_image=probe,
                    liveness={"passed": True, "score": 0.97, "vendor": "acme-pad"})
    assert ok["result"] == "accepted"
    rows = _verifications(engine, t1["ticket_id"])
    assert [(r.liveness_passed, r.liveness_score, r.liveness_required) for r in rows] == [
        (False, 0.12, False), (None, None, True), (True, 0.97, True)]
    assert rows[-1].liveness_vendor == "acme-pad" and rows[0].distance is None  # refused before comparing


def test_threshold_comes_from_the_settings(client, app, engine, ticketed, shared_data):
    h, (t1, _t2) = ticketed
    assert enrol(client, h, t1["traveler"]["traveler_id"], photo_b64(shared_data, OBAMA)).status_code == 201
    _set(app, face_threshold=0.2)
    gate, gh = gate_headers(engine, "yunxi-bus")
    d = _face_gate(client, gh, gate, t1["ticket_id"], face_image=photo_b64(shared_data, OBAMA_2))
    assert d["reason"] == "face_mismatch"
    (row,) = _verifications(engine, t1["ticket_id"])
    assert row.threshold == 0.2 and 0.2 < row.distance < 0.42


def test_trusted_gate_may_send_its_own_embedding(client, app, engine, ticketed, shared_data):
    h, (t1, _t2) = ticketed
    assert enrol(client, h, t1["traveler"]["traveler_id"], photo_b64(shared_data, OBAMA)).status_code == 201
    gate, gh = gate_headers(engine, "yunxi-bus")
    embedding = [float(x) for x in caching_encoder().encode(photo(shared_data, OBAMA_2))]
    _set(app, face_embedding_gates="gate_someone_else")
    r = client.post("/v1/gates/validate", headers=gh, json={"gate_id": gate, "stop_id": BUS_STOP,
                                                            "ticket_id": t1["ticket_id"], "face_embedding": embedding})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "embedding_not_trusted")
    _set(app, face_embedding_gates=f"{gate}, gate_someone_else")
    assert _face_gate(client, gh, gate, t1["ticket_id"], face_embedding=embedding)["result"] == "accepted"
    (row,) = _verifications(engine, t1["ticket_id"])
    assert row.probe == "embedding" and row.match is True


@pytest.mark.parametrize("body", [
    {"face_image": "aGVsbG8="},  # no ticket_id
    {"face_embedding": [0.1] * 127, "ticket_id": "tkt_x"},
    {"face_image": "aGVsbG8=", "face_embedding": [0.1] * 128, "ticket_id": "tkt_x"},
    {"face_image": "aGVsbG8=", "ticket_id": "tkt_x", "payload": "MQR..."},
    {"id_number": "110101199003071234", "ticket_id": "tkt_x"},
])
def test_malformed_face_requests_are_refused(client, engine, make_user, body):
    make_user("operator", "op-faces")  # creates the operator
    gate, gh = gate_headers(engine, "op-faces")
    r = client.post("/v1/gates/validate", headers=gh, json={"gate_id": gate, "stop_id": BUS_STOP, **body})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error"), r.text
    assert "aGVsbG8" not in r.text and "110101199003071234" not in r.text


def test_enrolment_before_payment_runs_retention_from_enrolment_and_cancelled_orders_refuse(
        client, login, engine, face_app, demo, shared_data):
    from maas.db import session_scope
    from ticketing.models import Traveler

    _uid, h = login("passenger")
    _offer, order = buy(client, h, journey(client, demo), [traveler()])
    with session_scope(engine) as s:
        traveler_id = s.exec(select(Traveler.traveler_id).where(Traveler.order_id == order["order_id"])).one()
    r = enrol(client, h, traveler_id, photo_b64(shared_data, OBAMA))
    assert r.status_code == 201, r.text
    out = r.json()
    assert dt.datetime.fromisoformat(out["delete_after"]) == \
        dt.datetime.fromisoformat(out["enrolled_at"]) + dt.timedelta(days=30)
    assert client.post(f"/v1/orders/{order['order_id']}/cancel", headers=h).json()["status"] == "cancelled"
    r = enrol(client, h, traveler_id, photo_b64(shared_data, OBAMA))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "traveler_not_active")


def test_key_rotation_job_reseals_templates_and_verification_still_works(client, app, engine, ticketed,
                                                                        shared_data):
    from pydantic import SecretStr

    from maas.db import session_scope
    from maas.jobs import run_jobs
    from maas.journeys import runtime
    from ticketing.crypto import Keyring
    from ticketing.models_face import FaceTemplate

    h, (t1, _t2) = ticketed
    traveler_id = t1["traveler"]["traveler_id"]
    assert enrol(client, h, traveler_id, photo_b64(shared_data, OBAMA)).status_code == 201
    old_kid = runtime(app).keyring.current
    rotated = app.state.settings.model_copy(update={"pii_keys": SecretStr(
        app.state.settings.secret("pii_keys") + ",k9:" + Keyring.generate_key())})
    assert run_jobs(rotated, "faces.reencrypt")["faces.reencrypt"].startswith("1 ")
    assert run_jobs(rotated, "faces.reencrypt")["faces.reencrypt"].startswith("0 ")  # idempotent
    with session_scope(engine) as s:
        row = s.get(FaceTemplate, traveler_id)
    assert old_kid != "k9" and row.key_id == "k9" and row.template_enc.startswith("k9:")
    app.state.settings = rotated
    del app.state.ticketing  # the runtime keyring is rebuilt from the rotated settings
    gate, gh = gate_headers(engine, "yunxi-bus")
    assert _face_gate(client, gh, gate, t1["ticket_id"], face_image=photo_b64(shared_data, OBAMA_2))["result"] \
        == "accepted"
