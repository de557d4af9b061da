"""The hash-chained audit log."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from maas import audit
from maas.db import session_scope


def _append(engine, n: int) -> None:  # noqa: ANN001
    with session_scope(engine) as s:
        for i in range(n):
            audit.record(s, action="test.action", actor_id="usr_a", actor_role="admin", target=f"t{i}",
                         details={"i": i, "名": "值"})


def test_chain_verifies(engine) -> None:  # noqa: ANN001
    _append(engine, 5)
    with session_scope(engine) as s:
        result = audit.verify_chain(s)
    assert result.ok and result.entries == 5


def test_privileged_actions_are_audited_over_http(client, login) -> None:  # noqa: ANN001
    _, admin = login("admin")
    client.post("/v1/admin/operators", json={"operator_id": "bus", "name": "公交"}, headers=admin)
    client.post("/v1/admin/gates", json={"operator_id": "bus"}, headers=admin)
    _, regulator = login("regulator")
    page = client.get("/v1/audit/log", headers=regulator).json()
    actions = [e["action"] for e in page["entries"]]
    assert "operator.create" in actions and "gate.create" in actions
    assert client.get("/v1/audit/log/verify", headers=regulator).json()["ok"] is True
    _, passenger = login("passenger")
    assert client.get("/v1/audit/log", headers=passenger).status_code == 403


def test_audit_log_paging(client, login, engine) -> None:  # noqa: ANN001
    _append(engine, 7)
    _, regulator = login("regulator")
    first = client.get("/v1/audit/log?limit=3&action=test.action", headers=regulator).json()
    assert len(first["entries"]) == 3 and first["next_after_seq"] is not None
    rest = client.get(f"/v1/audit/log?limit=10&action=test.action&after_seq={first['next_after_seq']}",
                      headers=regulator).json()
    assert len(rest["entries"]) == 4 and rest["next_after_seq"] is None


def test_database_refuses_edits_and_deletes(engine) -> None:  # noqa: ANN001
    _append(engine, 2)
    for stmt in ("UPDATE audit_log SET action = 'forged' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 2"):
        with pytest.raises(sa.exc.DBAPIError):
            with engine.begin() as conn:
                conn.execute(sa.text(stmt))


def _tamper(engine, stmt: str) -> None:  # noqa: ANN001
    """Edit a row behind the triggers' back, as an attacker with superuser access could."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
            conn.execute(sa.text(stmt))
            conn.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
            conn.execute(sa.text(stmt))


def test_tampering_is_detected_at_the_first_broken_row(engine) -> None:  # noqa: ANN001
    _append(engine, 5)
    _tamper(engine, "UPDATE audit_log SET target = 'forged' WHERE seq = 3")
    with session_scope(engine) as s:
        result = audit.verify_chain(s)
    assert not result.ok and result.first_broken_seq == 3


def test_deleted_row_is_detected(engine) -> None:  # noqa: ANN001
    _append(engine, 5)
    _tamper(engine, "DELETE FROM audit_log WHERE seq = 2")
    with session_scope(engine) as s:
        result = audit.verify_chain(s)
    assert not result.ok and result.first_broken_seq == 2
