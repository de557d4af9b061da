"""Face credentials as a service: consented enrolment, deletion, retention, 1:1 gate verification.

- `enrol_face`: the owner of a traveller's order gives a separate consent and
  one photo; only the embedding is kept, sealed with AES-GCM (associated data
  = the traveller id), with a consent record (what, purpose, retention, when).
- `delete_face`: deletes the template and marks the consent withdrawn.
- `expire_templates`: deletes templates whose retention window (N days after
  the traveller's last leg ends) has passed; idempotent.
- `reseal_templates`: moves templates to the current encryption key (rotation).
- `validate_face`: a gate presents a live capture (or a trusted gate's own
  embedding) and a ticket id; it is compared 1:1 with that ticket's
  traveller's template only — never searched across passengers — and, on a
  match, the leg is admitted by the same once-only rule as a QR scan
  (`ticketing.gates`).

No function here logs, returns or raises with a template, an embedding or an
image; errors carry ids and codes only.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, select

from ticketing import gates
from ticketing.credentials.face import (
    EMBEDDING_DIM,
    FaceEncoder,
    FaceImageError,
    Verification,
    decode_base64_image,
    open_template,
    reseal_template,
    seal_template,
    verify,
)
from ticketing.crypto import Keyring
from ticketing.errors import Conflict, NotFound, TicketingError
from ticketing.ledger import Ledger
from ticketing.models import Order, OrderStatus, Ticket, TicketLeg, Traveler
from ticketing.models_face import CONSENT_PURPOSE, CONSENT_WHAT, FaceConsent, FaceTemplate, FaceVerification

__all__ = [
    "ConsentRequired",
    "EmbeddingNotTrusted",
    "FaceGateResult",
    "Liveness",
    "TravelerNotActive",
    "TravelerNotFound",
    "delete_face",
    "enrol_face",
    "expire_templates",
    "get_owned_traveler",
    "reseal_templates",
    "retention_anchor",
    "retention_policy_text",
    "validate_face",
]

#: Gate reasons added by face verification (besides `ticketing.gates.REASONS` and the image codes
#: of `ticketing.credentials.face`: ``no_face``, ``multiple_faces``, ``not_an_image``, ...).
FACE_REASONS = ("no_face_template", "face_mismatch", "liveness_required", "liveness_failed", "model_mismatch")

_ACTIVE_ORDERS = (OrderStatus.pending_payment.value, OrderStatus.paid.value, OrderStatus.ticketed.value,
                  OrderStatus.partially_refunded.value)


class TravelerNotFound(NotFound):
    code = "traveler_not_found"


class ConsentRequired(TicketingError):
    """Biometric data is processed only with a separate, explicit consent (PIPL Art. 29)."""

    code = "consent_required"
    status = 422


class TravelerNotActive(Conflict):
    code = "traveler_not_active"


class EmbeddingNotTrusted(TicketingError):
    """This gate is not allowed to send its own embeddings (only images)."""

    code = "embedding_not_trusted"
    status = 403


@dataclass(frozen=True)
class Liveness:
    """A gate's own liveness verdict on the capture (the backend cannot judge one still image)."""

    passed: bool
    score: float | None = None
    vendor: str | None = None


@dataclass(frozen=True)
class FaceGateResult:
    decision: gates.Decision
    validation_id: str
    verification: Verification | None


def retention_policy_text(days: int) -> str:
    return f"deleted {days} days after the end of the traveller's last journey leg, or on request"


def get_owned_traveler(session: Session, traveler_id: str, *, user_id: str) -> tuple[Traveler, Order]:
    """The traveller and its order when ``user_id`` owns the order; `TravelerNotFound` otherwise (no leak)."""
    traveler = session.get(Traveler, traveler_id)
    order = session.get(Order, traveler.order_id) if traveler is not None else None
    if traveler is None or order is None or order.user_id != user_id:
        raise TravelerNotFound("no such traveller", details={"traveler_id": traveler_id})
    return traveler, order


def _withdraw(session: Session, traveler_id: str, *, reason: str, now: dt.datetime) -> list[FaceConsent]:
    rows = list(session.exec(select(FaceConsent).where(FaceConsent.traveler_id == traveler_id,
                                                       FaceConsent.withdrawn_at.is_(None))))  # type: ignore[union-attr]
    for row in rows:
        row.withdrawn_at = now
        row.withdrawn_reason = reason
        session.add(row)
    return rows


def enrol_face(session: Session, *, traveler_id: str, user_id: str, consent: bool, image_b64: str,
               encoder: FaceEncoder, keyring: Keyring, retention_days: int, max_image_bytes: int,
               now: dt.datetime) -> tuple[FaceTemplate, FaceConsent]:
    """Enrols (or re-enrols) a traveller's face; returns the stored template row and its consent.

    Order of checks: ownership (`TravelerNotFound`), consent (`ConsentRequired`,
    before the image is even decoded), order state (`TravelerNotActive`), then
    the image (`FaceImageError` subclasses: ``invalid_base64``,
    ``image_too_large``, ``not_an_image``, ``no_face``, ``multiple_faces``).
    A re-enrolment replaces the template and supersedes the previous consent.
    """
    traveler, order = get_owned_traveler(session, traveler_id, user_id=user_id)
    if consent is not True:
        raise ConsentRequired("enrolling a face needs explicit consent (consent: true)",
                              details={"traveler_id": traveler_id, "purpose": CONSENT_PURPOSE})
    if order.status not in _ACTIVE_ORDERS:
        raise TravelerNotActive(f"the traveller's order is {order.status}",
                                details={"traveler_id": traveler_id, "order_status": order.status})
    embedding = encoder.encode(decode_base64_image(image_b64, max_bytes=max_image_bytes))
    sealed = seal_template(keyring, embedding, traveler_id=traveler.traveler_id)
    del embedding  # only the sealed form leaves this function

    _withdraw(session, traveler.traveler_id, reason="replaced", now=now)
    record = FaceConsent(traveler_id=traveler.traveler_id, user_id=user_id, what=CONSENT_WHAT,
                         purpose=CONSENT_PURPOSE, retention_policy=retention_policy_text(retention_days),
                         retention_days=retention_days, given_at=now)
    session.add(record)
    session.flush()
    template = session.get(FaceTemplate, traveler.traveler_id)
    if template is None:
        template = FaceTemplate(traveler_id=traveler.traveler_id, consent_id=record.consent_id,
                                template_enc=sealed, key_id=keyring.key_id_of(sealed),
                                model_version=encoder.model_version, enrolled_at=now)
    else:
        template.consent_id = record.consent_id
        template.template_enc = sealed
        template.key_id = keyring.key_id_of(sealed)
        template.model_version = encoder.model_version
        template.enrolled_at = now
    session.add(template)
    session.flush()
    return template, record


def delete_face(session: Session, *, traveler_id: str, user_id: str,
                now: dt.datetime) -> tuple[bool, FaceConsent | None]:
    """Deletes the traveller's template and withdraws its consent (idempotent).

    Returns ``(template_deleted, last_consent)``; ``last_consent`` is the most
    recent consent record (now withdrawn), or ``None`` if there never was one.
    """
    traveler, _order = get_owned_traveler(session, traveler_id, user_id=user_id)
    template = session.get(FaceTemplate, traveler.traveler_id)
    if template is not None:
        session.delete(template)
        session.flush()
    _withdraw(session, traveler.traveler_id, reason="user_request", now=now)
    session.flush()
    last = session.exec(select(FaceConsent).where(FaceConsent.traveler_id == traveler.traveler_id)
                        .order_by(FaceConsent.given_at.desc())).first()  # type: ignore[attr-defined]
    return template is not None, last


def retention_anchor(session: Session, traveler_id: str) -> dt.datetime | None:
    """End of the traveller's last leg (``valid_until``), or ``None`` when no ticket was issued."""
    return _aware(session.exec(select(sa.func.max(TicketLeg.valid_until))
                               .join(Ticket, Ticket.ticket_id == TicketLeg.ticket_id)
                               .where(Ticket.traveler_id == traveler_id)).first())


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # Aggregates bypass the ORM's load hook: SQLite returns naive UTC.
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands max() of a DATETIME back as text
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def expire_templates(session: Session, *, retention_days: int, now: dt.datetime) -> list[str]:
    """Deletes every template past its retention window; returns the traveller ids (idempotent).

    The window ends ``min(consent.retention_days, retention_days)`` days after
    the traveller's last leg ends (a shortened policy applies to existing
    templates, a longer one never extends what was agreed). Without an issued
    ticket (an abandoned order) it runs from the enrolment instead.
    """
    last_leg = (select(Ticket.traveler_id.label("traveler_id"),
                       sa.func.max(TicketLeg.valid_until).label("last_until"))
                .join(TicketLeg, TicketLeg.ticket_id == Ticket.ticket_id)
                .group_by(Ticket.traveler_id).subquery())
    rows = session.execute(
        select(FaceTemplate.traveler_id, FaceTemplate.enrolled_at, FaceConsent.retention_days, last_leg.c.last_until)
        .join(FaceConsent, FaceConsent.consent_id == FaceTemplate.consent_id)
        .outerjoin(last_leg, last_leg.c.traveler_id == FaceTemplate.traveler_id)
        # only templates whose journey is over can be due: active travellers are not even read
        .where(sa.func.coalesce(last_leg.c.last_until, FaceTemplate.enrolled_at) <= now)).all()
    expired = []
    for traveler_id, enrolled_at, agreed_days, last_until in rows:
        anchor = _aware(last_until) or _aware(enrolled_at)
        assert anchor is not None
        if anchor + dt.timedelta(days=min(agreed_days, retention_days)) <= now:
            expired.append(traveler_id)
    for traveler_id in expired:
        template = session.get(FaceTemplate, traveler_id)
        if template is not None:
            session.delete(template)
    session.flush()
    for traveler_id in expired:
        _withdraw(session, traveler_id, reason="retention_expired", now=now)
    session.flush()
    return expired


def reseal_templates(session: Session, *, keyring: Keyring, batch: int = 500) -> int:
    """Moves every template not under the keyring's current key to it; returns how many (idempotent).

    Once this has run, the old key ids can be dropped from ``MAAS_PII_KEYS``
    as far as face templates are concerned.
    """
    moved = 0
    while True:
        rows = list(session.exec(select(FaceTemplate).where(FaceTemplate.key_id != keyring.current)
                                 .order_by(FaceTemplate.traveler_id).limit(batch)))
        if not rows:
            return moved
        for row in rows:
            row.template_enc = reseal_template(keyring, row.template_enc, traveler_id=row.traveler_id)
            row.key_id = keyring.key_id_of(row.template_enc)
            session.add(row)
        session.flush()
        moved += len(rows)


def _probe_embedding(values: Sequence[float]) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    if vector.shape != (EMBEDDING_DIM,) or not np.all(np.isfinite(vector)):
        raise FaceImageError(f"face_embedding must be {EMBEDDING_DIM} finite numbers", code="invalid_embedding")
    return vector


def validate_face(session: Session, gate: gates.GateContext, *, ticket_id: str, face_image: str | None = None,
                  face_embedding: Sequence[float] | None = None, liveness: Liveness | None = None,
                  encoder: FaceEncoder, keyring: Keyring, threshold: float, require_liveness: bool,
                  max_image_bytes: int, ledger: Ledger, now: dt.datetime) -> FaceGateResult:
    """A face gate: 1:1 against ``ticket_id``'s traveller, then the once-only leg admission.

    Exactly one of ``face_image`` (base64 JPEG/PNG from the gate camera) and
    ``face_embedding`` (128 floats computed by a trusted gate with the same
    model) is given. Rejections are decisions, not errors, and every attempt
    is recorded (`GateValidation` with ``method="face"`` plus its
    `FaceVerification`): ``unknown_ticket`` (also for a ticket without a leg of the gate's
    operator: decided before anything else, answered exactly as a missing ticket), ``no_face_template``,
    ``liveness_failed`` (the gate said spoof), ``liveness_required`` (policy
    and no verdict), an image code (``no_face``, ``multiple_faces``,
    ``not_an_image``, ``image_too_large``, ``invalid_base64``),
    ``face_mismatch``, then the leg reasons of `ticketing.gates`.
    """
    if (face_image is None) == (face_embedding is None):
        raise ValueError("give exactly one of face_image and face_embedding")
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise ValueError("threshold must be a positive number")
    probe_kind = "image" if face_image is not None else "embedding"
    ticket = session.get(Ticket, ticket_id)
    if ticket is not None and not gates.in_operator_scope(session, ticket.ticket_id, gate.operator_id):
        # Operator scope first: another operator's gate learns nothing (no match result, no enrolment,
        # not even that the ticket exists) and no biometric work is done for it.
        ticket = None
    template = session.get(FaceTemplate, ticket.traveler_id) if ticket is not None else None
    verification: Verification | None = None

    def reject(reason: str) -> gates.Decision:
        return gates.Decision("rejected", reason, ticket.ticket_id if ticket is not None else None)

    if ticket is None:
        decision = gates.Decision("rejected", "unknown_ticket", None)
    elif template is None:
        decision = reject("no_face_template")
    elif liveness is not None and not liveness.passed:
        decision = reject("liveness_failed")
    elif require_liveness and liveness is None:
        decision = reject("liveness_required")
    elif template.model_version != encoder.model_version:
        decision = reject("model_mismatch")  # templates of another model must be re-enrolled
    else:
        try:
            probe = (encoder.encode(decode_base64_image(face_image, max_bytes=max_image_bytes))
                     if face_image is not None else _probe_embedding(face_embedding or ()))
        except FaceImageError as exc:
            decision = reject(exc.code)
        else:
            enrolled = open_template(keyring, template.template_enc, traveler_id=template.traveler_id)
            verification = verify(encoder, enrolled, probe, threshold=threshold)
            del enrolled, probe
            decision = (gates._decide(session, [ticket], gate, at=now, ledger=ledger, offline=False)
                        if verification.match else reject("face_mismatch"))
    row = gates._record(session, gate, decision, method="face", at=now, now=now)
    session.flush()
    session.add(FaceVerification(
        validation_id=row.validation_id, ticket_id=ticket.ticket_id if ticket is not None else None,
        traveler_id=ticket.traveler_id if ticket is not None else None, probe=probe_kind,
        distance=round(verification.distance, 6) if verification else None, threshold=float(threshold),
        model_version=encoder.model_version, match=verification.match if verification else None,
        liveness_required=require_liveness, liveness_passed=liveness.passed if liveness else None,
        liveness_score=liveness.score if liveness else None, liveness_vendor=liveness.vendor if liveness else None,
        verified_at=now))
    session.flush()
    return FaceGateResult(decision=decision, validation_id=row.validation_id, verification=verification)
