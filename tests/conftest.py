"""Shared test fixtures.

Real public feeds and face photos live in ``../shared/data`` beside the
repository (or wherever ``MAAS_SHARED_DATA`` points); they are never copied
into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MAAS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


# --- the clock ----------------------------------------------------------------
#
# Nothing in the suite may depend on the day it runs. ``--clock-shift-days N``
# (or MAAS_TEST_CLOCK_SHIFT_DAYS) moves the clock of this process and of every
# Python process the tests start N days away from the machine's, with
# time-machine; Redis and PostgreSQL keep the real clock, so code that mixes
# the two fails. ``make test`` runs the suite once as it is and once a year ahead.

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clock-shift-days", type=int, default=int(os.environ.get("MAAS_TEST_CLOCK_SHIFT_DAYS", "0")),
                     help="run the suite with the clock moved this many days (time-machine)")


def pytest_configure(config: pytest.Config) -> None:
    days = config.getoption("--clock-shift-days")
    if not days:
        return
    import datetime as dt

    import time_machine

    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    traveller = time_machine.travel(start, tick=True)
    traveller.start()
    config._maas_clock = traveller  # type: ignore[attr-defined]
    # Python subprocesses (maas demo, the CLI) start on the same shifted clock.
    os.environ["MAAS_TEST_CLOCK_SHIFT_DAYS"] = str(days)
    os.environ["MAAS_TEST_CLOCK_EPOCH"] = repr(start.timestamp())
    site = str(Path(__file__).resolve().parent / "clockshift")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (site, os.environ.get("PYTHONPATH", "")) if p)


def pytest_report_header(config: pytest.Config) -> str | None:
    days = config.getoption("--clock-shift-days")
    if days:
        import datetime as dt

        return f"clock shifted by {days} days: now {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}"
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The directory of real feeds and photos (see its README)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA}; set MAAS_SHARED_DATA")
    return SHARED_DATA


# --- storage backends --------------------------------------------------------
#
# Database-touching tests run on both backends: the embedded default (SQLite
# file + in-process Redis stand-in) and the real services (PostgreSQL + Redis).
# MAAS_TEST_BACKENDS narrows the set ("embedded", "postgres"); the real
# services are required, never silently skipped.

import secrets as _secrets
import shutil as _shutil
from collections.abc import Iterator as _Iterator

BACKENDS = [b.strip() for b in os.environ.get("MAAS_TEST_BACKENDS", "embedded,postgres").split(",") if b.strip()]
PG_ADMIN_URL = os.environ.get("MAAS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("MAAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
if os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    # pytest -n N: each worker flushes a Redis database of its own (15, 14, ... from the configured one down)
    _base, _, _db = REDIS_TEST_URL.rpartition("/")
    REDIS_TEST_URL = f"{_base}/{int(_db or 0) - int(os.environ['PYTEST_XDIST_WORKER'][2:])}"
# Generous limits so functional tests never trip them; tests/maas/test_ratelimit.py checks the limiter itself.
TEST_RATE_LIMITS = "auth=100000/60,plan=100000/60,gates=1000000/60"


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_stale_test_databases(admin) -> list[str]:  # noqa: ANN001
    """Drops the databases that crashed test sessions left behind; returns their names.

    A session's database is ``maas_test_<pid>_<hex>``: it is stale when no
    process ``pid`` runs on this machine. Older names without a pid are stale
    when nobody is connected to them. A live session's database is never touched.
    """
    rows = admin.execute("SELECT d.datname, (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname) "
                         "FROM pg_database d WHERE d.datname LIKE 'maas\\_test\\_%'").fetchall()
    dropped = []
    for name, connections in rows:
        parts = name.split("_")
        if len(parts) == 4 and parts[2].isdigit():
            stale = not _pid_alive(int(parts[2]))
        else:
            stale = connections == 0
        if stale:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            dropped.append(name)
    return dropped


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> _Iterator[dict]:
    """A migrated database and a Redis for one backend, shared by the session's tests."""
    from maas.db import dispose_engines, upgrade_database
    from maas.settings import load_settings

    kind = request.param
    data_dir = tmp_path_factory.mktemp(f"maas-{kind}")
    if kind == "embedded":
        template = data_dir / "template"
        settings = load_settings(environment="test", data_dir=template)
        upgrade_database(settings)
        dispose_engines()
        yield {"kind": kind, "template": template, "root": data_dir}
        return
    import psycopg
    import redis as _redis

    name = f"maas_test_{os.getpid()}_{_secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for the postgres backend ({PG_ADMIN_URL}): {exc}")
    drop_stale_test_databases(admin)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        _redis.Redis.from_url(REDIS_TEST_URL).ping()
    except _redis.RedisError as exc:
        pytest.fail(f"Redis is required for the postgres backend ({REDIS_TEST_URL}): {exc}")
    url = _with_database(PG_ADMIN_URL, name)
    settings = load_settings(environment="test", data_dir=data_dir / "pg", database_url=url, redis_url=REDIS_TEST_URL)
    upgrade_database(settings)
    try:
        yield {"kind": kind, "database_url": url, "root": data_dir}
    finally:
        dispose_engines()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def settings(backend: dict, tmp_path: Path):  # noqa: ANN201
    """Settings for one test, on a clean database and an empty Redis."""
    from maas.db import dispose_engines, get_engine
    from maas.redis_client import get_redis, reset_clients
    from maas.settings import load_settings

    reset_clients()
    if backend["kind"] == "embedded":
        data_dir = tmp_path / "data"
        _shutil.copytree(backend["template"], data_dir)
        s = load_settings(environment="test", data_dir=data_dir, rate_limits=TEST_RATE_LIMITS, log_level="WARNING")
    else:
        s = load_settings(environment="test", data_dir=tmp_path / "data", database_url=backend["database_url"],
                          redis_url=REDIS_TEST_URL, rate_limits=TEST_RATE_LIMITS, log_level="WARNING")
        import sqlalchemy as sa

        engine = get_engine(s)
        with engine.begin() as conn:
            tables = [r[0] for r in conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))]
            if tables:
                # the audit log refuses TRUNCATE (a trigger); tests start clean with the triggers off
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
        get_redis(s).flushdb()
    yield s
    reset_clients()
    if backend["kind"] == "embedded":
        dispose_engines()


@pytest.fixture
def engine(settings):  # noqa: ANN001, ANN201
    from maas.db import get_engine

    return get_engine(settings)


@pytest.fixture
def session(engine):  # noqa: ANN001, ANN201
    """A session whose work is committed by the test itself (services only flush)."""
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as s:
        yield s
        s.rollback()


@pytest.fixture
def app(settings):  # noqa: ANN001, ANN201
    from maas.app import create_app

    return create_app(settings)


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def make_user(engine):  # noqa: ANN001, ANN201
    """Builder: create an account directly through the service; returns (user, password)."""
    from maas import accounts
    from maas.db import session_scope

    counter = iter(range(10_000))

    def build(role: str = "passenger", operator_id: str | None = None, name: str = "测试用户"):  # noqa: ANN202
        phone = f"139{next(counter):08d}"
        password = "correct horse battery"
        with session_scope(engine) as s:
            if operator_id:
                accounts.ensure_operator(s, operator_id=operator_id, name=operator_id)
            user = accounts.create_user(s, phone=phone, password=password, name=name, role=role,
                                        operator_id=operator_id)
        return user, phone, password

    return build


@pytest.fixture
def login(client, make_user):  # noqa: ANN001, ANN201
    """Builder: an account of a role and the Authorization header of its access token."""

    def build(role: str = "passenger", operator_id: str | None = None) -> tuple[str, dict[str, str]]:
        user, phone, password = make_user(role, operator_id)
        r = client.post("/v1/auth/token", json={"phone": phone, "password": password})
        assert r.status_code == 200, r.text
        return user.user_id, {"Authorization": f"Bearer {r.json()['access_token']}"}

    return build


@pytest.fixture
def alipay_server():  # noqa: ANN201
    """A local Alipay gateway (tests/alipay_server.py), imported only by the tests that use it."""
    from tests.alipay_server import serve

    yield from serve()


@pytest.fixture
def wechat_server():  # noqa: ANN201
    """A local WeChat Pay v3 server (tests/wechat_server.py), imported only by the tests that use it."""
    from tests.wechat_server import serve

    yield from serve()
