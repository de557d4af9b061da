"""Key material: generation (`maas keys generate`) and the strength checks production applies at start-up.

Every key is 32 random bytes in base64, in a keyring where it may rotate:

- ``MAAS_JWT_SECRET``: ``<kid>:<base64 Ed25519 seed>,...`` signs access and refresh tokens (EdDSA); the last
  signs, all verify. Only the public halves are published (``GET /.well-known/jwks.json``), so what a client
  or a leaked verifier holds cannot mint a token.
- ``MAAS_PII_KEYS``: ``<kid>:<base64 AES-256 key>,...`` encrypts personal data; the last encrypts.
- ``MAAS_BLIND_INDEX_KEY``: ``<base64 32 bytes>``, the HMAC key of look-ups by ID number.
- ``MAAS_ISSUER_KEYS``: ``<kid>:[<alg>:]<base64 32-byte key>,...`` signs QR credentials, ``alg`` ``ed25519``
  (the default) or ``sm2``; the last key of each algorithm signs, all verify.
- ``MAAS_AUDIT_KEY``: ``<base64 32 bytes>`` keys the audit hash chain (HMAC) and signs its checkpoints; the
  database never holds it.

A production key must decode to exactly 32 bytes, look random (not all-zero, not a short repeated pattern)
and serve one purpose only.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping

KEY_BYTES = 32
#: 32 random bytes have about 31 distinct values; fewer than this many means a pattern, not randomness.
MIN_DISTINCT_BYTES = 16
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
PLACEHOLDERS = {"", "changeme", "change-me", "change_me", "secret", "placeholder", "xxx", "todo", "password",
                "test", "example"}
#: Stripe secret (``sk_``) or restricted (``rk_``) keys; the part after the prefix is long and random.
_STRIPE_KEY = re.compile(r"^(sk|rk)_(live|test)_([A-Za-z0-9]{16,})$")
_WEBHOOK_SECRET = re.compile(r"^whsec_([A-Za-z0-9+/=_-]{24,})$")


class KeyProblem(ValueError):
    """Why a key is unacceptable (one line, never the key itself)."""


def decode_key(text: str) -> bytes:
    """Base64 (standard or URL-safe, padding optional) of exactly 32 bytes."""
    text = text.strip()
    try:
        altchars = b"-_" if ("-" in text or "_" in text) else None
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem("is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyProblem(f"must be {KEY_BYTES} bytes of base64, got {len(raw)}")
    return raw


def check_random(raw: bytes) -> None:
    if not any(raw):
        raise KeyProblem("is all zeros")
    if len(set(raw)) < MIN_DISTINCT_BYTES:
        raise KeyProblem("has too little entropy (a pattern, not random bytes)")


def parse_keyring(text: str, *, algs: tuple[str, ...] = ()) -> list[tuple[str, bytes]]:
    """``kid:<base64>,...`` -> [(kid, raw bytes)]; raises KeyProblem.

    With ``algs`` (the issuer keys), an entry may name its algorithm: ``kid:<alg>:<base64>``.
    """
    if text.strip().lower() in PLACEHOLDERS:
        raise KeyProblem("is a placeholder")
    ring: list[tuple[str, bytes]] = []
    for item in text.split(","):
        kid, sep, material = item.strip().partition(":")
        alg, sep2, rest = material.partition(":")
        if algs and sep2:
            if alg.strip().lower() not in algs:
                raise KeyProblem(f"key {kid!r} has the unknown algorithm {alg!r} ({' or '.join(algs)})")
            material = rest
        if not sep or not _KID.match(kid):
            raise KeyProblem("entries must look like '<kid>:<base64 32 bytes>'")
        if any(k == kid for k, _ in ring):
            raise KeyProblem(f"has the key id {kid!r} twice")
        try:
            ring.append((kid, decode_key(material)))
        except KeyProblem as exc:
            raise KeyProblem(f"key {kid!r} {exc}") from None
    return ring


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


#: The order n of the SM2 curve (GB/T 32918.5): an SM2 private key is 1 <= d <= n - 2.
_SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
ISSUER_ALGS = ("ed25519", "sm2")


def _sm2_private_key() -> bytes:
    while True:
        raw = secrets.token_bytes(KEY_BYTES)
        if 1 <= int.from_bytes(raw, "big") <= _SM2_N - 2:
            return raw


def generate() -> dict[str, str]:
    """A complete, strong set of keys as environment variables (fresh random material each call)."""
    tag = secrets.token_hex(3)
    return {
        "MAAS_JWT_SECRET": f"j{tag}:{_b64(secrets.token_bytes(KEY_BYTES))}",
        "MAAS_PII_KEYS": f"k{tag}:{_b64(secrets.token_bytes(KEY_BYTES))}",
        "MAAS_BLIND_INDEX_KEY": _b64(secrets.token_bytes(KEY_BYTES)),
        # Ed25519 and SM2 (operators choose; docs/qr-format.md): the last key of each algorithm signs.
        "MAAS_ISSUER_KEYS": f"q{tag}:{_b64(secrets.token_bytes(KEY_BYTES))},s{tag}:sm2:{_b64(_sm2_private_key())}",
        "MAAS_AUDIT_KEY": _b64(secrets.token_bytes(KEY_BYTES)),
    }


def production_problems(values: Mapping[str, str | None]) -> list[str]:
    """One line per unacceptable production secret (empty when all are fine).

    ``values`` maps setting names (``MAAS_JWT_SECRET``, ``STRIPE_API_KEY`` ...) to their values or None.
    """
    problems: list[str] = []
    seen: dict[bytes, str] = {}

    def record(name: str, raw: bytes) -> None:
        other = seen.get(raw)
        if other is not None and other != name:
            problems.append(f"setting {name} reuses the key of {other}; each purpose needs its own key")
        elif other == name:
            problems.append(f"setting {name} holds the same key twice")
        seen.setdefault(raw, name)

    hint = " (run 'maas keys generate')"
    for name in ("MAAS_JWT_SECRET", "MAAS_PII_KEYS", "MAAS_BLIND_INDEX_KEY", "MAAS_ISSUER_KEYS", "MAAS_AUDIT_KEY"):
        value = values.get(name)
        if value is None or value.strip().lower() in PLACEHOLDERS:
            problems.append(f"setting {name} must be set to a real secret in production{hint}")
            continue
        try:
            if name in ("MAAS_BLIND_INDEX_KEY", "MAAS_AUDIT_KEY"):
                ring = [("", decode_key(value))]
            else:
                ring = parse_keyring(value, algs=ISSUER_ALGS if name == "MAAS_ISSUER_KEYS" else ())
            for _, raw in ring:
                check_random(raw)
        except KeyProblem as exc:
            problems.append(f"setting {name} {exc}{hint}")
            continue
        for _, raw in ring:
            record(name, raw)

    api_key = values.get("STRIPE_API_KEY")
    webhook = values.get("STRIPE_WEBHOOK_SECRET")
    if api_key is not None and not _stripe_key_ok(api_key):
        problems.append("setting STRIPE_API_KEY must be a real Stripe secret key (sk_live_... or sk_test_...)")
    if webhook is not None and not _webhook_secret_ok(webhook):
        problems.append("setting STRIPE_WEBHOOK_SECRET must be the endpoint's signing secret (whsec_...) "
                        "from Stripe, not a placeholder")
    elif webhook is None and api_key is not None:
        problems.append("setting STRIPE_WEBHOOK_SECRET is required when Stripe is the payment provider")
    return problems


def _looks_random(text: str, minimum: int) -> bool:
    return len(set(text)) >= minimum


def _stripe_key_ok(value: str) -> bool:
    m = _STRIPE_KEY.match(value.strip())
    return bool(m) and _looks_random(m.group(3), 10)


def _webhook_secret_ok(value: str) -> bool:
    m = _WEBHOOK_SECRET.match(value.strip())
    return bool(m) and _looks_random(m.group(1), 12)
