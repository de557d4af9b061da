"""SM2 (with SM3) QR signatures (issue 16, item 4): standard vectors, two independent implementations
agreeing with the one we ship (Tongsuo via ``tongsuopy``), and the QR layer with SM2 issuer keys."""

from __future__ import annotations

import base64
import datetime as dt
import struct

import pytest
from gmalglib.sm2 import SM2 as GmalgSM2
from gmssl import sm2 as gmssl_sm2
from gmssl import sm3 as gmssl_sm3
from tongsuopy.crypto import hashes as sm_hashes

from ticketing.qr import (SM2_DEFAULT_ID, SM2_N, IssuerKeys, KeyConfigError, QRRejected, SM2PrivateKey,
                          SM2PublicKey, generate_sm2_private_key, jwks_public_keys, verify_qr)
from ticketing.qr_client import build_device_qr, generate_device_key

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
TICKET = "tkt_" + "cd" * 12


def _sm3(data: bytes) -> bytes:
    h = sm_hashes.Hash(sm_hashes.SM3())
    h.update(data)
    return h.finalize()


def _sm2_spec(kid: str, raw: bytes | None = None) -> str:
    return f"{kid}:sm2:{base64.b64encode(raw or generate_sm2_private_key()).decode()}"


def _ed_spec(kid: str) -> str:
    return f"{kid}:{base64.b64encode(bytes(range(7, 39))).decode()}"


def _reason(payload: str, keys, now=T0, ttl=30) -> str:  # noqa: ANN001
    with pytest.raises(QRRejected) as exc:
        verify_qr(payload, keys, now=now, ttl_s=ttl)
    return exc.value.code


# --------------------------------------------------------------------------- SM3 (GB/T 32905 examples)

SM3_VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]


@pytest.mark.parametrize(("message", "digest"), SM3_VECTORS, ids=["abc", "abcd*16"])
def test_sm3_standard_examples(message: bytes, digest: str) -> None:
    assert _sm3(message).hex() == digest  # Tongsuo, what we ship
    assert gmssl_sm3.sm3_hash(list(message)) == digest  # pure Python
    from gmalglib.sm3 import SM3

    assert SM3(message).digest().hex() == digest  # C


# --------------------------------------------------------------------------- SM2: GB/T 32918.2 Appendix A

# The example curve over F_p (256 bits) and signer of GB/T 32918.2-2016 A.2 (GM/T 0003.2-2012 A.2).
EX = {
    "p": "8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3",
    "a": "787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498",
    "b": "63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A",
    "g": "421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D"
         "0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2",
    "n": "8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7",
}
EX_ID = b"ALICE123@YAHOO.COM"
EX_M = b"message digest"
EX_D = "128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263"
EX_PUB = ("0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A"
          "7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857")
EX_Z = "F4A38489E32B45B6F876E3AC2168CA392362DC8F23459C1D1146FC3DBFB7BC9A"
EX_E = "B524F552CD82B8B028476E005C377FB19A87E6FC682D48BB5D42E3D9B9EFFE76"
EX_K = "6CB28D99385C175C94F94E934817663FC176D925DD72B727260DBAAE1FB2F96F"
EX_R = "40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1"
EX_S = "6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7"


def _z(uid: bytes, a: str, b: str, g: str, pub: str) -> bytes:
    return _sm3(struct.pack(">H", len(uid) * 8) + uid + bytes.fromhex(a + b + g + pub))


def test_sm2_signature_example_of_gbt_32918_2() -> None:
    """Z_A, e and (r, s) of the standard's worked example, with its fixed k; the signature verifies and a
    changed message does not. (Tongsuo and gmalglib fix the recommended curve; gmssl takes any curve.)"""
    z = _z(EX_ID, EX["a"], EX["b"], EX["g"], EX_PUB)
    assert z.hex().upper() == EX_Z
    e = _sm3(z + EX_M)
    assert e.hex().upper() == EX_E
    ecc = {**{k: v.lower() for k, v in EX.items()}}
    signer = gmssl_sm2.CryptSM2(private_key=EX_D.lower(), public_key=EX_PUB.lower(), ecc_table=ecc)
    sig = signer.sign(e, EX_K.lower())
    assert sig.upper() == EX_R + EX_S
    assert signer.verify(EX_R + EX_S, e)
    assert not signer.verify(EX_R + EX_S, _sm3(z + b"message digesT"))


# --------------------------------------------------------------------------- SM2 on the recommended curve


def test_three_implementations_agree_on_the_recommended_curve() -> None:
    """What Tongsuo signs, gmalglib (C) and gmssl (pure Python) verify, with the default signer ID; what they
    sign (gmssl with a fixed k), Tongsuo verifies."""
    raw = generate_sm2_private_key()
    ours = SM2PrivateKey(raw)
    pub = ours.public_key().point
    msg = b"\x01\x02s1" + bytes(12) + struct.pack(">II", 1, 31)
    sig = ours.sign(msg)
    assert len(sig) == 64
    assert GmalgSM2(pk=pub).verify(msg, sig)
    pure = gmssl_sm2.CryptSM2(private_key=raw.hex(), public_key=pub[1:].hex())
    assert pure.verify_with_sm3(sig.hex(), msg)
    assert SM2_DEFAULT_ID == b"1234567812345678"

    sig_py = bytes.fromhex(pure.sign_with_sm3(msg, "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21"))
    ours.public_key().verify(sig_py, msg)
    ours.public_key().verify(GmalgSM2(sk=raw, pk=pub).sign(msg), msg)


def test_sm2_public_key_refuses_out_of_range_and_altered_signatures() -> None:
    from cryptography.exceptions import InvalidSignature

    key = SM2PrivateKey(generate_sm2_private_key())
    msg = b"hello"
    sig = key.sign(msg)
    pub = key.public_key()
    pub.verify(sig, msg)
    n = SM2_N.to_bytes(32, "big")
    for bad in (bytes(64), sig[:32] + bytes(32), bytes(32) + sig[32:], n + sig[32:], sig[:32] + n, sig[:-1],
                sig[:10] + bytes([sig[10] ^ 1]) + sig[11:]):
        with pytest.raises(InvalidSignature):
            pub.verify(bad, msg)
    with pytest.raises(InvalidSignature):
        pub.verify(sig, msg + b"!")
    with pytest.raises(ValueError):
        SM2PublicKey(b"\x04" + bytes(64))  # not on the curve


# --------------------------------------------------------------------------- the QR layer


def test_sm2_rotating_qr_verifies_offline_from_the_jwks() -> None:
    issuer = IssuerKeys(_ed_spec("q1") + "," + _sm2_spec("s1"))
    assert issuer.current == "q1" and issuer.algorithms == ("ed25519", "sm2")
    payload, _ = issuer.rotating_qr(TICKET, now=T0, ttl_s=30, alg="sm2")
    jwks = issuer.jwks()
    entry = next(k for k in jwks["keys"] if k["kid"] == "s1")
    assert (entry["kty"], entry["crv"], entry["alg"]) == ("EC", "SM2", "SM2-SM3")
    keys = jwks_public_keys(jwks)
    v = verify_qr(payload, keys, now=T0 + dt.timedelta(seconds=5), ttl_s=30)
    assert (v.ticket_id, v.kind, v.kid) == (TICKET, "qr", "s1")
    assert len(payload) == 121  # the same layout and size as Ed25519
    # the default (an Ed25519 operator) is unaffected
    ed, _ = issuer.rotating_qr(TICKET, now=T0, ttl_s=30)
    assert verify_qr(ed, keys, now=T0, ttl_s=30).kid == "q1"


@pytest.mark.parametrize("position", [3, 10, 20, 40, 80, -2])
def test_a_tampered_sm2_code_is_refused(position: int) -> None:
    issuer = IssuerKeys(_sm2_spec("s1"))
    payload, _ = issuer.rotating_qr(TICKET, now=T0, ttl_s=30, alg="sm2")
    ch = payload[position]
    tampered = payload[:position] + ("B" if ch != "B" else "C") + (payload[position + 1:] if position != -1 else "")
    assert tampered != payload
    assert _reason(tampered, issuer.public) in ("bad_signature", "malformed", "unknown_key")


def test_an_sm2_signature_under_an_ed25519_kid_is_refused() -> None:
    """The algorithm comes from the key named by kid, never from the code: relabelling fails."""
    issuer = IssuerKeys(_ed_spec("q1") + "," + _sm2_spec("s1"))
    payload, _ = issuer.rotating_qr(TICKET, now=T0, ttl_s=30, alg="sm2")
    raw = base64.urlsafe_b64decode(payload[3:] + "==")
    relabelled = bytes([raw[0], 2]) + b"q1" + raw[4:]
    assert _reason("MQR" + base64.urlsafe_b64encode(relabelled).decode().rstrip("="), issuer.public) == \
        "bad_signature"


def test_sm2_keys_rotate_by_kid() -> None:
    old_spec = _sm2_spec("s1")
    old = IssuerKeys(_ed_spec("q1") + "," + old_spec)
    device, public = generate_device_key()
    cred = old.device_credential(TICKET, device_key=base64.urlsafe_b64decode(public + "="), valid_from=T0,
                                 valid_until=T0 + dt.timedelta(hours=6), alg="sm2")
    rotated = IssuerKeys(_ed_spec("q1") + "," + old_spec + "," + _sm2_spec("s2"))
    assert rotated.signing == {"ed25519": "q1", "sm2": "s2"}
    keys = jwks_public_keys(rotated.jwks())
    t = T0 + dt.timedelta(hours=1)
    code = build_device_qr(base64.urlsafe_b64encode(cred).decode().rstrip("="), device, now=t)
    v = verify_qr(code, keys, now=t, ttl_s=30)
    assert (v.kind, v.kid) == ("device_qr", "s1")
    new_code, _ = rotated.rotating_qr(TICKET, now=T0, ttl_s=30, alg="sm2")
    assert verify_qr(new_code, keys, now=T0, ttl_s=30).kid == "s2"
    assert _reason(new_code, jwks_public_keys(old.jwks())) == "unknown_key"
    # a device code of an SM2 credential still needs the device's Ed25519 signature
    thief, _ = generate_device_key()
    forged = build_device_qr(base64.urlsafe_b64encode(cred).decode().rstrip("="), thief, now=t)
    assert _reason(forged, keys, now=t) == "bad_device_signature"


def test_sm2_key_specs_are_checked_at_start() -> None:
    d_zero = base64.b64encode(bytes(32)).decode()
    d_n = base64.b64encode(SM2_N.to_bytes(32, "big")).decode()
    for spec in ("s1:sm2:" + d_zero, "s1:sm2:" + d_n, "s1:rsa:" + base64.b64encode(bytes(range(32))).decode(),
                 "s1:sm2:short", _sm2_spec("s1") + "," + _sm2_spec("s1")):
        with pytest.raises(KeyConfigError):
            IssuerKeys(spec)
    from ticketing.qr import QRAlgorithmUnavailable

    with pytest.raises(QRAlgorithmUnavailable):
        IssuerKeys(_ed_spec("q1")).rotating_qr(TICKET, now=T0, ttl_s=30, alg="sm2")
    # explicit ed25519 entries are the same keys as the legacy form
    a = IssuerKeys(_ed_spec("q1"))
    b = IssuerKeys(_ed_spec("q1").replace("q1:", "q1:ed25519:"))
    assert a.jwks() == b.jwks()


def test_keys_generate_emits_a_usable_sm2_issuer_key() -> None:
    from maas.keys import generate, production_problems

    env = generate()
    issuer = IssuerKeys(env["MAAS_ISSUER_KEYS"])
    assert issuer.algorithms == ("ed25519", "sm2")
    assert production_problems(env) == []
