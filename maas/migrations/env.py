"""Alembic environment: migrations run on the engine the app is configured with."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from maas.db import get_engine
from maas.schema import import_all_models

import_all_models()
target_metadata = SQLModel.metadata
config = context.config


def run_migrations() -> None:
    engine = config.attributes.get("engine") or get_engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
