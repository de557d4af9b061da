"""Face credentials in the shell: the per-app encoder and policy, and the retention job.

`face_encoder(app)` is the app's `FaceEncoder` (dlib by default, models
loaded once per process on first use; tests may set ``app.state.face_encoder``).
`face_policy(settings)` resolves the deployment's threshold and liveness
policy. The job ``faces.retention`` deletes templates past their retention
window and writes one audit entry per deletion (no personal data);
``faces.reencrypt`` moves templates to the current ``MAAS_PII_KEYS`` key.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from maas import audit
from maas.jobs import job
from maas.settings import Settings
from ticketing.credentials.face import DEFAULT_THRESHOLD, DlibFaceEncoder, FaceEncoder
from ticketing.crypto import Keyring
from ticketing.faces import expire_templates, reseal_templates

_lock = threading.Lock()


@dataclass(frozen=True)
class FacePolicy:
    threshold: float
    require_liveness: bool
    retention_days: int
    max_image_bytes: int
    embedding_gates: frozenset[str] | None  # None: every gate

    def gate_may_send_embeddings(self, gate_id: str) -> bool:
        return self.embedding_gates is None or gate_id in self.embedding_gates


def face_policy(settings: Settings) -> FacePolicy:
    gates_setting = settings.face_embedding_gates.strip()
    return FacePolicy(
        threshold=settings.face_threshold if settings.face_threshold is not None else DEFAULT_THRESHOLD,
        require_liveness=settings.face_require_liveness,
        retention_days=settings.face_retention_days,
        max_image_bytes=settings.face_max_image_bytes,
        embedding_gates=None if gates_setting == "*" else
        frozenset(g.strip() for g in gates_setting.split(",") if g.strip()))


def face_encoder(app: Any) -> FaceEncoder:
    """The app's encoder (created on first use; the dlib weights are shared process-wide)."""
    encoder = getattr(app.state, "face_encoder", None)
    if encoder is None:
        with _lock:
            encoder = getattr(app.state, "face_encoder", None)
            if encoder is None:
                encoder = app.state.face_encoder = DlibFaceEncoder(
                    max_bytes=app.state.settings.face_max_image_bytes)
    return encoder


@job("faces.retention")
def face_retention(session: Session, settings: Settings, now: dt.datetime) -> str:
    """Deletes face templates past their retention window (idempotent)."""
    expired = expire_templates(session, retention_days=settings.face_retention_days, now=now)
    for traveler_id in expired:
        audit.record(session, action="face.template.expired", actor_id=None, actor_role="system",
                     target=traveler_id, details={"reason": "retention_expired",
                                                  "retention_days": settings.face_retention_days})
    return f"{len(expired)} face templates deleted after their retention window"


@job("faces.reencrypt")
def face_reencrypt(session: Session, settings: Settings, now: dt.datetime) -> str:
    """Re-seals face templates under the current personal-data key (idempotent; for key rotation)."""
    keyring = Keyring.from_settings(settings.secret("pii_keys"), settings.secret("blind_index_key"))
    moved = reseal_templates(session, keyring=keyring)
    if moved:
        audit.record(session, action="face.templates.reencrypted", actor_id=None, actor_role="system",
                     details={"templates": moved, "key_id": keyring.current})
    return f"{moved} face templates re-encrypted under key {keyring.current}"
