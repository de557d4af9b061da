"""Revocation markers for access tokens (in Redis), checked on every authenticated request.

Access tokens are stateless and live ``access_token_ttl_s``; refresh tokens
are revoked in the database. So that logout, theft detection and disabling
take effect at once, revoking also leaves a marker in Redis that outlives
every access token it concerns (``access_token_ttl_s`` + a minute):

- ``rv:f:<family>``: every access token of that login (the ``fam`` claim) is
  refused (logout, re-use of a rotated refresh token);
- ``rv:u:<user_id>`` = unix time: every access token of that user issued at
  or before that second is refused (account disabled).

The check is one ``MGET`` per request. A Redis outage makes it raise (503):
failing open would bring the 15 minutes back. Losing Redis data loses only
the markers, never the database revocations; tokens then die at expiry.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from maas.errors import TokenRevoked
from maas.settings import Settings

_MARGIN_S = 60


def _ttl(settings: Settings) -> int:
    return settings.access_token_ttl_s + _MARGIN_S


def revoke_families(client: redis.Redis, settings: Settings, families: list[str] | set[str]) -> None:
    if not families:
        return
    pipe = client.pipeline()
    for family in families:
        pipe.set(f"rv:f:{family}", "1", ex=_ttl(settings))
    pipe.execute()


def revoke_user(client: redis.Redis, settings: Settings, user_id: str, *, at: float | None = None) -> None:
    client.set(f"rv:u:{user_id}", str(int(at if at is not None else time.time())), ex=_ttl(settings))


def check_access(client: redis.Redis, claims: dict[str, Any]) -> None:
    """Raise TokenRevoked when the token's login or user has been revoked since it was issued."""
    family = claims.get("fam")
    keys = [f"rv:u:{claims['sub']}", f"rv:f:{family}" if isinstance(family, str) else "rv:f:"]
    user_mark, family_mark = client.mget(keys)
    if family_mark is not None and isinstance(family, str):
        raise TokenRevoked("the session has been logged out or revoked")
    if user_mark is not None:
        try:
            since = int(user_mark)
        except ValueError:
            since = int(time.time())
        if int(claims.get("iat", 0)) <= since:
            raise TokenRevoked("the account's tokens have been revoked")


def clear_user(client: redis.Redis, user_id: str) -> None:
    """An enabled account may log in anew; its old logins stay revoked by their family markers."""
    client.delete(f"rv:u:{user_id}")
