"""Face credential tables: consent records, encrypted templates, gate verification outcomes.

A face template is sensitive personal information (PIPL Art. 28): it is kept
only with a recorded, separate consent, only as an AES-GCM ciphertext bound to
its traveller (`ticketing.credentials.face.seal_template`), and deleted on
request or after the retention window. The photo itself is never stored.
Times are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ticketing.models import new_id, utcnow

#: What a face consent covers, as stored on the record and shown to the passenger.
CONSENT_WHAT = "face_template"
CONSENT_PURPOSE = "gate_verification"


class FaceConsent(SQLModel, table=True):
    """One consent given for one traveller's face template, kept after withdrawal as evidence.

    ``withdrawn_at`` is set when the template is deleted on request
    (``withdrawn_reason="user_request"``), by the retention job
    (``"retention_expired"``) or replaced by a new enrolment (``"replaced"``).
    """

    __tablename__ = "face_consents"

    consent_id: str = Field(default_factory=lambda: new_id("fcn"), primary_key=True, max_length=40)
    traveler_id: str = Field(foreign_key="ticket_travelers.traveler_id", max_length=40, index=True)
    user_id: str = Field(max_length=40, index=True)
    what: str = Field(default=CONSENT_WHAT, max_length=40)
    purpose: str = Field(default=CONSENT_PURPOSE, max_length=40)
    #: Human-readable retention policy agreed to, e.g. "deleted 30 days after the last journey leg".
    retention_policy: str = Field(max_length=200)
    retention_days: int
    given_at: dt.datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    withdrawn_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    withdrawn_reason: str | None = Field(default=None, max_length=24)


class FaceTemplate(SQLModel, table=True):
    """The enrolled template of a traveller: ciphertext only (``<key_id>:<base64url>``), one per traveller."""

    __tablename__ = "face_templates"

    traveler_id: str = Field(foreign_key="ticket_travelers.traveler_id", primary_key=True, max_length=40)
    consent_id: str = Field(foreign_key="face_consents.consent_id", max_length=40)
    #: AES-256-GCM of the 128 float32 values, associated data = the traveller id.
    template_enc: str = Field(max_length=1000)
    #: Key id of ``template_enc`` (also inside the token), for the key-rotation job's queries.
    key_id: str = Field(max_length=32, index=True)
    model_version: str = Field(max_length=64)
    enrolled_at: dt.datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class FaceVerification(SQLModel, table=True):
    """The face part of one gate decision: scores and policy, never the image or the embedding.

    ``distance`` and ``match`` are null when no comparison ran (no template,
    liveness refused, unusable probe image).
    """

    __tablename__ = "face_verifications"

    validation_id: str = Field(foreign_key="ticket_validations.validation_id", primary_key=True, max_length=40)
    ticket_id: str | None = Field(default=None, max_length=40, index=True)
    traveler_id: str | None = Field(default=None, max_length=40, index=True)
    probe: str = Field(max_length=16)  # image | embedding
    distance: float | None = None
    threshold: float
    model_version: str = Field(max_length=64)
    match: bool | None = None
    liveness_required: bool = False
    liveness_passed: bool | None = None
    liveness_score: float | None = None
    liveness_vendor: str | None = Field(default=None, max_length=64)
    verified_at: dt.datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
