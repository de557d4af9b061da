"""Dependency aliases in one place: settings, session, Redis, principals and scopes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import redis
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from maas import accounts
from maas.db import session_scope
from maas.errors import Forbidden, MaasError, Unauthorized
from maas.security import GATE_TOKEN_PREFIX, Principal
from maas.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="Access token (JWT) or a gate device token")


async def get_app_settings(request: Request) -> Settings:
    # async: no I/O, so no thread-pool hop for a dependency nearly every route has
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed before the response is sent, rolled back on error."""
    with session_scope(request.app.state.engine) as session:
        yield session


async def get_redis(request: Request) -> redis.Redis:
    return request.app.state.redis  # the client only (no I/O here): no thread-pool hop


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
# scope="function": the commit happens before the response goes out, so a failed commit is never a 200.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]


def get_principal(session: SessionDep, settings: SettingsDep, request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("an Authorization: Bearer token is required", code="missing_token")
    token = credentials.credentials
    if token.startswith(GATE_TOKEN_PREFIX):
        return accounts.principal_from_gate_token(session, token)
    # One Redis round trip: logout, theft detection and disabling take effect at once (maas.revocation).
    return accounts.principal_from_access_token(session, settings, token, markers=request.app.state.redis)


def get_optional_principal(
    session: SessionDep, settings: SettingsDep, request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    if credentials is None:
        return None
    return get_principal(session, settings, request, credentials)


class WrongRole(Forbidden):
    code = "wrong_role"


class OutsideOperatorScope(Forbidden):
    code = "operator_scope"


def require_roles(*roles: str):  # noqa: ANN201
    allowed = frozenset(roles)

    def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in allowed:
            raise WrongRole(f"this needs one of the roles: {', '.join(sorted(allowed))}",
                            details={"required": sorted(allowed), "role": principal.role})
        return principal

    return dependency


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]
CurrentPassenger = Annotated[Principal, Depends(require_roles("passenger"))]
CurrentAdmin = Annotated[Principal, Depends(require_roles("admin"))]
AdminOrRegulator = Annotated[Principal, Depends(require_roles("admin", "regulator"))]
GateDevice = Annotated[Principal, Depends(require_roles("gate"))]
OperatorStaffOrAdmin = Annotated[Principal, Depends(require_roles("operator", "admin"))]


def check_operator_scope(principal: Principal, operator_id: str) -> None:
    """Admins see every operator; operator staff and gates only their own."""
    if principal.role == "admin":
        return
    if principal.role in ("operator", "gate") and principal.operator_id == operator_id:
        return
    raise OutsideOperatorScope("this belongs to another operator", details={"operator_id": operator_id})


def operator_scope(operator_id: str, principal: OperatorStaffOrAdmin) -> str:
    """Path parameter ``operator_id`` checked against the caller's scope."""
    check_operator_scope(principal, operator_id)
    return operator_id


OperatorScope = Annotated[str, Depends(operator_scope)]

__all__ = [
    "AdminOrRegulator", "CurrentAdmin", "CurrentPassenger", "CurrentPrincipal", "GateDevice", "MaasError",
    "OperatorScope", "OptionalPrincipal", "RedisDep", "SessionDep", "SettingsDep", "check_operator_scope",
]
