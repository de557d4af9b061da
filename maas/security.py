"""Passwords (Argon2id) and tokens (PyJWT).

Access tokens are short-lived JWTs carrying the role and, for operator
staff, the operator id. Refresh tokens are JWTs whose id (jti) is recorded in
the database so they can be revoked; using one rotates it, and presenting a
revoked one revokes its whole family (token theft).

Tokens are signed with Ed25519 (EdDSA) keys from ``MAAS_JWT_SECRET``
(``<kid>:<base64 seed>,...``; the last signs, all verify). Only public keys are
published (`jwks`), and only EdDSA with a known ``kid`` is accepted, so neither
a verifying key nor an HMAC trick can mint a token.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from maas.errors import InvalidToken, TokenExpired
from maas.keys import parse_keyring
from maas.settings import Settings

_hasher = PasswordHasher()
ISSUER = "maas"
GATE_TOKEN_PREFIX = "mgt_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A fixed hash to verify against when the account does not exist, so timing does not reveal it.
DUMMY_PASSWORD_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account or a gate device."""

    subject: str
    role: str
    operator_id: str | None = None
    gate_id: str | None = None

    @property
    def is_gate(self) -> bool:
        return self.role == "gate"


@lru_cache(maxsize=8)
def _signing_keys(spec: str) -> tuple[str, dict[str, Ed25519PrivateKey]]:
    ring = parse_keyring(spec)
    return ring[-1][0], {kid: Ed25519PrivateKey.from_private_bytes(raw) for kid, raw in ring}


def encode_token(settings: Settings, claims: dict[str, Any]) -> str:
    """Sign claims with the current token key (EdDSA, ``kid`` in the header)."""
    current, keys = _signing_keys(settings.secret("jwt_secret"))
    return jwt.encode(claims, keys[current], algorithm="EdDSA", headers={"kid": current})


_encode = encode_token


def jwks(settings: Settings) -> dict[str, Any]:
    """The public keys that verify our tokens (RFC 8037 OKP keys), for clients and other services."""
    _, keys = _signing_keys(settings.secret("jwt_secret"))
    out = []
    for kid, key in keys.items():
        x = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        out.append({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                    "x": base64.urlsafe_b64encode(x).rstrip(b"=").decode()})
    return {"keys": out}


def issue_access_token(settings: Settings, *, user_id: str, role: str, operator_id: str | None,
                       now: dt.datetime, family: str | None = None) -> str:
    claims = {
        "iss": ISSUER, "sub": user_id, "typ": "access", "role": role, "iat": now,
        "exp": now + dt.timedelta(seconds=settings.access_token_ttl_s), "jti": secrets.token_hex(8),
    }
    if operator_id:
        claims["op"] = operator_id
    if family:
        claims["fam"] = family  # the login (refresh-token family), so revoking it kills this token at once
    return _encode(settings, claims)


def issue_refresh_token(settings: Settings, *, user_id: str, jti: str, family: str, now: dt.datetime) -> str:
    claims = {
        "iss": ISSUER, "sub": user_id, "typ": "refresh", "jti": jti, "fam": family, "iat": now,
        "exp": now + dt.timedelta(seconds=settings.refresh_token_ttl_s),
    }
    return _encode(settings, claims)


def decode_token(settings: Settings, token: str, *, expected_type: str) -> dict[str, Any]:
    _, keys = _signing_keys(settings.secret("jwt_secret"))
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise jwt.InvalidTokenError("unknown key id")
        claims = jwt.decode(
            token, key.public_key(), algorithms=["EdDSA"], issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "typ", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired("the token has expired") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("the token is not valid") from None
    if claims.get("typ") != expected_type:
        raise InvalidToken(f"expected a {expected_type} token")
    return claims


def new_gate_token() -> str:
    return GATE_TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
