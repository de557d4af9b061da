"""Issue 12 item 8: access tokens must not outlive logout, theft detection or disabling.

The attack: an access token lives 15 minutes; logging out, a detected refresh-token theft, or an admin
disabling the account left every access token working until it expired. Now each authenticated request
checks revocation markers in Redis (the session's family and the user), in one round trip.
"""

from __future__ import annotations

import pytest


def _login(client, phone: str, password: str) -> dict:  # noqa: ANN001
    r = client.post("/v1/auth/token", json={"phone": phone, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def _me(client, tokens: dict) -> int:  # noqa: ANN001
    return client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code


def test_logout_kills_the_access_token_at_once(client, make_user) -> None:  # noqa: ANN001
    _, phone, password = make_user("passenger")
    session = _login(client, phone, password)
    other_device = _login(client, phone, password)
    assert _me(client, session) == 200
    assert client.post("/v1/auth/revoke", json={"refresh_token": session["refresh_token"]}).status_code == 204
    r = client.get("/v1/me", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
    assert _me(client, other_device) == 200  # logging out one session leaves the others


def test_theft_detection_kills_every_access_token_of_the_family(client, make_user) -> None:  # noqa: ANN001
    _, phone, password = make_user("passenger")
    stolen = _login(client, phone, password)
    owner = client.post("/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]}).json()
    assert _me(client, owner) == 200
    # The thief replays the rotated refresh token: the family is revoked, and so are its access tokens.
    replay = client.post("/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert replay.status_code == 401
    assert _me(client, owner) == 401
    assert _me(client, stolen) == 401


def test_disabling_an_account_kills_its_access_tokens_at_once(client, make_user, login) -> None:  # noqa: ANN001
    user, phone, password = make_user("passenger")
    a, b = _login(client, phone, password), _login(client, phone, password)
    _, admin = login("admin")
    r = client.post(f"/v1/admin/users/{user.user_id}/disable", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["disabled"] is True
    assert _me(client, a) == 401 and _me(client, b) == 401
    assert client.post("/v1/auth/refresh", json={"refresh_token": a["refresh_token"]}).status_code == 401
    assert client.post("/v1/auth/token", json={"phone": phone, "password": password}).status_code == 401
    # Enabling again lets the owner log in anew; the old tokens stay dead.
    assert client.post(f"/v1/admin/users/{user.user_id}/enable", headers=admin).status_code == 200
    fresh = _login(client, phone, password)
    assert _me(client, fresh) == 200 and _me(client, a) == 401


def test_the_check_is_one_redis_round_trip(app, client, make_user) -> None:  # noqa: ANN001
    _, phone, password = make_user("passenger")
    tokens = _login(client, phone, password)
    real = app.state.redis
    calls: list[str] = []

    class Counting:
        def __getattr__(self, name):  # noqa: ANN001, ANN204
            attr = getattr(real, name)
            if callable(attr) and name not in ("pipeline",):
                def wrapped(*args, **kwargs):  # noqa: ANN202, ANN002, ANN003
                    calls.append(name)
                    return attr(*args, **kwargs)
                return wrapped
            if name == "pipeline":
                def pipeline(*args, **kwargs):  # noqa: ANN202, ANN002, ANN003
                    calls.append("pipeline")
                    return attr(*args, **kwargs)
                return pipeline
            return attr

    app.state.redis = Counting()
    try:
        assert _me(client, tokens) == 200
    finally:
        app.state.redis = real
    assert len(calls) == 1, calls


def test_cli_disable_revokes_at_once(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    import json

    from maas import accounts, revocation
    from maas.cli import main
    from maas.db import dispose_engines, get_engine, session_scope
    from maas.redis_client import get_redis, reset_clients
    from maas.security import decode_token
    from maas.settings import get_settings

    monkeypatch.setenv("MAAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    reset_clients()
    try:
        assert main(["db", "upgrade"]) == 0
        s = get_settings()
        with session_scope(get_engine(s)) as session:
            user = accounts.create_user(session, phone="13700000000", password="long-enough-pw", name="李",
                                        role="passenger")
            pair = accounts.login(session, s, phone="13700000000", password="long-enough-pw")
        claims = decode_token(s, pair.access_token, expected_type="access")
        revocation.check_access(get_redis(s), claims)  # alive
        capsys.readouterr()
        assert main(["users", "disable", user.user_id]) == 0
        assert json.loads(capsys.readouterr().out.strip()) == {"user_id": user.user_id, "disabled": True}
        from maas.errors import TokenRevoked

        with pytest.raises(TokenRevoked):
            revocation.check_access(get_redis(s), claims)
        assert main(["users", "disable", "usr_nobody"]) == 1
    finally:
        get_settings.cache_clear()
        reset_clients()
        dispose_engines()
