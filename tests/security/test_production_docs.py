"""Issue 12 item 16: in production the API documentation and version details are off unless enabled.

The attack: reconnaissance. ``/docs``, ``/redoc`` and ``/openapi.json`` map every operation for an attacker,
and ``/health`` told the exact server and Python versions to match against known vulnerabilities.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from maas.app import create_app

DOC_PATHS = ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")


def _client(settings, **updates) -> TestClient:  # noqa: ANN001
    app = create_app(settings.model_copy(update=updates), load_timetable=False)
    return TestClient(app, raise_server_exceptions=False)


def test_production_hides_docs_and_versions(settings) -> None:  # noqa: ANN001
    with _client(settings, environment="production") as c:
        for path in DOC_PATHS:
            r = c.get(path)
            assert r.status_code == 404, path
            assert "swagger" not in r.text.lower() and '"openapi"' not in r.text
        health = c.get("/health")
        assert health.status_code == 200
        body = health.json()
        assert body["version"] is None and body["python"] is None
        assert "server" not in {k.lower() for k in health.headers} or "uvicorn/" not in health.headers["server"]


def test_production_can_enable_them_explicitly(settings) -> None:  # noqa: ANN001
    with _client(settings, environment="production", expose_docs=True, expose_version=True) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 200, path
        assert c.get("/health").json()["version"]


@pytest.mark.parametrize("environment", ["development", "test"])
def test_development_keeps_them(settings, environment) -> None:  # noqa: ANN001
    with _client(settings, environment=environment) as c:
        assert c.get("/docs").status_code == 200
        assert c.get("/openapi.json").status_code == 200
        body = c.get("/health").json()
        assert body["version"] and body["python"]
