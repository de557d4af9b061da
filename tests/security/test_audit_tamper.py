"""Attacks on the audit log (issue 12, item 13) by someone with write access to the database, both backends.

Deleting the newest rows, emptying the table (TRUNCATE) and editing a row then
re-hashing the rest with the public algorithm must all make
`GET /v1/audit/log/verify` say ``ok: false``: the chain is keyed (HMAC with a
key the database does not hold) and the head is vouched for by Ed25519-signed
checkpoints kept outside the database (a file in the data dir and the log).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

import pytest
import sqlalchemy as sa

from maas import audit
from maas.db import session_scope


def _append(engine, n: int, start: int = 0) -> None:  # noqa: ANN001
    for i in range(start, start + n):  # one transaction each, as requests do
        with session_scope(engine) as s:
            audit.record(s, action="test.action", actor_id="usr_a", actor_role="admin", target=f"t{i}",
                         details={"i": i, "名": "值"})


def _as_superuser(engine, *statements: str) -> None:  # noqa: ANN001
    """Run statements with the append-only triggers out of the way, as an attacker with full database access."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # no ordinary trigger fires
        else:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        for stmt in statements:
            conn.execute(sa.text(stmt))


def _public_sha256(row: dict) -> str:
    """The former, unkeyed chain: anyone could recompute it."""
    at = row["at"] if isinstance(row["at"], dt.datetime) else dt.datetime.fromisoformat(str(row["at"]))
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    details = row["details"] if isinstance(row["details"], dict) else json.loads(row["details"])
    body = {"seq": row["seq"], "at": at.astimezone(dt.UTC).isoformat(), "actor_id": row["actor_id"],
            "actor_role": row["actor_role"], "operator_id": row["operator_id"], "action": row["action"],
            "target": row["target"], "details": details, "prev_hash": row["prev_hash"]}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _verify(client, login) -> dict:  # noqa: ANN001
    _, regulator = login("regulator")
    r = client.get("/v1/audit/log/verify", headers=regulator)
    assert r.status_code == 200, r.text
    return r.json()


def _head(engine) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT max(seq) FROM audit_log")).scalar() or 0


def test_intact_log_verifies_against_its_signed_checkpoint(client, login, engine, settings) -> None:  # noqa: ANN001
    _append(engine, 5)
    out = _verify(client, login)
    assert out["ok"] is True and out["entries"] == _head(engine)
    assert out["checkpoint"]["seq"] >= 5 and out["keyed"] is True


def test_deleting_the_newest_rows_is_detected(client, login, engine) -> None:  # noqa: ANN001
    _append(engine, 5)
    head = _head(engine)
    _as_superuser(engine, f"DELETE FROM audit_log WHERE seq > {head - 2}")
    out = _verify(client, login)
    assert out["ok"] is False and out["first_broken_seq"] == head - 1, out
    assert "checkpoint" in out["reason"]


def test_truncate_is_refused_and_an_emptied_log_is_detected(client, login, engine) -> None:  # noqa: ANN001
    _append(engine, 3)
    if engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(sa.text("TRUNCATE audit_log"))
        _as_superuser(engine, "TRUNCATE audit_log")
    else:  # SQLite has no TRUNCATE: an unqualified DELETE is its equivalent
        _as_superuser(engine, "DELETE FROM audit_log")
    assert _head(engine) == 0
    out = _verify(client, login)
    assert out["ok"] is False and out["first_broken_seq"] == 1, out


def test_editing_a_row_and_rechaining_with_the_public_algorithm_is_detected(client, login, engine) -> None:  # noqa: ANN001
    _append(engine, 5)
    head = _head(engine)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM audit_log ORDER BY seq"))]
    edited = head - 2
    prev = next(r for r in rows if r["seq"] == edited - 1)["hash"]
    statements = []
    for row in rows:
        if row["seq"] < edited:
            continue
        if row["seq"] == edited:
            row["target"] = "forged"
        row["prev_hash"] = prev
        row["hash"] = _public_sha256(row)
        prev = row["hash"]
        statements.append(f"UPDATE audit_log SET target = '{row['target']}', prev_hash = '{row['prev_hash']}', "
                          f"hash = '{row['hash']}' WHERE seq = {row['seq']}")
    # hashes are unique: move the old ones out of the way first
    _as_superuser(engine, *[f"UPDATE audit_log SET hash = 'x{r['seq']}', prev_hash = 'y{r['seq']}' "
                            f"WHERE seq = {r['seq']}" for r in rows if r["seq"] >= edited], *statements)
    out = _verify(client, login)
    assert out["ok"] is False and out["first_broken_seq"] == edited, out


def test_checkpoints_are_signed_and_published_outside_the_database(client, login, engine, settings,
                                                                   caplog) -> None:  # noqa: ANN001
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    with caplog.at_level(logging.INFO):
        _append(engine, 2)
    head = _head(engine)
    path = settings.data_dir / "audit-checkpoints.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[-1]["seq"] == head
    out = _verify(client, login)
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(out["checkpoint_public_key"]))
    last = lines[-1]
    key.verify(bytes.fromhex(last["sig"]), audit.checkpoint_message(last["seq"], last["hash"], last["at"]))
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT hash FROM audit_log WHERE seq = {head}")).scalar() == last["hash"]
    assert any("audit.checkpoint" in r.getMessage() and str(head) in r.getMessage() for r in caplog.records)
    # a checkpoint forged without the key (to hide a truncation) is not believed
    _as_superuser(engine, f"DELETE FROM audit_log WHERE seq = {head}")
    with path.open("a") as fh:
        fh.write(json.dumps({**last, "seq": head - 1, "hash": "0" * 64}) + "\n")
    out = _verify(client, login)
    assert out["ok"] is False and out["first_broken_seq"] == head, out
    assert out["checkpoint"]["seq"] >= head and out["checkpoints_rejected"] == 1, out


def test_a_log_from_before_keying_is_pinned_by_its_first_keyed_row(client, login, engine) -> None:  # noqa: ANN001
    from maas.models import AuditEntry

    prev = audit.GENESIS
    with session_scope(engine) as s:  # rows written by the former, unkeyed code
        for seq in (1, 2, 3):
            row = AuditEntry(seq=seq, at=dt.datetime(2026, 1, seq, tzinfo=dt.UTC), actor_id="usr_old",
                             actor_role="admin", action="old.action", target=f"o{seq}", details={}, prev_hash=prev,
                             hash="")
            row.hash = _public_sha256(row.model_dump())
            prev = row.hash
            s.add(row)
    _append(engine, 1)
    out = _verify(client, login)
    assert out["ok"] is True and out["unkeyed_before_seq"] == 4, out
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT action FROM audit_log WHERE seq = 4")).scalar() == audit.KEYED_MARKER
    # the unkeyed rows cannot be rewritten either: the keyed marker pins the last one's hash
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM audit_log WHERE seq IN (2, 3) "
                                                               "ORDER BY seq"))]
    with engine.connect() as conn:
        prev = conn.execute(sa.text("SELECT hash FROM audit_log WHERE seq = 1")).scalar()
    statements = []
    for row in rows:
        row["target"] = "forged" if row["seq"] == 2 else row["target"]
        row["prev_hash"] = prev
        row["hash"] = _public_sha256(row)
        prev = row["hash"]
        statements.append(f"UPDATE audit_log SET target = '{row['target']}', prev_hash = '{row['prev_hash']}', "
                          f"hash = '{row['hash']}' WHERE seq = {row['seq']}")
    _as_superuser(engine, *[f"UPDATE audit_log SET hash = 'x{r['seq']}', prev_hash = 'y{r['seq']}' "
                            f"WHERE seq = {r['seq']}" for r in rows], *statements)
    out = _verify(client, login)
    assert out["ok"] is False and out["first_broken_seq"] == 4, out
