"""QR credentials: compact Ed25519 payloads, rotation, staleness, device binding, key rotation."""

from __future__ import annotations

import base64
import datetime as dt
import os

import pytest

from ticketing.qr import IssuerKeys, QRRejected, jwks_public_keys, verify_qr
from ticketing.qr_client import build_device_qr, generate_device_key

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
TICKET = "tkt_" + "ab" * 12


def _spec(*kids: str) -> str:
    return ",".join(f"{k}:{base64.b64encode(os.urandom(32)).decode()}" for k in kids)


def _reason(payload: str, keys, now=T0, ttl=30) -> str:  # noqa: ANN001
    with pytest.raises(QRRejected) as exc:
        verify_qr(payload, keys, now=now, ttl_s=ttl)
    return exc.value.code


def test_rotating_qr_verifies_offline_from_the_jwks_and_is_small():
    issuer = IssuerKeys(_spec("q1"))
    payload, expires = issuer.rotating_qr(TICKET, now=T0, ttl_s=30)
    keys = jwks_public_keys(issuer.jwks())
    v = verify_qr(payload, keys, now=T0 + dt.timedelta(seconds=10), ttl_s=30)
    assert (v.ticket_id, v.kind, v.kid) == (TICKET, "qr", "q1")
    assert expires == T0 + dt.timedelta(seconds=30)
    assert len(payload.encode()) <= 125  # 88 bytes signed, base64url + "MQR"


def test_a_screenshot_goes_stale():
    issuer = IssuerKeys(_spec("q1"))
    payload, _ = issuer.rotating_qr(TICKET, now=T0, ttl_s=30)
    assert _reason(payload, issuer.public, now=T0 + dt.timedelta(seconds=60)) == "expired_qr"


@pytest.mark.parametrize("position", [3, 10, 20, 40, -2])
def test_any_changed_character_is_refused(position):
    issuer = IssuerKeys(_spec("q1"))
    payload, _ = issuer.rotating_qr(TICKET, now=T0, ttl_s=30)
    ch = payload[position]
    tampered = payload[:position] + ("B" if ch != "B" else "C") + payload[position + 1:] if position != -2 else \
        payload[:-2] + ("B" if payload[-2] != "B" else "C") + payload[-1]
    assert _reason(tampered, issuer.public) in ("bad_signature", "malformed", "unknown_key")


def test_garbage_and_foreign_keys_are_refused():
    issuer = IssuerKeys(_spec("q1"))
    other = IssuerKeys(_spec("q1"))
    payload, _ = other.rotating_qr(TICKET, now=T0, ttl_s=30)
    assert _reason(payload, issuer.public) == "bad_signature"
    assert _reason("hello", issuer.public) == "malformed"
    assert _reason("MQR!!!", issuer.public) == "malformed"
    assert _reason(payload, {}) == "unknown_key"


def test_key_rotation_keeps_issued_credentials_valid():
    old_spec = _spec("q1")
    old = IssuerKeys(old_spec)
    device, public = generate_device_key()
    cred = old.device_credential(TICKET, device_key=base64.urlsafe_b64decode(public + "="), valid_from=T0,
                                 valid_until=T0 + dt.timedelta(hours=6))
    rotated = IssuerKeys(old_spec + "," + _spec("q2"))
    assert rotated.current == "q2" and {k["kid"] for k in rotated.jwks()["keys"]} == {"q1", "q2"}
    code = build_device_qr(base64.urlsafe_b64encode(cred).decode().rstrip("="), device, now=T0 + dt.timedelta(hours=1))
    assert verify_qr(code, rotated.public, now=T0 + dt.timedelta(hours=1), ttl_s=30).kid == "q1"
    new_code, _ = rotated.rotating_qr(TICKET, now=T0, ttl_s=30)
    assert verify_qr(new_code, rotated.public, now=T0, ttl_s=30).kid == "q2"
    assert _reason(new_code, old.public) == "unknown_key"


def test_device_bound_qr_needs_both_signatures_and_a_fresh_time():
    issuer = IssuerKeys(_spec("q1"))
    device, public = generate_device_key()
    thief, _ = generate_device_key()
    raw = issuer.device_credential(TICKET, device_key=base64.urlsafe_b64decode(public + "="), valid_from=T0,
                                   valid_until=T0 + dt.timedelta(hours=2))
    cred = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    now = T0 + dt.timedelta(minutes=30)
    code = build_device_qr(cred, device, now=now)
    v = verify_qr(code, issuer.public, now=now + dt.timedelta(seconds=3), ttl_s=30)
    assert (v.ticket_id, v.kind) == (TICKET, "device_qr")
    assert len(code.encode()) <= 260
    assert _reason(build_device_qr(cred, thief, now=now), issuer.public, now=now) == "bad_device_signature"
    assert _reason(code, issuer.public, now=now + dt.timedelta(minutes=5)) == "expired_qr"
    late = T0 + dt.timedelta(hours=3)
    assert _reason(build_device_qr(cred, device, now=late), issuer.public, now=late) == "outside_validity"
    forged = bytearray(raw)
    forged[-70] ^= 1  # inside the embedded device key: the issuer signature no longer matches
    fcred = base64.urlsafe_b64encode(bytes(forged)).decode().rstrip("=")
    assert _reason(build_device_qr(fcred, device, now=now), issuer.public, now=now) in ("bad_signature",
                                                                                          "bad_device_signature")


def test_malformed_issuer_keys_are_refused_at_start():
    from ticketing.qr import KeyConfigError

    for spec in ("", "q1", "q1:notbase64!", "q1:" + base64.b64encode(b"short").decode()):
        with pytest.raises(KeyConfigError):
            IssuerKeys(spec)
