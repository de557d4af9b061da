"""Accounts, operators, tokens and gate devices (services over a Session).

Services take the session first and keyword-only arguments, flush but never
commit (the request or command owns the transaction), and raise `MaasError`
subclasses.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

import redis
import sqlalchemy as sa
from sqlmodel import Session, select

from maas import audit, revocation
from maas.db import utcnow
from maas.errors import AlreadyExists, BadRequest, InvalidCredentials, InvalidToken, NotFound, TokenRevoked
from maas.models import GateDevice, Operator, RefreshToken, Role, User
from maas.security import (
    DUMMY_PASSWORD_HASH,
    Principal,
    decode_token,
    hash_password,
    issue_access_token,
    issue_refresh_token,
    new_gate_token,
    token_digest,
    verify_password,
)
from maas.settings import Settings

PHONE_RE = re.compile(r"^\+?[0-9]{6,20}$")
OPERATOR_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class InvalidPhone(BadRequest):
    code = "invalid_phone"


class WeakPassword(BadRequest):
    code = "weak_password"


class InvalidRole(BadRequest):
    code = "invalid_role"


class OperatorRequired(BadRequest):
    code = "operator_required"


class UnknownOperator(NotFound):
    code = "unknown_operator"


class InvalidOperatorId(BadRequest):
    code = "invalid_operator_id"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = 0


def normalise_phone(phone: str) -> str:
    phone = re.sub(r"[\s-]", "", phone or "")
    if not PHONE_RE.match(phone):
        raise InvalidPhone("the phone number must be 6 to 20 digits, optionally starting with +")
    return phone


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise WeakPassword("the password must have at least 8 characters")
    if len(password) > 256:
        raise WeakPassword("the password must have at most 256 characters")


def find_operator(session: Session, operator_id: str) -> Operator | None:
    return session.get(Operator, operator_id)


def get_operator(session: Session, operator_id: str) -> Operator:
    op = find_operator(session, operator_id)
    if op is None:
        raise UnknownOperator(f"operator {operator_id!r} does not exist", details={"operator_id": operator_id})
    return op


def ensure_operator(session: Session, *, operator_id: str, name: str | None = None, kind: str | None = None,
                    actor: Principal | None = None) -> Operator:
    """Create the operator if new; return the existing one otherwise."""
    if not OPERATOR_ID_RE.match(operator_id):
        raise InvalidOperatorId("operator ids are 1-64 letters, digits, '_', '.' or '-'")
    op = find_operator(session, operator_id)
    if op is not None:
        return op
    op = Operator(operator_id=operator_id, name=name or operator_id, kind=kind)
    session.add(op)
    session.flush()
    audit.record(session, action="operator.create", actor_id=actor.subject if actor else None,
                 actor_role=actor.role if actor else "system", target=operator_id, operator_id=operator_id)
    return op


def create_user(session: Session, *, phone: str, password: str, name: str, role: str,
                operator_id: str | None = None, actor: Principal | None = None) -> User:
    if role not in {r.value for r in Role} or role == Role.gate:
        raise InvalidRole(f"role must be one of passenger, operator, regulator, admin (got {role!r})")
    if role == Role.operator:
        if not operator_id:
            raise OperatorRequired("operator staff accounts need an operator id")
        get_operator(session, operator_id)
    elif operator_id:
        raise BadRequest("only operator staff accounts are bound to an operator", code="operator_not_allowed")
    phone = normalise_phone(phone)
    _check_password(password)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise BadRequest("the name must have 1 to 100 characters", code="invalid_name")
    if session.exec(select(User).where(User.phone == phone)).first() is not None:
        raise AlreadyExists("an account with this phone number already exists", code="phone_taken")
    user = User(phone=phone, name=name, password_hash=hash_password(password), role=role,
                operator_id=operator_id)
    session.add(user)
    session.flush()
    if role != Role.passenger or actor is not None:
        audit.record(session, action="user.create", actor_id=actor.subject if actor else None,
                     actor_role=actor.role if actor else "system", target=user.user_id,
                     operator_id=operator_id, details={"role": role})
    return user


def _issue_pair(session: Session, settings: Settings, user: User, *, family: str | None, now: dt.datetime,
                jti: str | None = None) -> TokenPair:
    jti = jti or secrets.token_hex(16)
    family = family or secrets.token_hex(16)
    session.add(RefreshToken(jti=jti, user_id=user.user_id, family=family, issued_at=now,
                             expires_at=now + dt.timedelta(seconds=settings.refresh_token_ttl_s)))
    session.flush()
    return TokenPair(
        access_token=issue_access_token(settings, user_id=user.user_id, role=user.role,
                                        operator_id=user.operator_id, now=now, family=family),
        refresh_token=issue_refresh_token(settings, user_id=user.user_id, jti=jti, family=family, now=now),
        expires_in=settings.access_token_ttl_s,
    )


def login(session: Session, settings: Settings, *, phone: str, password: str) -> TokenPair:
    try:
        phone = normalise_phone(phone)
    except InvalidPhone:
        verify_password(DUMMY_PASSWORD_HASH, password)
        raise InvalidCredentials("wrong phone number or password") from None
    user = session.exec(select(User).where(User.phone == phone)).first()
    if user is None or user.disabled:
        verify_password(DUMMY_PASSWORD_HASH, password)
        raise InvalidCredentials("wrong phone number or password")
    if not verify_password(user.password_hash, password):
        raise InvalidCredentials("wrong phone number or password")
    return _issue_pair(session, settings, user, family=None, now=utcnow())


def refresh(session: Session, settings: Settings, *, refresh_token: str,
            markers: redis.Redis | None = None) -> TokenPair:
    """Rotate a refresh token. Re-use of a rotated or revoked token revokes the whole family.

    ``markers``: the Redis of the revocation markers (`maas.revocation`), so that a revoked family's
    access tokens die at once too.
    """
    claims = decode_token(settings, refresh_token, expected_type="refresh")
    row = session.get(RefreshToken, claims["jti"])
    if row is None or row.user_id != claims["sub"]:
        raise InvalidToken("the refresh token is not known")
    now = utcnow()
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        raise InvalidToken("the account is disabled")
    # Rotation is one conditional UPDATE: of concurrent presentations of the same token exactly one
    # matches "not yet rotated" (PostgreSQL makes the others wait for its row lock, then re-check and
    # match nothing; SQLite serializes writers). Everyone else is re-using a rotated token.
    new_jti = secrets.token_hex(16)
    won = session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.jti == row.jti, RefreshToken.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=now, replaced_by=new_jti)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        # Re-use of a rotated token means it was stolen: revoke every token of that login, including
        # the one the winner just got. The error keeps this write (see `session_scope`), so the
        # revocation outlives the refused request.
        revoke_family(session, family=row.family, now=now)
        if markers is not None:
            revocation.revoke_families(markers, settings, {row.family})
        raise TokenRevoked("the refresh token has been revoked", keep_writes=True)
    session.expire(row)
    return _issue_pair(session, settings, user, family=row.family, now=now, jti=new_jti)


def revoke_family(session: Session, *, family: str, now: dt.datetime | None = None) -> int:
    """Revoke every live token of one login (one statement, so it sees rows other requests committed)."""
    now = now or utcnow()
    session.flush()
    count = session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.expire_all()
    return int(count or 0)


def revoke_refresh_token(session: Session, settings: Settings, *, refresh_token: str,
                         markers: redis.Redis | None = None) -> None:
    """Log out: revoke the presented refresh token and every token rotated from the same login (and, with
    ``markers``, the login's access tokens at once)."""
    claims = decode_token(settings, refresh_token, expected_type="refresh")
    row = session.get(RefreshToken, claims["jti"])
    if row is None or row.user_id != claims["sub"]:
        raise InvalidToken("the refresh token is not known")
    revoke_family(session, family=row.family)
    if markers is not None:
        revocation.revoke_families(markers, settings, {row.family})


def set_disabled(session: Session, settings: Settings, *, user_id: str, disabled: bool,
                 markers: redis.Redis | None = None, actor: Principal | None = None) -> User:
    """Disable (or enable again) an account. Disabling revokes every refresh token of the user and, with
    ``markers``, every access token still alive, at once."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such account", code="unknown_user", details={"user_id": user_id})
    now = utcnow()
    user.disabled = disabled
    session.add(user)
    session.flush()
    if disabled:
        # Every live access token was issued together with a refresh token of its family.
        recent = now - dt.timedelta(seconds=settings.access_token_ttl_s + 60)
        families = set(session.exec(select(RefreshToken.family).where(
            RefreshToken.user_id == user_id, RefreshToken.issued_at >= recent)).all())
        session.execute(
            sa.update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))  # type: ignore[union-attr]
            .values(revoked_at=now)
            .execution_options(synchronize_session=False))
        if markers is not None:
            revocation.revoke_families(markers, settings, families)
            revocation.revoke_user(markers, settings, user_id)
    elif markers is not None:
        revocation.clear_user(markers, user_id)
    audit.record(session, action="user.disable" if disabled else "user.enable",
                 actor_id=actor.subject if actor else None, actor_role=actor.role if actor else "system",
                 target=user_id, operator_id=user.operator_id)
    return user


def principal_from_access_token(session: Session, settings: Settings, token: str,
                                markers: redis.Redis | None = None) -> Principal:
    """The caller of an access token; with ``markers``, refused once its login or account was revoked."""
    claims = decode_token(settings, token, expected_type="access")
    if markers is not None:
        revocation.check_access(markers, claims)
    return Principal(subject=claims["sub"], role=claims["role"], operator_id=claims.get("op"))


class GateStopOrRoaming(BadRequest):
    code = "gate_stop_or_roaming"


def create_gate(session: Session, *, operator_id: str, stop_id: str | None = None, roaming: bool = False,
                actor: Principal | None = None) -> tuple[GateDevice, str]:
    """Register a gate device; returns it and its bearer token (shown once, stored hashed).

    A gate stands at ``stop_id`` (it validates only there or at its parent station), or it has no stop
    and validates nowhere unless ``roaming`` is set explicitly; never both.
    """
    if stop_id is not None and roaming:
        raise GateStopOrRoaming("a gate either stands at a stop or roams, not both", details={"stop_id": stop_id})
    get_operator(session, operator_id)
    token = new_gate_token()
    gate = GateDevice(operator_id=operator_id, stop_id=stop_id, roaming=roaming, token_hash=token_digest(token))
    session.add(gate)
    session.flush()
    audit.record(session, action="gate.create", actor_id=actor.subject if actor else None,
                 actor_role=actor.role if actor else "system", target=gate.gate_id, operator_id=operator_id,
                 details={"stop_id": stop_id, "roaming": roaming})
    return gate, token


class GateNotFound(NotFound):
    code = "gate_not_found"


def set_gate_roaming(session: Session, *, operator_id: str, gate_id: str, roaming: bool,
                     actor: Principal) -> GateDevice:
    """Let a stop-less gate of ``operator_id`` roam (or stop it); audited. `GateNotFound` for another's gate."""
    gate = session.get(GateDevice, gate_id)
    if gate is None or gate.operator_id != operator_id:
        raise GateNotFound("no such gate of this operator", details={"gate_id": gate_id})
    if gate.stop_id is not None and roaming:
        raise GateStopOrRoaming("a gate either stands at a stop or roams, not both", details={"stop_id": gate.stop_id})
    gate.roaming = roaming
    session.add(gate)
    session.flush()
    audit.record(session, action="gate.roaming", actor_id=actor.subject, actor_role=actor.role, target=gate_id,
                 operator_id=operator_id, details={"roaming": roaming})
    return gate


def principal_from_gate_token(session: Session, token: str) -> Principal:
    gate = session.exec(select(GateDevice).where(GateDevice.token_hash == token_digest(token))).first()
    if gate is None or not gate.active:
        raise InvalidToken("the gate token is not valid")
    return Principal(subject=gate.gate_id, role=Role.gate.value, operator_id=gate.operator_id, gate_id=gate.gate_id)
