"""Database engine and the one-transaction-per-request session.

The embedded default is a SQLite file in ``MAAS_DATA_DIR``; ``DATABASE_URL``
selects PostgreSQL. The schema is built by Alembic migrations (`maas db
upgrade`), never by ``create_all`` on a production path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from maas.settings import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_engine(settings: Settings) -> Engine:
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # hide_parameters: bound values (names, phones, password hashes) never reach error texts or logs.
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            # Take the write lock at BEGIN so concurrent writers queue instead of failing mid-transaction.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        # pysqlite's own transaction handling must be off for the explicit BEGIN above.
        @event.listens_for(engine, "connect", insert=True)
        def _sqlite_autocommit_off(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    engine = _cached_engine(settings)
    _ENGINE_SETTINGS[id(engine)] = settings
    return engine


def settings_of(bind: Engine | sa.Connection) -> Settings:
    """The settings the engine was last obtained with (keys that must not live in the database, e.g. the
    audit key); the process-wide settings for an engine made otherwise."""
    engine = bind.engine if isinstance(bind, sa.Connection) else bind
    return _ENGINE_SETTINGS.get(id(engine)) or get_settings()


_ENGINES: dict[str, Engine] = {}
_ENGINE_SETTINGS: dict[int, Settings] = {}


def _cached_engine(settings: Settings) -> Engine:
    key = settings.sqlalchemy_url
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = make_engine(settings)
    return engine


def dispose_engines() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
    _ENGINE_SETTINGS.clear()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error.

    An exception with a true ``keep_writes`` attribute commits instead: the
    error is the answer, but what was written on the way (a revocation, a
    flagged duplicate) must stay.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException as exc:
            if getattr(exc, "keep_writes", False):
                session.commit()
            else:
                session.rollback()
            raise


def _attach_utc(target: object, *_args: object) -> None:
    # SQLite has no time zones: values come back naive although we only ever store UTC.
    for column in sa.inspect(type(target)).columns:
        if isinstance(column.type, sa.DateTime):
            value = getattr(target, column.key, None)
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                target.__dict__[column.key] = value.replace(tzinfo=dt.UTC)


event.listen(SQLModel, "load", _attach_utc, propagate=True)
event.listen(SQLModel, "refresh", _attach_utc, propagate=True)


def upgrade_database(settings: Settings | None = None, revision: str = "heads") -> None:
    """Apply the Alembic migrations to the configured database.

    ``heads``: each domain keeps its own branch of revisions (maas, ticketing, clearing), all applied.
    """
    from alembic import command
    from alembic.config import Config

    settings = settings or get_settings()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = get_engine(settings)
    command.upgrade(cfg, revision)
