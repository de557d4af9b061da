"""Passwords (Argon2id) and tokens (PyJWT).

Access tokens are short-lived HS256 JWTs carrying the role and, for operator
staff, the operator id. Refresh tokens are JWTs whose id (jti) is recorded in
the database so they can be revoked; using one rotates it, and presenting a
revoked one revokes its whole family (token theft).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from maas.errors import InvalidToken, TokenExpired
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


def _encode(settings: Settings, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, settings.secret("jwt_secret"), algorithm="HS256")


def issue_access_token(settings: Settings, *, user_id: str, role: str, operator_id: str | None,
                       now: dt.datetime) -> str:
    claims = {
        "iss": ISSUER, "sub": user_id, "typ": "access", "role": role, "iat": now,
        "exp": now + dt.timedelta(seconds=settings.access_token_ttl_s), "jti": secrets.token_hex(8),
    }
    if operator_id:
        claims["op"] = operator_id
    return _encode(settings, claims)


def issue_refresh_token(settings: Settings, *, user_id: str, jti: str, family: str, now: dt.datetime) -> str:
    claims = {
        "iss": ISSUER, "sub": user_id, "typ": "refresh", "jti": jti, "fam": family, "iat": now,
        "exp": now + dt.timedelta(seconds=settings.refresh_token_ttl_s),
    }
    return _encode(settings, claims)


def decode_token(settings: Settings, token: str, *, expected_type: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token, settings.secret("jwt_secret"), algorithms=["HS256"], issuer=ISSUER,
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
