"""Rate limits on Redis: fixed windows per client and route group.

A limit is ``N/seconds`` (settings ``MAAS_RATE_LIMITS``, e.g.
``auth=20/60,plan=120/60,gates=600/60``). Counters live in Redis and may be
lost; when Redis is unreachable the limiter lets requests through and logs it
(the service degrades to unlimited rather than refusing passengers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
import structlog
from fastapi import Depends, Request

from maas.errors import MaasError

log = structlog.get_logger("maas.ratelimit")


class RateLimited(MaasError):
    code = "rate_limited"
    status = 429


@dataclass(frozen=True)
class Limit:
    requests: int
    window_s: int


def parse_limits(spec: str) -> dict[str, Limit]:
    """``"auth=20/60,plan=120/60"`` -> {"auth": Limit(20, 60), ...}; raises ValueError on a bad item."""
    limits: dict[str, Limit] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, _, rule = item.partition("=")
        count, _, window = rule.partition("/")
        if not name or not count.isdigit() or not window.isdigit() or int(window) <= 0:
            raise ValueError(f"bad rate limit {item!r}: use name=requests/seconds")
        limits[name.strip()] = Limit(int(count), int(window))
    return limits


def _client_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth:
        # The bearer token identifies a device or login better than a shared NAT address; hash it, never store it.
        import hashlib

        return "t:" + hashlib.sha256(auth.encode()).hexdigest()[:24]
    return "ip:" + (request.client.host if request.client else "unknown")


def rate_limit(group: str):  # noqa: ANN201
    def dependency(request: Request) -> None:
        limits: dict[str, Limit] = request.app.state.rate_limits
        limit = limits.get(group)
        if limit is None or limit.requests <= 0:
            return
        now = int(time.time())
        window_start = now - now % limit.window_s
        key = f"rl:{group}:{_client_key(request)}:{window_start}"
        client: redis.Redis = request.app.state.redis
        try:
            pipe = client.pipeline()
            pipe.incr(key)
            pipe.expire(key, limit.window_s + 1)
            count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            log.warning("rate_limit_unavailable", group=group, error=type(exc).__name__)
            return
        if count > limit.requests:
            retry_after = window_start + limit.window_s - now
            err = RateLimited(f"too many requests: at most {limit.requests} per {limit.window_s} s for {group}",
                              details={"group": group, "limit": limit.requests, "window_s": limit.window_s,
                                       "retry_after_s": retry_after})
            err.headers = {"Retry-After": str(max(1, retry_after))}  # type: ignore[attr-defined]
            raise err

    return Depends(dependency)
