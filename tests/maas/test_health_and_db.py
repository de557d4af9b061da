"""Health, the per-request transaction, and the schema built by migrations."""

from __future__ import annotations

import pytest

import sqlalchemy as sa
from sqlmodel import select

from maas import accounts
from maas.db import session_scope
from maas.models import Operator


def test_health_reports_backends(client, backend) -> None:  # noqa: ANN001
    body = client.get("/health").json()
    assert body["status"] == "ok"
    if backend["kind"] == "embedded":
        assert body["database"] == {"kind": "sqlite", "ok": True}
        assert body["redis"] == {"kind": "in-process", "ok": True}
    else:
        assert body["database"] == {"kind": "postgresql", "ok": True}
        assert body["redis"] == {"kind": "redis", "ok": True}


def test_schema_comes_from_migrations(engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        heads = set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    # One branch of migrations per domain, every head applied.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from maas.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert heads == set(ScriptDirectory.from_config(cfg).get_heads())
    assert {"users", "operators", "gate_devices", "audit_log", "feeds"} <= set(sa.inspect(engine).get_table_names())


def test_request_is_one_transaction_rolled_back_on_error(client, login, engine) -> None:  # noqa: ANN001
    _, admin = login("admin")
    # Creating staff for a missing operator fails after nothing else was written: nothing is left behind.
    r = client.post("/v1/admin/users", json={"role": "operator", "operator_id": "ghost", "phone": "13700000009",
                                             "password": "long-enough"}, headers=admin)
    assert r.status_code == 404
    with session_scope(engine) as s:
        assert s.get(Operator, "ghost") is None
        assert accounts.find_operator(s, "ghost") is None


def test_session_scope_rolls_back_everything_on_error(engine) -> None:  # noqa: ANN001
    with pytest.raises(RuntimeError, match="boom"), session_scope(engine) as s:
        accounts.ensure_operator(s, operator_id="half", name="half")
        raise RuntimeError("boom")
    with session_scope(engine) as s:
        assert s.exec(select(Operator).where(Operator.operator_id == "half")).first() is None


def test_timestamps_are_timezone_aware(engine) -> None:  # noqa: ANN001
    with session_scope(engine) as s:
        accounts.ensure_operator(s, operator_id="tz", name="tz")
    with session_scope(engine) as s:
        op = s.get(Operator, "tz")
        assert op.created_at.tzinfo is not None
