"""Issue 12 item 7: login throttling must not be bypassable.

The attacks: (1) the limiter keyed ``/v1/auth/token`` on a hash of whatever ``Authorization`` header came
with it, so a fresh junk header per request gave a fresh budget; (2) ``X-Forwarded-For`` was believed from
anyone; (3) nothing limited guesses per account, so spreading them over addresses allowed unlimited
guessing. Now unauthenticated routes are keyed by the client address (proxy headers only from
``MAAS_TRUSTED_PROXIES``), and each account has a failed-login budget with exponential backoff.
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from maas.app import create_app

WRONG = {"password": "not-the-password"}


def _client(settings, address: str = "198.51.100.7", **updates) -> TestClient:  # noqa: ANN001
    app = create_app(settings.model_copy(update=updates))
    app.state.load_timetable_on_start = False
    return TestClient(app, raise_server_exceptions=False, client=(address, 40000))


def test_a_fresh_authorization_header_does_not_reset_the_address_budget(settings) -> None:  # noqa: ANN001
    body = {"phone": "13000000000", **WRONG}
    with _client(settings, rate_limits="auth=3/3600") as c:
        codes = [c.post("/v1/auth/token", json=body, headers={"Authorization": f"Bearer junk-{i}"}).status_code
                 for i in range(6)]
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429, 429], codes


def test_x_forwarded_for_is_ignored_from_untrusted_peers(settings) -> None:  # noqa: ANN001
    body = {"phone": "13000000000", **WRONG}
    with _client(settings, rate_limits="auth=3/3600") as c:
        codes = [c.post("/v1/auth/token", json=body, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                 for i in range(6)]
    assert codes[3:] == [429, 429, 429], codes


def test_x_forwarded_for_is_honoured_from_a_trusted_proxy(settings) -> None:  # noqa: ANN001
    body = {"phone": "13000000000", **WRONG}
    with _client(settings, address="10.0.0.5", rate_limits="auth=2/3600", trusted_proxies="10.0.0.0/8") as c:
        def post(xff: str) -> int:
            return c.post("/v1/auth/token", json=body, headers={"X-Forwarded-For": xff}).status_code

        # The proxy appends the real peer; what the client put in front of it is not believed.
        assert [post("203.0.113.1"), post("203.0.113.1"), post("203.0.113.1")] == [401, 401, 429]
        assert post("203.0.113.2") == 401  # another client behind the proxy has its own budget
        assert post("6.6.6.6, 203.0.113.1") == 429  # a spoofed left-most hop does not buy a new budget


def test_160_wrong_passwords_lock_the_account_with_backoff(settings, make_user) -> None:  # noqa: ANN001
    _, phone, password = make_user("passenger")
    # A first backoff far longer than the 160 requests take, even on a loaded machine.
    settings = settings.model_copy(update={"login_backoff_s": 600, "login_backoff_max_s": 3600})
    free = settings.login_free_failures
    codes = []
    # Every guess from another address: the per-address limit is no help, the per-account one must be.
    app = create_app(settings, load_timetable=False)
    started = time.monotonic()
    for i in range(160):
        c = TestClient(app, raise_server_exceptions=False, client=(f"203.0.{i // 250}.{i % 250 + 1}", 40000))
        codes.append(c.post("/v1/auth/token", json={"phone": phone, **WRONG}).status_code)
    # (All inside the first backoff period, or a second guess would be allowed and counted below.)
    assert time.monotonic() - started < settings.login_backoff_s
    assert codes.count(401) == free + 1, codes  # the free failures, then one guess per backoff period
    assert codes.count(429) == 160 - free - 1
    with _client(settings, address="192.0.2.99") as c:
        r = c.post("/v1/auth/token", json={"phone": phone, "password": password})
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "login_throttled"
    assert 1 <= int(r.headers["retry-after"]) <= settings.login_backoff_max_s


def test_unknown_accounts_are_throttled_the_same_way(settings) -> None:  # noqa: ANN001
    free = settings.login_free_failures
    with _client(settings) as c:
        codes = [c.post("/v1/auth/token", json={"phone": "13000000001", **WRONG}).status_code for _ in range(free + 3)]
    assert codes == [401] * (free + 1) + [429, 429]


def test_backoff_ends_and_then_grows(settings, make_user) -> None:  # noqa: ANN001
    """The backoff lasts its period, lets one guess through when it ends, then doubles.

    The lock is a Redis key with a TTL (Redis's clock): the test ends a period by expiring that key
    instead of sleeping through it, so a slow machine cannot outrun a short backoff.
    """
    from maas import login_guard
    from maas.redis_client import get_redis

    _, phone, password = make_user("passenger")
    s = settings.model_copy(update={"login_free_failures": 2, "login_backoff_s": 60, "login_backoff_max_s": 240})
    r = get_redis(s)
    lock = login_guard.Attempt(login_guard._account_key(s, phone), "").lock

    def end_backoff() -> None:
        assert r.pttl(lock) > 0, "no backoff running"
        r.delete(lock)

    with _client(s) as c:
        def login(pw: str):  # noqa: ANN202
            return c.post("/v1/auth/token", json={"phone": phone, "password": pw})

        assert [login(WRONG["password"]).status_code for _ in range(3)] == [401, 401, 401]
        locked = login(password)  # the 3rd failure started a 60 s backoff: even the right password waits
        assert locked.status_code == 429, locked.text
        assert locked.json()["error"]["code"] == "login_throttled"
        assert 1 <= int(locked.headers["retry-after"]) <= 60
        end_backoff()
        assert login(WRONG["password"]).status_code == 401  # one guess after the backoff, which then doubles
        again = login(password)
        assert again.status_code == 429
        assert 60 < int(again.headers["retry-after"]) <= 120
        end_backoff()
        assert login(password).status_code == 200
        # Success clears the failures: the free budget is back.
        assert [login(WRONG["password"]).status_code for _ in range(3)] == [401, 401, 401]


@pytest.mark.parametrize("route", ["/v1/auth/register", "/v1/auth/refresh"])
def test_other_auth_routes_are_keyed_by_address(settings, route) -> None:  # noqa: ANN001
    with _client(settings, rate_limits="auth=2/3600") as c:
        codes = [c.post(route, json={}, headers={"Authorization": f"Bearer junk-{i}"}).status_code for i in range(4)]
    assert codes[2:] == [429, 429], codes


def test_an_attacker_cannot_lock_the_owner_out_of_a_known_address(settings, make_user) -> None:  # noqa: ANN001
    """Per-account backoff must not become a lock-out weapon: the owner's usual address keeps its own budget."""
    _, phone, password = make_user("passenger")
    home = "192.0.2.50"
    with _client(settings, address=home) as c:
        assert c.post("/v1/auth/token", json={"phone": phone, "password": password}).status_code == 200
    app = create_app(settings, load_timetable=False)
    for i in range(40):
        TestClient(app, raise_server_exceptions=False, client=(f"203.0.113.{i + 1}", 40000)).post(
            "/v1/auth/token", json={"phone": phone, **WRONG})
    with _client(settings, address="192.0.2.99") as c:  # a new address: locked
        assert c.post("/v1/auth/token", json={"phone": phone, "password": password}).status_code == 429
    with _client(settings, address=home) as c:  # the owner at home: not locked
        assert c.post("/v1/auth/token", json={"phone": phone, "password": password}).status_code == 200
        # ... but guessing from the known address has its own budget and backoff, not a free pass.
        free = settings.login_free_failures
        codes = [c.post("/v1/auth/token", json={"phone": phone, **WRONG}).status_code for _ in range(free + 4)]
        assert codes == [401] * (free + 1) + [429] * 3, codes
