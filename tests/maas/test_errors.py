"""Bad input gets the contract's error shape and a fitting 4xx, never a bare 500."""

from __future__ import annotations

import pytest


def _assert_error_shape(body: dict) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"].replace("_", "").isalnum() and body["error"]["code"].islower()
    assert body["error"]["message"]


def test_malformed_json(client) -> None:  # noqa: ANN001
    r = client.post("/v1/auth/register", content=b'{"phone": "1391', headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    _assert_error_shape(r.json())
    assert r.json()["error"]["code"] == "malformed_json"


@pytest.mark.parametrize("body, field", [
    ({"phone": 13912345678, "password": "long-enough", "name": "x"}, "body.phone"),
    ({"phone": "13912345678", "password": "short", "name": "x"}, "body.password"),
    ({"phone": "13912345678", "password": "long-enough"}, "body.name"),
    ({"phone": "13912345678", "password": "long-enough", "name": "x", "role": "admin"}, "body.role"),
])
def test_wrong_types_missing_and_unknown_fields(client, body, field) -> None:  # noqa: ANN001
    r = client.post("/v1/auth/register", json=body)
    assert r.status_code == 422
    _assert_error_shape(r.json())
    assert r.json()["error"]["code"] == "validation_error"
    assert field in [f["field"] for f in r.json()["error"]["details"]["fields"]]


def test_invalid_phone_is_a_domain_error(client) -> None:  # noqa: ANN001
    r = client.post("/v1/auth/register", json={"phone": "abc-def-ghi", "password": "long-enough", "name": "x"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_phone"


def test_unknown_route_and_wrong_method(client) -> None:  # noqa: ANN001
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404
    _assert_error_shape(r.json())
    r = client.get("/v1/auth/token")
    assert r.status_code == 405
    _assert_error_shape(r.json())


def test_oversized_body_refused(client, settings) -> None:  # noqa: ANN001
    big = b'{"phone": "' + b"1" * (settings.max_body_bytes + 10) + b'"}'
    r = client.post("/v1/auth/register", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_request_id_is_echoed_or_generated(client) -> None:  # noqa: ANN001
    r = client.get("/health", headers={"X-Request-ID": "abc12345-req"})
    assert r.headers["x-request-id"] == "abc12345-req"
    r = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 16


def test_unavailable_database_and_redis_are_json_503s(app, client, monkeypatch) -> None:  # noqa: ANN001
    import redis
    import sqlalchemy.exc

    from maas import accounts

    def db_down(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(accounts, "login", db_down)
    r = client.post("/v1/auth/token", json={"phone": "13912345678", "password": "whatever-pass"})
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert r.json()["error"]["code"] == "database_unavailable"

    def redis_down(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(accounts, "login", redis_down)
    r = client.post("/v1/auth/token", json={"phone": "13912345678", "password": "whatever-pass"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "redis_unavailable"
