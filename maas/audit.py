"""The keyed, hash-chained audit log with signed checkpoints of its head.

Each privileged action appends one row whose ``hash`` is an HMAC-SHA256 of
its content and the previous row's hash, under a key derived from
``MAAS_AUDIT_KEY``, which the database never holds: editing or deleting a row
breaks the chain from there on, and someone with only database access cannot
re-hash the rest. Rows are appended inside the caller's transaction: the
action and its audit record commit together.

Deleting the newest rows or emptying the table leaves a shorter chain that
is still internally consistent, so after every commit that appended rows the
head (sequence number and hash) is published as a **checkpoint** signed with
an Ed25519 key derived from the same secret, outside the database: a line in
``<data_dir>/audit-checkpoints.jsonl`` and an ``audit.checkpoint`` log event.
`verify_chain` checks every row against the chain and every checkpoint
against the rows: a checkpoint whose row is missing or different means
truncation or rewriting. A log with rows from before the chain was keyed
gets an ``audit.chain.keyed`` row (keyed, pinning the last unkeyed hash) on
its first append after the upgrade. PostgreSQL also refuses ``UPDATE``, ``DELETE`` and
``TRUNCATE`` on the table (triggers); SQLite refuses updates and deletes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from maas.db import settings_of, utcnow
from maas.models import AuditEntry
from maas.settings import Settings, SettingsError

GENESIS = "0" * 64
CHECKPOINT_FILE = "audit-checkpoints.jsonl"
_PENDING = "maas.audit.checkpoint"

log = structlog.get_logger("maas.audit")


@dataclass(frozen=True)
class AuditKeys:
    """The chain's HMAC key and the checkpoint signing key, both derived (HKDF) from ``MAAS_AUDIT_KEY``."""

    mac_key: bytes
    signer: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signer.public_key()

    @property
    def public_hex(self) -> str:
        return self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _derive(raw: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)


@lru_cache(maxsize=16)
def keys_from_secret(secret: str) -> AuditKeys:
    from maas.keys import KeyProblem, decode_key

    try:
        raw = decode_key(secret)
    except KeyProblem as exc:
        raise SettingsError(f"setting MAAS_AUDIT_KEY {exc}") from None
    return AuditKeys(mac_key=_derive(raw, b"maas audit chain hmac-sha256 v1"),
                     signer=Ed25519PrivateKey.from_private_bytes(_derive(raw, b"maas audit checkpoint ed25519 v1")))


def audit_keys(settings: Settings) -> AuditKeys:
    return keys_from_secret(settings.secret("audit_key"))


def checkpoint_path(settings: Settings) -> Path:
    return settings.data_dir / CHECKPOINT_FILE


def _canonical(entry: AuditEntry) -> bytes:
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=dt.UTC)
    body = {
        "seq": entry.seq, "at": at.astimezone(dt.UTC).isoformat(), "actor_id": entry.actor_id,
        "actor_role": entry.actor_role, "operator_id": entry.operator_id, "action": entry.action,
        "target": entry.target, "details": entry.details, "prev_hash": entry.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _digest(entry: AuditEntry, keys: AuditKeys) -> str:
    return hmac.new(keys.mac_key, _canonical(entry), hashlib.sha256).hexdigest()


def _legacy_digest(entry: AuditEntry) -> str:
    """The unkeyed SHA-256 of rows written before the chain was keyed (anyone can recompute it)."""
    return hashlib.sha256(_canonical(entry)).hexdigest()


#: The row that starts the keyed chain in a log that has unkeyed rows from before: it is keyed itself and
#: its ``prev_hash`` pins the last unkeyed row, so those cannot be rewritten either.
KEYED_MARKER = "audit.chain.keyed"


def _marker_seq(session: Session) -> int | None:
    return session.exec(select(AuditEntry.seq).where(AuditEntry.action == KEYED_MARKER)
                        .order_by(AuditEntry.seq).limit(1)).first()


def _append(session: Session, keys: AuditKeys, last: AuditEntry | None, **fields: Any) -> AuditEntry:
    entry = AuditEntry(seq=(last.seq + 1) if last else 1, at=utcnow(), prev_hash=last.hash if last else GENESIS,
                       hash="", **fields)
    entry.hash = _digest(entry, keys)
    session.add(entry)
    session.flush()
    return entry


def checkpoint_message(seq: int, hash_: str, at: str) -> bytes:
    """What a checkpoint's Ed25519 signature covers."""
    return f"maas-audit-checkpoint/v1:{seq}:{hash_}:{at}".encode()


def record(session: Session, *, action: str, actor_id: str | None, actor_role: str | None,
           target: str | None = None, operator_id: str | None = None,
           details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry. ``details`` must not hold personal data (mask it first)."""
    bind = session.get_bind()
    settings = settings_of(bind)
    keys = audit_keys(settings)
    if bind.dialect.name == "postgresql":
        # Serialise appenders so two transactions never chain to the same predecessor.
        session.execute(sa.text("SELECT pg_advisory_xact_lock(7242001)"))
    last = session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
    if last is not None and not hmac.compare_digest(_digest(last, keys), last.hash) \
            and _legacy_digest(last) == last.hash and _marker_seq(session) is None \
            and not read_checkpoints(settings).by_seq:
        # A log from before keying (never checkpointed here, no marker): start the keyed chain with a marker
        # that pins its unkeyed head. A log that was keyed and then re-hashed unkeyed gets no marker.
        last = _append(session, keys, last, actor_id=None, actor_role="system", operator_id=None,
                       action=KEYED_MARKER, target=None, details={"unkeyed_head_seq": last.seq})
    entry = _append(session, keys, last, actor_id=actor_id, actor_role=actor_role, operator_id=operator_id,
                    action=action, target=target, details=json.loads(json.dumps(details or {}, default=str)))
    session.info[_PENDING] = (entry.seq, entry.hash, settings)
    return entry


def publish_checkpoint(settings: Settings, seq: int, hash_: str) -> dict[str, Any]:
    """Signs ``(seq, hash)`` and publishes it: one line appended to the checkpoint file, one log event."""
    keys = audit_keys(settings)
    at = utcnow().isoformat()
    line = {"seq": seq, "hash": hash_, "at": at, "sig": keys.signer.sign(checkpoint_message(seq, hash_, at)).hex(),
            "key": keys.public_hex}
    path = checkpoint_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())
    finally:
        os.close(fd)
    log.info("audit.checkpoint", **line)
    return line


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    seq, hash_, settings = pending
    try:
        publish_checkpoint(settings, seq, hash_)
    except OSError as exc:  # the rows are committed; a missing checkpoint only weakens truncation detection
        log.error("audit.checkpoint_failed", seq=seq, error=type(exc).__name__)


@event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: OrmSession) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class Checkpoints:
    by_seq: dict[int, set[str]] = field(default_factory=dict)
    latest: dict[str, Any] | None = None
    rejected: int = 0


def read_checkpoints(settings: Settings) -> Checkpoints:
    """The checkpoints whose signature verifies under our key; lines that do not are counted, not believed."""
    path = checkpoint_path(settings)
    if not path.exists():
        return Checkpoints()
    public = audit_keys(settings).public_key
    by_seq: dict[int, set[str]] = {}
    latest: dict[str, Any] | None = None
    rejected = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for text in fh:
            if not text.strip():
                continue
            try:
                cp = json.loads(text)
                seq, hash_, at = int(cp["seq"]), str(cp["hash"]), str(cp["at"])
                public.verify(bytes.fromhex(cp["sig"]), checkpoint_message(seq, hash_, at))
            except (ValueError, KeyError, TypeError, InvalidSignature):
                rejected += 1
                continue
            by_seq.setdefault(seq, set()).add(hash_)
            if latest is None or seq > latest["seq"]:
                latest = {"seq": seq, "hash": hash_, "at": at}
    return Checkpoints(by_seq, latest, rejected)


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    reason: str | None = None
    keyed: bool = True
    unkeyed_before_seq: int | None = None
    head_seq: int = 0
    checkpoint: dict[str, Any] | None = None
    checkpoints_rejected: int = 0
    checkpoint_public_key: str | None = None


def verify_chain(session: Session, *, batch: int = 5000) -> ChainVerification:
    """Recompute every keyed hash in order and hold the rows against every signed checkpoint;
    name the first row that does not match (a missing row counts as not matching)."""
    settings = settings_of(session.get_bind())
    keys = audit_keys(settings)
    cps = read_checkpoints(settings)
    marker = _marker_seq(session)  # rows before it were written unkeyed, before the chain was keyed
    extra = {"checkpoint": cps.latest, "checkpoints_rejected": cps.rejected,
             "checkpoint_public_key": keys.public_hex, "unkeyed_before_seq": marker}
    prev = GENESIS
    count = 0
    expected_seq = 1
    last_seq = 0
    while True:
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            def broken(reason: str, seq: int = row.seq) -> ChainVerification:
                return ChainVerification(False, count, seq, reason, head_seq=last_seq, **extra)

            if row.seq != expected_seq:
                return broken(f"row {expected_seq} is missing", expected_seq)
            if row.prev_hash != prev:
                return broken("prev_hash does not match the previous row")
            if marker is not None and row.seq < marker:
                if _legacy_digest(row) != row.hash:
                    return broken("content does not match its (unkeyed) hash")
            elif not hmac.compare_digest(_digest(row, keys), row.hash):
                return broken("content does not match its keyed hash")
            if any(h != row.hash for h in cps.by_seq.get(row.seq, ())):
                return broken("the row differs from a signed checkpoint of the log (rewritten)")
            prev = row.hash
            count += 1
            expected_seq += 1
            last_seq = row.seq
    beyond = [s for s in cps.by_seq if s > last_seq]
    if beyond:
        return ChainVerification(False, count, last_seq + 1,
                                 f"the log ends at seq {last_seq} but a signed checkpoint vouches for seq "
                                 f"{max(beyond)} (truncated)", head_seq=last_seq, **extra)
    return ChainVerification(ok=True, entries=count, head_seq=last_seq, **extra)
