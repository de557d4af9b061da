"""The suite cleans up after crashed runs: stale test databases are dropped, live ones are kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PG_ADMIN_URL, drop_stale_test_databases


@pytest.mark.postgres
def test_stale_test_databases_are_dropped_and_live_ones_kept() -> None:
    import psycopg

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(gone.stdout)  # that process has exited
    names = {"dead": f"maas_test_{dead_pid}_deadbeef", "live": f"maas_test_{os.getpid()}_cafebabe",
             "legacy": "maas_test_0badc0de"}
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            dropped = drop_stale_test_databases(admin)
            left = {r[0] for r in admin.execute("SELECT datname FROM pg_database")}
            assert names["dead"] in dropped and names["legacy"] in dropped
            assert names["dead"] not in left and names["legacy"] not in left
            assert names["live"] in left and names["live"] not in dropped
        finally:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
