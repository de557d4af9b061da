"""GET /v1/gates/keys, POST /v1/gates/validate, POST /v1/gates/taps (gate devices of one operator)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import AwareDatetime, Field, model_validator

from maas import audit
from maas.api.deps import SessionDep, SettingsDep, WrongRole, _bearer, get_principal
from maas.api.offers import Strict
from maas.errors import Forbidden, InvalidToken, Unauthorized, error_responses
from maas.faces import face_encoder, face_policy
from maas.journeys import now, runtime
from maas.models import GateDevice as GateDeviceRow
from maas.models import Role
from maas.security import GATE_TOKEN_PREFIX, Principal, token_digest
from maas.ratelimit import rate_limit
from ticketing import faces, gates
from ticketing.credentials.face import EMBEDDING_DIM
from ticketing.errors import GateMismatch

router = APIRouter(prefix="/v1/gates", tags=["gates"], dependencies=[rate_limit("gates")])


class LivenessIn(Strict):
    """The gate's own presentation-attack verdict on the capture (recorded; required by policy if configured)."""

    passed: bool
    score: float | None = Field(default=None, allow_inf_nan=False)
    vendor: str | None = Field(default=None, max_length=64)


class ValidateIn(Strict):
    gate_id: str = Field(min_length=1, max_length=40)
    stop_id: str = Field(min_length=1, max_length=200)
    payload: str | None = Field(default=None, max_length=1024, description="QR payload (either kind)")
    id_number: str | None = Field(default=None, max_length=40, description="ID document number (一证通行)")
    id_type: str = Field(default="cn_resident_id", max_length=32)
    face_image: str | None = Field(default=None, min_length=1, max_length=7_200_000,
                                   description="base64 JPEG/PNG capture, compared 1:1 with ticket_id's traveller")
    face_embedding: list[float] | None = Field(
        default=None, min_length=EMBEDDING_DIM, max_length=EMBEDDING_DIM,
        description="the capture's 128-d embedding computed by a trusted gate with the same model")
    ticket_id: str | None = Field(default=None, min_length=1, max_length=40,
                                  description="the ticket whose traveller the face must match (with a face)")
    liveness: LivenessIn | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> ValidateIn:
        face = self.face_image is not None or self.face_embedding is not None
        if sum((self.payload is not None, self.id_number is not None, face)) != 1:
            raise ValueError("give exactly one of payload, id_number and face_image/face_embedding")
        if self.face_image is not None and self.face_embedding is not None:
            raise ValueError("give face_image or face_embedding, not both")
        if face and self.ticket_id is None:
            raise ValueError("a face needs the ticket_id to verify against (1:1)")
        if not face and (self.ticket_id is not None or self.liveness is not None):
            raise ValueError("ticket_id and liveness go with a face only")
        if self.face_embedding is not None and not all(math.isfinite(v) for v in self.face_embedding):
            raise ValueError("face_embedding must hold finite numbers")
        return self


class TapIn(Strict):
    tap_id: str = Field(min_length=1, max_length=100, description="unique per gate; a re-upload is ignored")
    payload: str = Field(min_length=1, max_length=1024)
    scanned_at: AwareDatetime


class TapsIn(Strict):
    gate_id: str = Field(min_length=1, max_length=40)
    stop_id: str = Field(min_length=1, max_length=200)
    taps: list[TapIn] = Field(min_length=1, max_length=5000)


class StopMismatch(Forbidden):
    code = "stop_mismatch"


class GateStopRequired(Forbidden):
    code = "gate_stop_required"


def _parent_station(request: Request, stop_id: str) -> str | None:
    snap = request.app.state.planner.snapshot
    if snap is None:
        return None
    tt = snap.timetable
    s = tt.find_stop(stop_id)
    parent = int(tt.stop_parent[s]) if s is not None else -1
    return str(tt.stop_ids[parent]) if parent >= 0 else None


@dataclass(frozen=True)
class GateAuth:
    """The authenticated gate device: its principal and where it may validate (read with the token)."""

    principal: Principal
    stop_id: str | None
    roaming: bool


_G = GateDeviceRow.__table__.c  # type: ignore[attr-defined]
_DEVICE_BY_TOKEN = (sa.select(_G.gate_id, _G.operator_id, _G.stop_id, _G.roaming, _G.active)
                    .where(_G.token_hash == sa.bindparam("token_hash")))


def gate_device(request: Request, session: SessionDep, settings: SettingsDep,
                credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> GateAuth:
    """A gate's bearer token: one Core statement reads the device (active, stop, roaming) for the whole request.

    Read on every request, not cached: a device deactivated in the database is refused by the next scan, on
    every worker. Other tokens get what `require_roles("gate")` answers (401 if invalid, 403 ``wrong_role``).
    """
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("an Authorization: Bearer token is required", code="missing_token")
    token = credentials.credentials
    if not token.startswith(GATE_TOKEN_PREFIX):
        principal = get_principal(session, settings, request, credentials)
        raise WrongRole("this needs one of the roles: gate", details={"required": ["gate"], "role": principal.role})
    row = session.connection().execute(_DEVICE_BY_TOKEN, {"token_hash": token_digest(token)}).first()
    if row is None or not row.active:
        raise InvalidToken("the gate token is not valid")
    return GateAuth(Principal(subject=row.gate_id, role=Role.gate.value, operator_id=row.operator_id,
                              gate_id=row.gate_id), row.stop_id, bool(row.roaming))


GateDevice = Annotated[GateAuth, Depends(gate_device)]


def _gate(request: Request, auth: GateAuth, gate_id: str, stop_id: str) -> gates.GateContext:
    """The authenticated gate at the stop it names: where it is registered (or that stop's parent station);
    a gate registered without a stop only if it is explicitly allowed to roam."""
    if auth.principal.gate_id != gate_id:
        raise GateMismatch("gate_id is not the authenticated gate", details={"gate_id": gate_id})
    if auth.stop_id is None:
        if not auth.roaming:
            raise GateStopRequired("this gate has no stop and is not allowed to roam: register it at a stop, "
                                   "or have the operator let it roam", details={"gate_id": gate_id})
    elif stop_id != auth.stop_id and stop_id != _parent_station(request, auth.stop_id):
        raise StopMismatch("this gate validates only at the stop where it is registered (or its station)",
                           details={"gate_id": gate_id, "stop_id": stop_id, "registered_stop_id": auth.stop_id})
    return gates.GateContext(gate_id=gate_id, operator_id=auth.principal.operator_id or "", stop_id=stop_id)


@router.get("/keys")
def keys(request: Request, session: SessionDep, settings: SettingsDep, principal: GateDevice) -> dict[str, Any]:
    """JWKS of the issuer keys (every kid that may have signed a live credential) plus revoked ids."""
    out = runtime(request.app).issuer.jwks()
    out.update(gates.revocations(session, now=now(request.app)))
    out["qr_ttl_s"] = settings.qr_ttl_s
    return out


@router.post("/validate", responses=error_responses(GateMismatch, StopMismatch, GateStopRequired,
                                                   faces.EmbeddingNotTrusted))
def validate(body: ValidateIn, request: Request, session: SessionDep, settings: SettingsDep,
             principal: GateDevice) -> dict[str, Any]:
    """`{result: "accepted"|"rejected", reason, ticket_id, leg_id}`; a leg is admitted once.

    Credentials: a QR ``payload``; an ``id_number`` (found by keyed hash); or a face
    (``face_image`` or a trusted gate's ``face_embedding``) with the ``ticket_id`` it must
    match 1:1 and the gate's optional ``liveness`` verdict. Face reasons: ``no_face_template``,
    ``face_mismatch``, ``liveness_failed``, ``liveness_required``, ``model_mismatch`` and the image
    codes (``no_face``, ``multiple_faces``, ``not_an_image``, ``image_too_large``, ``invalid_base64``).
    Operator scope is decided first: a face's ticket or an ID number without a leg of this gate's
    operator is answered ``unknown_ticket`` (no ticket id) exactly as one that does not exist.
    """
    gate = _gate(request, principal, body.gate_id, body.stop_id)
    rt = runtime(request.app)
    if body.payload is not None:
        d = gates.validate_qr(session, gate, payload=body.payload, keys=rt.issuer.public, ledger=rt.ledger,
                              now=now(request.app), ttl_s=settings.qr_ttl_s)
    elif body.id_number is not None:
        d = gates.validate_id_number(session, gate, id_number=body.id_number, id_type=body.id_type,
                                     keyring=rt.keyring, ledger=rt.ledger, now=now(request.app))
        audit.record(session, action="id_number.verify", actor_id=gate.gate_id, actor_role="gate",
                     target=d.ticket_id, operator_id=gate.operator_id,
                     details={"result": d.result, "reason": d.reason, "leg_id": d.leg_id})
    else:
        policy = face_policy(settings)
        if body.face_embedding is not None and not policy.gate_may_send_embeddings(gate.gate_id):
            raise faces.EmbeddingNotTrusted("this gate may send face images only",
                                            details={"gate_id": gate.gate_id})
        liveness = (faces.Liveness(passed=body.liveness.passed, score=body.liveness.score,
                                   vendor=body.liveness.vendor) if body.liveness is not None else None)
        out = faces.validate_face(
            session, gate, ticket_id=body.ticket_id or "", face_image=body.face_image,
            face_embedding=body.face_embedding, liveness=liveness, encoder=face_encoder(request.app),
            keyring=rt.keyring, threshold=policy.threshold, require_liveness=policy.require_liveness,
            max_image_bytes=policy.max_image_bytes, ledger=rt.ledger, now=now(request.app))
        d = out.decision
        v = out.verification
        audit.record(session, action="face.verify", actor_id=gate.gate_id, actor_role="gate",
                     target=body.ticket_id, operator_id=gate.operator_id,
                     details={"validation_id": out.validation_id, "result": d.result, "reason": d.reason,
                              "leg_id": d.leg_id, "match": v.match if v else None,
                              "threshold": policy.threshold, "liveness_passed": liveness.passed if liveness else None})
    return d.to_dict()


@router.post("/taps", responses=error_responses(GateMismatch, StopMismatch, GateStopRequired))
def taps(body: TapsIn, request: Request, session: SessionDep, settings: SettingsDep,
         principal: GateDevice) -> dict[str, Any]:
    """Offline validations in a batch: `{results: [...], accepted, flagged, rejected, duplicates}`."""
    gate = _gate(request, principal, body.gate_id, body.stop_id)
    rt = runtime(request.app)
    results = gates.upload_taps(session, gate, [gates.Tap(t.tap_id, t.payload, t.scanned_at) for t in body.taps],
                                keys=rt.issuer.public, ledger=rt.ledger, now=now(request.app),
                                ttl_s=settings.qr_ttl_s)
    out = [{"tap_id": t.tap_id, **d.to_dict()} for t, d in zip(body.taps, results)]
    counts = {k: sum(1 for d in results if d.result == v) for k, v in
              (("accepted", "accepted"), ("flagged", "flagged"), ("rejected", "rejected"),
               ("duplicates", "duplicate_upload"))}
    return {"results": out, **counts}
