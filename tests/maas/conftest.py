"""Fixtures of the shell's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli_env(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    """The CLI on a fresh embedded data dir (SQLite + in-process Redis), whatever the environment says."""
    from maas.settings import get_settings

    monkeypatch.setenv("MAAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    from maas.db import dispose_engines

    dispose_engines()
