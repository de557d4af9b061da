"""Rate limits: 429 with Retry-After past the limit, per client, per group."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from maas.app import create_app
from maas.ratelimit import parse_limits


# Limits count in fixed windows (aligned to multiples of the window): the tests use hour-long windows so
# that their few requests never straddle a window's end, which would reset the count mid-test.
@pytest.fixture
def limited_client(settings):  # noqa: ANN001, ANN201
    app = create_app(settings.model_copy(update={"rate_limits": "auth=3/3600,plan=0/3600"}))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_auth_is_limited_with_retry_after(limited_client) -> None:  # noqa: ANN001
    body = {"phone": "13000000000", "password": "whatever-pass"}
    codes = [limited_client.post("/v1/auth/token", json=body).status_code for _ in range(3)]
    assert codes == [401, 401, 401]
    r = limited_client.post("/v1/auth/token", json=body)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 3601
    # A fresh Authorization header buys no new budget on a route anyone may call (tests/security); another
    # client address has its own; other groups are not affected.
    junk = limited_client.post("/v1/auth/token", json=body, headers={"Authorization": "Bearer someone-else"})
    assert junk.status_code == 429
    with TestClient(limited_client.app, raise_server_exceptions=False, client=("192.0.2.1", 1000)) as other:
        assert other.post("/v1/auth/token", json=body).status_code == 401
    assert limited_client.get("/health").status_code == 200


def test_parse_limits() -> None:
    assert parse_limits("auth=20/60, plan=5/1") == {"auth": parse_limits("auth=20/60")["auth"],
                                                     "plan": parse_limits("plan=5/1")["plan"]}
    for bad in ("auth", "auth=x/60", "auth=5/0", "=5/60"):
        with pytest.raises(ValueError):
            parse_limits(bad)
