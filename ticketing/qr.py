"""Signed QR credentials: compact Ed25519- or SM2-signed binary, verifiable offline (format: docs/qr-format.md).

Two kinds, both ``"MQR" + base64url(bytes)`` (no padding):

**1 — issuer-rotating** (the server mints a fresh one on every request; it
lives ``qr_ttl_s`` seconds, so a screenshot goes stale)::

    0x01 | kid_len u8 | kid | ticket u8[12] | iat u32 | exp u32 | issuer_sig u8[64]

**2 — device-bound** (UIC DOSIPAS pattern): the issuer signs a credential
naming the holder device's Ed25519 public key for the ticket's whole
validity window; the app appends the current time signed with the device key,
offline::

    credential   = 0x02 | kid_len u8 | kid | ticket u8[12] | valid_from u32 | valid_until u32
                   | device_pub u8[32] | issuer_sig u8[64]
    presentation = credential | t u32 | device_sig u8[64]     device_sig = Ed25519(b"MQR2" | credential | t)

Integers are big-endian Unix seconds; ``ticket`` is the 12 random bytes of
the ticket id ``tkt_<24 hex>``; ``issuer_sig`` covers every byte before it.
Gates verify with the public keys of `IssuerKeys.jwks` (``kid`` picks the key,
so keys rotate without invalidating credentials already issued).

The issuer signature is Ed25519 or SM2 (GB/T 32918.2 with SM3, the default
signer ID ``1234567812345678``, ``r | s`` as two 32-byte big-endian integers),
whichever algorithm the key named by ``kid`` has: the layout is the same, so
an operator chooses its algorithm without any change to the payload format.
The device signature of kind 2 stays Ed25519 (the phone's key).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from nacl.bindings import crypto_core_ed25519_is_valid_point
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tongsuopy.crypto import hashes as sm_hashes
from tongsuopy.crypto.asymciphers import ec as sm_ec
from tongsuopy.crypto.exceptions import InvalidSignature as SMInvalidSignature

from ticketing.errors import TicketingError

PREFIX = "MQR"
KIND_ROTATING = 1
KIND_DEVICE = 2
DEVICE_DOMAIN = b"MQR2"
#: Accepted clock difference between the issuer, the phone and the gate (seconds).
CLOCK_SKEW_S = 5


ALG_ED25519 = "ed25519"
ALG_SM2 = "sm2"
ALGS = (ALG_ED25519, ALG_SM2)
#: The order n of the SM2 recommended curve (GB/T 32918.5); private keys are 1 <= d <= n - 2.
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
#: The signer ID of GM/T 0009 used in Z_A when none is agreed (OpenSSL/Tongsuo, GmSSL, gmssl all default to it).
SM2_DEFAULT_ID = b"1234567812345678"
#: JWKS values of an SM2 key (no JOSE registration exists; the names follow the Chinese JOSE libraries).
SM2_JWK_CRV = "SM2"
SM2_JWK_ALG = "SM2-SM3"


class QRRejected(TicketingError):
    """A QR payload that does not verify; ``code`` is the gate's reason."""

    status = 422


class KeyConfigError(ValueError):
    """``issuer_keys`` is malformed (a deployment fault found at start-up)."""


class QRAlgorithmUnavailable(TicketingError):
    """The operator signs with an algorithm for which ``issuer_keys`` holds no key (a deployment fault)."""

    code = "qr_algorithm_unavailable"
    status = 503


class SM2PublicKey:
    """An SM2 public key (65-byte uncompressed point) verifying ``r | s`` signatures over SM3(Z_A | M).

    Backed by Tongsuo (OpenSSL fork) through ``tongsuopy``: the fastest correct implementation
    measured (bench/qr_verify.py). ``verify`` raises `cryptography.exceptions.InvalidSignature`,
    like `Ed25519PublicKey.verify`, so both verify through the same code.
    """

    alg = ALG_SM2

    def __init__(self, point: bytes) -> None:
        if len(point) != 65 or point[0] != 4:
            raise ValueError("an SM2 public key is a 65-byte uncompressed point (0x04 | x | y)")
        self.point = bytes(point)
        self._key = sm_ec.EllipticCurvePublicKey.from_encoded_point(sm_ec.SM2(), self.point)  # checks on-curve

    def verify(self, signature: bytes, data: bytes) -> None:
        if len(signature) != 64:
            raise InvalidSignature
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        if not (0 < r < SM2_N and 0 < s < SM2_N):
            raise InvalidSignature
        try:
            self._key.verify(encode_dss_signature(r, s), data, sm_ec.ECDSA(sm_hashes.SM3()))
        except SMInvalidSignature:
            raise InvalidSignature from None


class SM2PrivateKey:
    """An SM2 private key (32 bytes, 1 <= d <= n - 2) signing with SM3 and the default signer ID."""

    alg = ALG_SM2

    def __init__(self, raw: bytes) -> None:
        d = int.from_bytes(raw, "big")
        if len(raw) != 32 or not 1 <= d <= SM2_N - 2:
            raise ValueError("an SM2 private key is 32 bytes, 1 <= d <= n - 2")
        self._key = sm_ec.derive_private_key(d, sm_ec.SM2())
        nums = self._key.public_key().public_numbers()
        self._public = SM2PublicKey(b"\x04" + nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big"))

    def public_key(self) -> SM2PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(data, sm_ec.ECDSA(sm_hashes.SM3())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def generate_sm2_private_key() -> bytes:
    """32 random bytes that are a valid SM2 private key (for `maas keys generate` and tests)."""
    import secrets

    while True:
        raw = secrets.token_bytes(32)
        if 1 <= int.from_bytes(raw, "big") <= SM2_N - 2:
            return raw


def key_alg(key: Any) -> str:
    return ALG_SM2 if isinstance(key, (SM2PublicKey, SM2PrivateKey)) else ALG_ED25519


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ticket_bytes(ticket_id: str) -> bytes:
    prefix, _, hexpart = ticket_id.partition("_")
    raw = bytes.fromhex(hexpart)
    if prefix != "tkt" or len(raw) != 12:
        raise ValueError(f"not a ticket id: {ticket_id!r}")
    return raw


def ticket_id_of(raw: bytes) -> str:
    return "tkt_" + raw.hex()


def _epoch(t: dt.datetime | int) -> int:
    return t if isinstance(t, int) else int(t.timestamp())


def is_strong_device_key(raw: bytes) -> bool:
    """Whether ``raw`` is a canonical encoding of an Ed25519 point of the prime-order subgroup (not small order).

    A small-order key (the identity, above all) lets anyone "sign" for it:
    with R = identity and S = 0 every message verifies; a non-canonical
    encoding is refused as well (libsodium's ``crypto_core_ed25519_is_valid_point``).
    """
    return isinstance(raw, bytes) and len(raw) == 32 and bool(crypto_core_ed25519_is_valid_point(raw))


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class IssuerKeys:
    """The issuer's keys: ``"kid:<base64 32-byte seed>,kid:sm2:<base64 32-byte SM2 key>,..."``.

    An entry is ``kid:<base64>`` (Ed25519 seed, as before) or ``kid:<alg>:<base64>`` with ``alg``
    ``ed25519`` or ``sm2``. For each algorithm the last key of that algorithm signs; all verify.
    ``current`` is the signing kid of Ed25519 (of SM2 when there is no Ed25519 key).
    """

    def __init__(self, spec: str) -> None:
        self.private: dict[str, Any] = {}
        for item in (spec or "").split(","):
            kid, sep, rest = item.strip().partition(":")
            alg, sep2, seed = rest.partition(":")
            if not sep2:
                alg, seed = ALG_ED25519, rest
            alg = alg.strip().lower()
            if not sep or not kid or len(kid.encode()) > 32:
                raise KeyConfigError("issuer_keys entries must look like '<kid>:[<alg>:]<base64 32-byte key>'")
            if alg not in ALGS:
                raise KeyConfigError(f"issuer key {kid!r} has the unknown algorithm {alg!r} (ed25519 or sm2)")
            if kid in self.private:
                raise KeyConfigError(f"issuer key id {kid!r} appears twice")
            try:
                raw = base64.b64decode(seed.strip() + "=" * (-len(seed.strip()) % 4), altchars=b"-_"
                                       if ("-" in seed or "_" in seed) else None, validate=True)
            except (binascii.Error, ValueError):
                raise KeyConfigError(f"issuer key {kid!r} is not valid base64") from None
            if len(raw) != 32:
                raise KeyConfigError(f"issuer key {kid!r} must be a 32-byte {alg} private key")
            if alg == ALG_SM2:
                try:
                    self.private[kid] = SM2PrivateKey(raw)
                except ValueError as exc:
                    raise KeyConfigError(f"issuer key {kid!r}: {exc}") from None
            else:
                self.private[kid] = Ed25519PrivateKey.from_private_bytes(raw)
        if not self.private:
            raise KeyConfigError("issuer_keys is empty")
        self.signing: dict[str, str] = {key_alg(k): kid for kid, k in self.private.items()}  # last per alg
        self.current = self.signing.get(ALG_ED25519) or self.signing[ALG_SM2]

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(a for a in ALGS if a in self.signing)

    def signing_kid(self, alg: str | None) -> str:
        """The kid that signs for ``alg`` (None: `current`); `QRAlgorithmUnavailable` without such a key."""
        if alg is None:
            return self.current
        kid = self.signing.get(alg)
        if kid is None:
            raise QRAlgorithmUnavailable(f"no {alg} issuer key is configured (MAAS_ISSUER_KEYS)",
                                         details={"alg": alg})
        return kid

    @property
    def public(self) -> dict[str, Any]:
        """kid -> `Ed25519PublicKey` or `SM2PublicKey` (both have ``verify(signature, data)``)."""
        return {kid: k.public_key() for kid, k in self.private.items()}

    def jwks(self) -> dict[str, Any]:
        """JWKS of every key that may have signed a live credential: Ed25519 as RFC 8037
        (``kty`` OKP, ``crv`` Ed25519, ``alg`` EdDSA); SM2 as ``kty`` EC, ``crv`` SM2, ``alg`` SM2-SM3, ``x``/``y``."""
        keys = []
        for kid, k in self.public.items():
            if isinstance(k, SM2PublicKey):
                keys.append({"kty": "EC", "crv": SM2_JWK_CRV, "alg": SM2_JWK_ALG, "use": "sig", "kid": kid,
                             "x": _b64e(k.point[1:33]), "y": _b64e(k.point[33:])})
            else:
                keys.append({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                             "x": _b64e(public_key_bytes(k))})
        return {"keys": keys}

    @staticmethod
    def _head(kind: int, kid_text: str) -> bytes:
        kid = kid_text.encode()
        return bytes([kind, len(kid)]) + kid

    def rotating_qr(self, ticket_id: str, *, now: dt.datetime, ttl_s: int,
                    alg: str | None = None) -> tuple[str, dt.datetime]:
        """A kind-1 payload valid ``ttl_s`` seconds from ``now``, signed with ``alg`` (default: `current`);
        returns ``(payload, expires_at)``."""
        kid = self.signing_kid(alg)
        iat = _epoch(now)
        body = self._head(KIND_ROTATING, kid) + ticket_bytes(ticket_id) + struct.pack(">II", iat, iat + ttl_s)
        sig = self.private[kid].sign(body)
        return PREFIX + _b64e(body + sig), dt.datetime.fromtimestamp(iat + ttl_s, dt.UTC)

    def device_credential(self, ticket_id: str, *, device_key: bytes, valid_from: dt.datetime,
                          valid_until: dt.datetime, alg: str | None = None) -> bytes:
        """The issuer-signed kind-2 credential binding ``device_key`` (32 raw bytes, Ed25519) to the ticket,
        signed with ``alg`` (default: `current`)."""
        if not is_strong_device_key(device_key):
            raise ValueError("not a valid Ed25519 public key (32 bytes, canonical, not of small order)")
        kid = self.signing_kid(alg)
        body = (self._head(KIND_DEVICE, kid) + ticket_bytes(ticket_id)
                + struct.pack(">II", _epoch(valid_from), _epoch(valid_until)) + device_key)
        return body + self.private[kid].sign(body)


def jwks_public_keys(jwks: dict[str, Any]) -> dict[str, Any]:
    """kid -> key from a JWKS document (what an offline gate keeps): Ed25519 and SM2 entries."""
    out: dict[str, Any] = {}
    for k in jwks.get("keys", []):
        if k.get("kty") == "OKP" and k.get("crv") == "Ed25519":
            out[k["kid"]] = Ed25519PublicKey.from_public_bytes(_b64d(k["x"]))
        elif k.get("kty") == "EC" and k.get("crv") == SM2_JWK_CRV:
            x, y = _b64d(k["x"]), _b64d(k["y"])
            if len(x) != 32 or len(y) != 32:
                raise ValueError(f"SM2 key {k.get('kid')!r}: x and y must be 32 bytes each")
            out[k["kid"]] = SM2PublicKey(b"\x04" + x + y)
    return out


@dataclass(frozen=True)
class VerifiedQR:
    ticket_id: str
    kind: str  # "qr" | "device_qr"
    kid: str
    shown_at: dt.datetime  # when the code was made (iat, or the device's t)
    device_key: bytes | None = None  # kind 2: the device public key named by the credential


def _reject(code: str, message: str) -> QRRejected:
    return QRRejected(message, code=code)


def _verify(key: Any, sig: bytes, data: bytes, code: str) -> None:
    try:
        key.verify(sig, data)
    except InvalidSignature:
        raise _reject(code, "the signature does not verify") from None


def verify_qr(payload: str, keys: dict[str, Any], *, now: dt.datetime, ttl_s: int) -> VerifiedQR:
    """Verifies either kind offline; raises `QRRejected` with code ``malformed``, ``unknown_key``,
    ``bad_signature``, ``bad_device_key``, ``bad_device_signature``, ``expired_qr`` or ``outside_validity``."""
    if not isinstance(payload, str) or not payload.startswith(PREFIX) or len(payload) > 1024:
        raise _reject("malformed", "not a ticket QR code")
    try:
        raw = _b64d(payload[len(PREFIX):])
    except (binascii.Error, ValueError):
        raise _reject("malformed", "the QR code is not base64url") from None
    if len(raw) < 2 or raw[0] not in (KIND_ROTATING, KIND_DEVICE) or len(raw) < 2 + raw[1]:
        raise _reject("malformed", "unknown QR layout")
    kind, klen = raw[0], raw[1]
    kid = raw[2:2 + klen].decode("utf-8", "replace")
    p = 2 + klen
    t_now = _epoch(now)
    key = keys.get(kid)
    if kind == KIND_ROTATING:
        if len(raw) != p + 12 + 8 + 64:
            raise _reject("malformed", "the QR code has the wrong length")
        if key is None:
            raise _reject("unknown_key", f"no issuer key {kid!r}")
        _verify(key, raw[-64:], raw[:-64], "bad_signature")
        tid = raw[p:p + 12]
        iat, exp = struct.unpack(">II", raw[p + 12:p + 20])
        if t_now > exp + CLOCK_SKEW_S or iat > t_now + CLOCK_SKEW_S:
            raise _reject("expired_qr", "the QR code is stale: refresh it in the app")
        return VerifiedQR(ticket_id_of(tid), "qr", kid, dt.datetime.fromtimestamp(iat, dt.UTC))
    cred_len = p + 12 + 8 + 32 + 64
    if len(raw) != cred_len + 4 + 64:
        raise _reject("malformed", "the QR code has the wrong length")
    if key is None:
        raise _reject("unknown_key", f"no issuer key {kid!r}")
    cred = raw[:cred_len]
    _verify(key, cred[-64:], cred[:-64], "bad_signature")
    tid = cred[p:p + 12]
    valid_from, valid_until = struct.unpack(">II", cred[p + 12:p + 20])
    if not is_strong_device_key(cred[p + 20:p + 52]):
        raise _reject("bad_device_key", "the credential names a weak device key (small order or non-canonical)")
    device_pub = Ed25519PublicKey.from_public_bytes(cred[p + 20:p + 52])
    (t,) = struct.unpack(">I", raw[cred_len:cred_len + 4])
    _verify(device_pub, raw[cred_len + 4:], DEVICE_DOMAIN + raw[:cred_len + 4], "bad_device_signature")
    if abs(t_now - t) > ttl_s + CLOCK_SKEW_S:
        raise _reject("expired_qr", "the QR code is stale: the phone's clock or a screenshot")
    if not valid_from <= t_now <= valid_until:
        raise _reject("outside_validity", "the credential is outside its validity window")
    return VerifiedQR(ticket_id_of(tid), "device_qr", kid, dt.datetime.fromtimestamp(t, dt.UTC),
                      device_key=cred[p + 20:p + 52])


def qr_image(payload: str, fmt: str) -> tuple[bytes, str]:
    """The payload as an SVG or PNG QR code (segno, error correction M); returns ``(bytes, media type)``."""
    import io

    import segno

    code = segno.make_qr(payload, error="m")
    buf = io.BytesIO()
    if fmt == "svg":
        code.save(buf, kind="svg", scale=4, border=2)
        return buf.getvalue(), "image/svg+xml"
    code.save(buf, kind="png", scale=6, border=2)
    return buf.getvalue(), "image/png"
