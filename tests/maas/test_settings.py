"""Settings: readable one-line failures, secrets handled per environment."""

from __future__ import annotations

import json

import pytest

from maas.settings import SettingsError, load_settings


def test_development_generates_and_keeps_secrets(tmp_path) -> None:  # noqa: ANN001
    first = load_settings(environment="development", data_dir=tmp_path)
    second = load_settings(environment="development", data_dir=tmp_path)
    assert first.secret("jwt_secret") == second.secret("jwt_secret")
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0
    assert set(json.loads((tmp_path / "secrets.json").read_text())) >= {"jwt_secret", "pii_keys"}
    assert "jwt_secret" not in repr(first) or "**********" in repr(first)


@pytest.mark.parametrize("overrides, fragment", [
    ({"environment": "production"}, "MAAS_JWT_SECRET must be set"),
    ({"environment": "production", "jwt_secret": "changeme", "pii_keys": "k", "blind_index_key": "b",
      "issuer_keys": "q"}, "MAAS_JWT_SECRET must be set"),
    ({"database_url": "mysql://x"}, "DATABASE_URL"),
    ({"redis_url": "http://x"}, "REDIS_URL"),
    ({"access_token_ttl_s": -5}, "MAAS_ACCESS_TOKEN_TTL_S"),
])
def test_bad_settings_fail_with_one_line(tmp_path, overrides, fragment) -> None:  # noqa: ANN001
    with pytest.raises(SettingsError) as info:
        load_settings(data_dir=tmp_path, **overrides)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_production_requires_real_services(tmp_path) -> None:  # noqa: ANN001
    from maas.keys import generate

    secrets = {name[len("MAAS_"):].lower(): value for name, value in generate().items()}
    with pytest.raises(SettingsError, match="DATABASE_URL is required"):
        load_settings(environment="production", data_dir=tmp_path, **secrets)
    s = load_settings(environment="production", data_dir=tmp_path, database_url="postgres://db/maas",
                      redis_url="redis://r:6379/0", **secrets)
    assert s.sqlalchemy_url == "postgresql+psycopg://db/maas"
    assert s.database_backend == "postgresql" and s.redis_backend == "redis"


def test_environment_variables_are_read(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("MAAS_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("DATABASE_URL", "postgresql://h/db")
    monkeypatch.setenv("REDIS_URL", "redis://h:6379/1")
    s = load_settings()
    assert s.data_dir == tmp_path / "d"
    assert s.database_backend == "postgresql" and s.redis_url == "redis://h:6379/1"
