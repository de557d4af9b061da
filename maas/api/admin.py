"""Admin and operator-scoped account management: operators, users, gate devices."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field
from sqlmodel import select

from maas import accounts, audit
from maas.api.auth import Strict
from maas.api.deps import CurrentAdmin, OperatorScope, OperatorStaffOrAdmin, RedisDep, SessionDep, SettingsDep
from maas.errors import AlreadyExists, BadRequest, Forbidden, NotFound, error_responses
from maas.models import GateDevice, Operator

router = APIRouter(tags=["admin"])


class OperatorIn(Strict):
    operator_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = Field(min_length=1, max_length=200)
    kind: str | None = Field(default=None, max_length=32)
    qr_alg: Literal["ed25519", "sm2"] = Field(default="ed25519", description="issuer algorithm of the QR codes of "
                                              "tickets with a leg of this operator (docs/qr-format.md)")


class OperatorOut(BaseModel):
    operator_id: str
    name: str
    kind: str | None = None
    qr_alg: str = "ed25519"
    created_at: dt.datetime


class UserIn(Strict):
    role: str = Field(pattern=r"^(passenger|operator|regulator|admin)$")
    operator_id: str | None = Field(default=None, max_length=64)
    phone: str = Field(min_length=6, max_length=32)
    password: str = Field(min_length=8, max_length=256)
    name: str = Field(default="staff", min_length=1, max_length=100)


class UserOut(BaseModel):
    user_id: str
    role: str
    operator_id: str | None = None


class GateIn(Strict):
    operator_id: str = Field(min_length=1, max_length=64)
    stop_id: str | None = Field(default=None, max_length=200,
                                description="where the gate stands: it validates only there or at its parent station")
    roaming: bool = Field(default=False, description="a gate without a stop validates nowhere unless this is set")


class GateCreated(BaseModel):
    gate_id: str
    token: str
    operator_id: str
    stop_id: str | None = None
    roaming: bool = False


class GateOut(BaseModel):
    gate_id: str
    operator_id: str
    stop_id: str | None = None
    roaming: bool = False
    active: bool
    created_at: dt.datetime


def _signable(request: Request, qr_alg: str) -> None:
    """An operator may only choose an algorithm this deployment has an issuer key for (MAAS_ISSUER_KEYS)."""
    from maas.journeys import runtime

    algs = runtime(request.app).issuer.algorithms
    if qr_alg not in algs:
        raise BadRequest(f"no {qr_alg} issuer key is configured (MAAS_ISSUER_KEYS)", code="qr_algorithm_unavailable",
                         details={"qr_alg": qr_alg, "available": list(algs)})


@router.post("/v1/admin/operators", status_code=status.HTTP_201_CREATED, response_model=OperatorOut,
             responses=error_responses(AlreadyExists, BadRequest, Forbidden))
def create_operator(body: OperatorIn, request: Request, session: SessionDep, admin: CurrentAdmin) -> OperatorOut:
    _signable(request, body.qr_alg)
    if accounts.find_operator(session, body.operator_id) is not None:
        raise AlreadyExists(f"operator {body.operator_id!r} already exists", code="operator_exists")
    op = accounts.ensure_operator(session, operator_id=body.operator_id, name=body.name, kind=body.kind, actor=admin)
    op.qr_alg = body.qr_alg
    session.add(op)
    return OperatorOut.model_validate(op, from_attributes=True)


@router.post("/v1/admin/users", status_code=status.HTTP_201_CREATED, response_model=UserOut,
             responses=error_responses(AlreadyExists, BadRequest, Forbidden, NotFound))
def create_user(body: UserIn, session: SessionDep, admin: CurrentAdmin) -> UserOut:
    user = accounts.create_user(session, phone=body.phone, password=body.password, name=body.name,
                                role=body.role, operator_id=body.operator_id, actor=admin)
    return UserOut(user_id=user.user_id, role=user.role, operator_id=user.operator_id)


class UserStatusOut(BaseModel):
    user_id: str
    role: str
    operator_id: str | None = None
    disabled: bool


def _set_disabled(session: SessionDep, settings: SettingsDep, redis: RedisDep, admin: CurrentAdmin, user_id: str,
                  disabled: bool) -> UserStatusOut:
    user = accounts.set_disabled(session, settings, user_id=user_id, disabled=disabled, markers=redis, actor=admin)
    return UserStatusOut(user_id=user.user_id, role=user.role, operator_id=user.operator_id, disabled=user.disabled)


@router.post("/v1/admin/users/{user_id}/disable", response_model=UserStatusOut,
             responses=error_responses(Forbidden, NotFound))
def disable_user(user_id: str, session: SessionDep, settings: SettingsDep, redis: RedisDep,
                 admin: CurrentAdmin) -> UserStatusOut:
    """Disable an account: it cannot log in, and its refresh and access tokens stop working at once."""
    return _set_disabled(session, settings, redis, admin, user_id, True)


@router.post("/v1/admin/users/{user_id}/enable", response_model=UserStatusOut,
             responses=error_responses(Forbidden, NotFound))
def enable_user(user_id: str, session: SessionDep, settings: SettingsDep, redis: RedisDep,
                admin: CurrentAdmin) -> UserStatusOut:
    """Enable a disabled account again; it logs in anew (its old tokens stay revoked)."""
    return _set_disabled(session, settings, redis, admin, user_id, False)


@router.post("/v1/admin/gates", status_code=status.HTTP_201_CREATED, response_model=GateCreated,
             responses=error_responses(BadRequest, Forbidden, NotFound))
def create_gate(body: GateIn, session: SessionDep, admin: CurrentAdmin) -> GateCreated:
    gate, token = accounts.create_gate(session, operator_id=body.operator_id, stop_id=body.stop_id,
                                       roaming=body.roaming, actor=admin)
    return GateCreated(gate_id=gate.gate_id, token=token, operator_id=gate.operator_id, stop_id=gate.stop_id,
                       roaming=gate.roaming)


class GateRoamingIn(Strict):
    roaming: bool


@router.patch("/v1/operators/{operator_id}/gates/{gate_id}", response_model=GateOut, tags=["operators"],
              responses=error_responses(BadRequest, Forbidden, NotFound))
def set_gate_roaming(operator_id: OperatorScope, gate_id: str, body: GateRoamingIn, session: SessionDep,
                     principal: OperatorStaffOrAdmin) -> GateOut:
    """Let a stop-less gate validate at any stop of its operator (or stop that): the operator's staff or an admin."""
    gate = accounts.set_gate_roaming(session, operator_id=operator_id, gate_id=gate_id, roaming=body.roaming,
                                     actor=principal)
    return GateOut.model_validate(gate, from_attributes=True)


@router.get("/v1/operators/{operator_id}", response_model=OperatorOut, tags=["operators"],
            responses=error_responses(Forbidden, NotFound))
def get_operator(operator_id: OperatorScope, session: SessionDep) -> OperatorOut:
    return OperatorOut.model_validate(accounts.get_operator(session, operator_id), from_attributes=True)


class OperatorSettingsIn(Strict):
    qr_alg: Literal["ed25519", "sm2"] = Field(description="issuer algorithm of the QR codes of tickets with a leg "
                                              "of this operator, from the next code on (docs/qr-format.md)")


@router.patch("/v1/operators/{operator_id}", response_model=OperatorOut, tags=["operators"],
              responses=error_responses(BadRequest, Forbidden, NotFound))
def update_operator(operator_id: OperatorScope, body: OperatorSettingsIn, request: Request, session: SessionDep,
                    principal: OperatorStaffOrAdmin) -> OperatorOut:
    """The operator's QR issuer algorithm (``ed25519`` or ``sm2``): the operator's staff or an admin; audited.

    Codes and credentials already issued stay valid (gates verify both algorithms by ``kid``). An algorithm
    without an issuer key in this deployment is refused (``400 qr_algorithm_unavailable``).
    """
    _signable(request, body.qr_alg)
    op = accounts.get_operator(session, operator_id)
    before = op.qr_alg
    op.qr_alg = body.qr_alg
    session.add(op)
    session.flush()
    audit.record(session, action="operator.qr_alg", actor_id=principal.subject, actor_role=principal.role,
                 target=operator_id, operator_id=operator_id, details={"from": before, "to": body.qr_alg})
    return OperatorOut.model_validate(op, from_attributes=True)


@router.get("/v1/operators/{operator_id}/gates", response_model=list[GateOut], tags=["operators"],
            responses=error_responses(Forbidden, NotFound))
def list_gates(operator_id: OperatorScope, session: SessionDep) -> list[GateOut]:
    accounts.get_operator(session, operator_id)
    gates = session.exec(select(GateDevice).where(GateDevice.operator_id == operator_id)
                         .order_by(GateDevice.created_at)).all()
    return [GateOut.model_validate(g, from_attributes=True) for g in gates]


@router.get("/v1/admin/operators", response_model=list[OperatorOut], responses=error_responses(Forbidden))
def list_operators(session: SessionDep, admin: CurrentAdmin) -> list[OperatorOut]:
    ops = session.exec(select(Operator).order_by(Operator.operator_id)).all()
    return [OperatorOut.model_validate(o, from_attributes=True) for o in ops]
