"""POST /v1/travelers/{traveler_id}/face (consented enrolment), DELETE /v1/travelers/{traveler_id}/face.

Only the passenger who owns the traveller's order may enrol or delete. The
response describes the consent and the retention, never the template.
Handlers are plain ``def``: encoding a face is CPU work (thread pool).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import Field

from maas import audit
from maas.api.deps import CurrentPassenger, SessionDep, SettingsDep
from maas.api.offers import Strict
from maas.errors import error_responses
from maas.faces import face_encoder, face_policy
from maas.journeys import now, runtime
from ticketing import faces
from ticketing.credentials.face import (
    ImageTooLarge,
    InvalidBase64,
    MultipleFaces,
    NoFace,
    NotAnImage,
)
from ticketing.models_face import FaceConsent

router = APIRouter(tags=["faces"])


class FaceEnrolIn(Strict):
    consent: bool = Field(default=False, description="explicit, separate consent to process the face (must be true)")
    image: str = Field(min_length=1, max_length=7_200_000, description="base64 JPEG or PNG with exactly one face")


def _consent_view(c: FaceConsent | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"consent_id": c.consent_id, "what": c.what, "purpose": c.purpose, "retention": c.retention_policy,
            "retention_days": c.retention_days, "given_at": c.given_at.isoformat(),
            "withdrawn_at": c.withdrawn_at.isoformat() if c.withdrawn_at else None,
            "withdrawn_reason": c.withdrawn_reason}


@router.post("/v1/travelers/{traveler_id}/face", status_code=status.HTTP_201_CREATED,
             responses=error_responses(faces.TravelerNotFound, faces.ConsentRequired, faces.TravelerNotActive,
                                       InvalidBase64, ImageTooLarge, NotAnImage, NoFace, MultipleFaces))
def enrol_face(traveler_id: str, body: FaceEnrolIn, request: Request, session: SessionDep, settings: SettingsDep,
               principal: CurrentPassenger) -> dict[str, Any]:
    """Enrols (or replaces) the traveller's face template: `{traveler_id, enrolled_at, model_version, consent,
    delete_after}`. The photo is not stored; the template is never returned."""
    policy = face_policy(settings)
    at = now(request.app)
    template, consent = faces.enrol_face(
        session, traveler_id=traveler_id, user_id=principal.subject, consent=body.consent, image_b64=body.image,
        encoder=face_encoder(request.app), keyring=runtime(request.app).keyring,
        retention_days=policy.retention_days, max_image_bytes=policy.max_image_bytes, now=at)
    audit.record(session, action="face.enrol", actor_id=principal.subject, actor_role=principal.role,
                 target=traveler_id, details={"consent_id": consent.consent_id, "purpose": consent.purpose,
                                              "retention_days": consent.retention_days,
                                              "model_version": template.model_version, "key_id": template.key_id})
    anchor = faces.retention_anchor(session, traveler_id)
    delete_after = (anchor or template.enrolled_at) + dt.timedelta(days=consent.retention_days)
    return {"traveler_id": traveler_id, "enrolled_at": template.enrolled_at.isoformat(),
            "model_version": template.model_version, "consent": _consent_view(consent),
            "delete_after": delete_after.isoformat()}


@router.delete("/v1/travelers/{traveler_id}/face", responses=error_responses(faces.TravelerNotFound))
def delete_face(traveler_id: str, request: Request, session: SessionDep,
                principal: CurrentPassenger) -> dict[str, Any]:
    """Deletes the template and withdraws the consent: `{traveler_id, template_deleted, consent}` (idempotent)."""
    deleted, consent = faces.delete_face(session, traveler_id=traveler_id, user_id=principal.subject,
                                         now=now(request.app))
    audit.record(session, action="face.delete", actor_id=principal.subject, actor_role=principal.role,
                 target=traveler_id, details={"template_deleted": deleted,
                                              "consent_id": consent.consent_id if consent else None})
    return {"traveler_id": traveler_id, "template_deleted": deleted, "consent": _consent_view(consent)}
