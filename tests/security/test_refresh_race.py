"""Issue 12 item 6: twenty concurrent uses of one refresh token must give exactly one new session.

The attack: a thief and the owner (or twenty requests) present the same refresh token at the same time. Before
the fix up to six got 200s, each with a working session. Now rotation is a conditional update: exactly one
request wins, and any other presentation of the token (a loser) revokes the whole family.
"""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.security.live_server import serve

CONCURRENCY = 20
ROUNDS = 5


@pytest.fixture
def server(app):  # noqa: ANN001, ANN201
    app.state.load_timetable_on_start = False
    with serve(app) as url:
        yield url


def _concurrent_refresh(url: str, token: str) -> list[httpx.Response]:
    barrier = threading.Barrier(CONCURRENCY)
    results: list[httpx.Response | None] = [None] * CONCURRENCY

    def attempt(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            barrier.wait()
            results[i] = c.post("/v1/auth/refresh", json={"refresh_token": token})

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def test_concurrent_refresh_has_exactly_one_winner_and_the_family_dies(server, make_user) -> None:  # noqa: ANN001
    _, phone, password = make_user("passenger")
    with httpx.Client(base_url=server, timeout=60) as c:
        for _ in range(ROUNDS):
            tokens = c.post("/v1/auth/token", json={"phone": phone, "password": password}).json()
            results = _concurrent_refresh(server, tokens["refresh_token"])
            codes = sorted(r.status_code for r in results)
            winners = [r for r in results if r.status_code == 200]
            assert len(winners) == 1, codes
            assert codes.count(401) == CONCURRENCY - 1, codes
            assert {r.json()["error"]["code"] for r in results if r.status_code == 401} == {"token_revoked"}
            # The losers' attempts revoked the family: the winner's new refresh token is dead too.
            after = c.post("/v1/auth/refresh", json={"refresh_token": winners[0].json()["refresh_token"]})
            assert after.status_code == 401 and after.json()["error"]["code"] == "token_revoked"
            # ... and so is its access token, at once (item 8: revocation markers).
            me = c.get("/v1/me", headers={"Authorization": f"Bearer {winners[0].json()['access_token']}"})
            assert me.status_code == 401


def test_service_level_rotation_is_atomic(engine, settings, make_user) -> None:  # noqa: ANN001
    """The same race without HTTP: concurrent `accounts.refresh` calls in their own transactions."""
    from maas import accounts
    from maas.db import session_scope
    from maas.errors import InvalidToken, TokenRevoked

    user, phone, password = make_user("passenger")
    with session_scope(engine) as s:
        pair = accounts.login(s, settings, phone=phone, password=password)
    barrier = threading.Barrier(CONCURRENCY)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            with session_scope(engine) as s:
                accounts.refresh(s, settings, refresh_token=pair.refresh_token)
            outcome = "ok"
        except TokenRevoked:
            outcome = "revoked"
        except InvalidToken as exc:
            outcome = f"invalid:{exc}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1, outcomes
    assert outcomes.count("revoked") == CONCURRENCY - 1, outcomes
