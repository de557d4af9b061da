"""The `maas` command line: each command works, each failure is one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from maas.cli import main
from maas.settings import get_settings


def test_users_and_gates_create(cli_env, capsys) -> None:  # noqa: ANN001
    assert main(["db", "upgrade"]) == 0
    assert main(["users", "create", "--role", "admin", "--phone", "13800000000", "--password", "long-enough"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["role"] == "admin"

    from maas import accounts
    from maas.db import get_engine, session_scope

    with session_scope(get_engine(get_settings())) as s:
        accounts.ensure_operator(s, operator_id="bus", name="公交")
    assert main(["gates", "create", "--operator", "bus", "--stop", "bus:S1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) == {"gate_id", "token"} and out["token"].startswith("mgt_")
    assert main(["jobs", "run"]) == 0


@pytest.mark.parametrize("argv, code, fragment", [
    (["gates", "create", "--operator", "nobody"], 1, "operator 'nobody' does not exist"),
    (["users", "create", "--role", "wizard", "--phone", "13800000001", "--password", "long-enough"], 1, "role"),
    (["users", "create", "--role", "admin"], 2, "Missing option"),
    (["no-such-command"], 2, "No such command"),
    (["jobs", "run", "nope"], 1, "no job named"),
])
def test_failures_are_one_line(cli_env, capsys, argv, code, fragment) -> None:  # noqa: ANN001
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert fragment in err
    assert len(err.splitlines()) == 1 and err.startswith("error:")


def test_bad_setting_stops_with_one_line(tmp_path) -> None:  # noqa: ANN001
    env = {**os.environ, "MAAS_DATA_DIR": str(tmp_path), "DATABASE_URL": "mysql://nope"}
    result = subprocess.run([sys.executable, "-m", "maas", "db", "upgrade"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: invalid setting DATABASE_URL: Value error, must be a postgresql:// or sqlite:// URL"


def test_unreachable_database_is_one_line(tmp_path) -> None:  # noqa: ANN001
    env = {**os.environ, "MAAS_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"}
    result = subprocess.run([sys.executable, "-m", "maas", "db", "upgrade"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "not reachable" in result.stderr


def test_every_command_has_help(cli_env, capsys) -> None:  # noqa: ANN001
    for argv in (["--help"], ["db", "upgrade", "--help"], ["users", "create", "--help"], ["gates", "create", "--help"],
                 ["jobs", "run", "--help"], ["serve", "--help"], ["demo", "--help"]):
        assert main(argv) == 0, argv
        assert "Usage" in capsys.readouterr().out


def test_jobs_run_every_domain_job_with_expiry_before_settlement(cli_env, capsys) -> None:  # noqa: ANN001
    assert main(["jobs", "run"]) == 0
    names = [line.split(":")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert {"ticketing.expire_orders", "ticketing.expire_legs", "faces.retention", "clearing.settle_daily",
            "refresh_tokens.purge"} <= set(names)
    assert names.index("ticketing.expire_legs") < names.index("clearing.settle_daily")
    assert main(["jobs", "run"]) == 0  # idempotent: a second run succeeds and changes nothing
    assert "already closed" in capsys.readouterr().out
