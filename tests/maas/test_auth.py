"""Accounts and tokens over HTTP, end to end."""

from __future__ import annotations

import datetime as dt

import jwt


def _register_and_login(client, phone: str = "13912345678", password: str = "s3cret-passw0rd"):  # noqa: ANN001, ANN202
    r = client.post("/v1/auth/register", json={"phone": phone, "password": password, "name": "王小明"})
    assert r.status_code == 201, r.text
    r = client.post("/v1/auth/token", json={"phone": phone, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def test_register_token_call_refresh_and_revoked_refresh_refused(client) -> None:  # noqa: ANN001
    tokens = _register_and_login(client)
    assert tokens["token_type"] == "bearer"

    me = client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["role"] == "passenger"

    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {new['access_token']}"}).status_code == 200

    # The rotated-out token is refused, and presenting it revokes the whole family (theft detection).
    replay = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "token_revoked"
    assert client.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]}).status_code == 401


def test_logout_revokes_refresh_token(client) -> None:  # noqa: ANN001
    tokens = _register_and_login(client)
    assert client.post("/v1/auth/revoke", json={"refresh_token": tokens["refresh_token"]}).status_code == 204
    r = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"


def test_wrong_password_and_unknown_phone_look_the_same(client) -> None:  # noqa: ANN001
    _register_and_login(client)
    wrong = client.post("/v1/auth/token", json={"phone": "13912345678", "password": "nope-nope-nope"})
    unknown = client.post("/v1/auth/token", json={"phone": "13000000000", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"


def test_duplicate_phone_is_a_conflict(client) -> None:  # noqa: ANN001
    _register_and_login(client)
    r = client.post("/v1/auth/register", json={"phone": "13912345678", "password": "another-pass", "name": "李"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "phone_taken"


def test_expired_access_token_refused(client, settings) -> None:  # noqa: ANN001
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    from maas.security import encode_token

    token = encode_token(settings, {"iss": "maas", "sub": "usr_x", "typ": "access", "role": "admin", "jti": "j",
                                    "iat": past, "exp": past + dt.timedelta(minutes=15)})
    r = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "token_expired"


def test_forged_token_refused(client) -> None:  # noqa: ANN001
    now = dt.datetime.now(dt.UTC)
    forged = jwt.encode({"iss": "maas", "sub": "usr_x", "typ": "access", "role": "admin", "jti": "j",
                         "iat": now, "exp": now + dt.timedelta(minutes=5)}, "not-our-secret-at-all-000000000000",
                        algorithm="HS256")
    for token in (forged, "garbage", forged[:-4] + "AAAA"):
        r = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert r.json()["error"]["code"] == "invalid_token"


def test_refresh_token_is_not_an_access_token(client) -> None:  # noqa: ANN001
    tokens = _register_and_login(client)
    r = client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert r.status_code == 401
    r = client.post("/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert r.status_code == 401


def test_missing_token(client) -> None:  # noqa: ANN001
    r = client.get("/v1/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_token"
