"""Rate limits on Redis: fixed windows per client and route group.

A limit is ``N/seconds`` (settings ``MAAS_RATE_LIMITS``, e.g.
``auth=20/60,plan=120/60,gates=600/60``). Counters live in Redis and may be
lost; when Redis is unreachable the limiter lets requests through and logs it
(the service degrades to unlimited rather than refusing passengers).

Who is "one client": on routes anyone may call (``by_address``, e.g. the
``auth`` group) always the client address, because a caller chooses its own
``Authorization`` header; elsewhere the bearer token (a device or a login)
when one is sent. The client address is the TCP peer, or, when the peer is
one of ``MAAS_TRUSTED_PROXIES``, the right-most ``X-Forwarded-For`` hop that
is not a trusted proxy (what a client writes further left is not believed).
IPv6 clients are keyed by their /64, which one subscriber usually holds whole.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from dataclasses import dataclass
from functools import lru_cache

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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` -> networks; raises ValueError on a bad item."""
    networks = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"bad proxy address {item!r}: use addresses or CIDR networks") from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: tuple[Network, ...]) -> bool:
    return ip is not None and any(ip in net for net in networks)


def client_address(request: Request) -> str:
    """The client's address, believing ``X-Forwarded-For`` only from trusted proxies."""
    peer = request.client.host if request.client else "unknown"
    settings = getattr(request.app.state, "settings", None)
    networks = parse_networks(getattr(settings, "trusted_proxies", "") or "")
    if not networks or not _trusted(_ip(peer), networks):
        return peer
    hops = [h.strip() for value in request.headers.getlist("x-forwarded-for") for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return peer  # garbage where an address belongs: fall back to the proxy itself
        if not _trusted(ip, networks):
            return str(ip)
    return str(_ip(hops[0])) if hops else peer


def address_key(address: str) -> str:
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return "ip6:" + str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return "ip:" + (str(ip.ipv4_mapped) if isinstance(ip, ipaddress.IPv6Address) else address)


def _client_key(request: Request, *, by_address: bool = False) -> str:
    auth = request.headers.get("authorization", "")
    if auth and not by_address:
        # The bearer token identifies a device or login better than a shared NAT address; hash it, never store it.
        return "t:" + hashlib.sha256(auth.encode()).hexdigest()[:24]
    return address_key(client_address(request))


def rate_limit(group: str, *, by_address: bool = False):  # noqa: ANN201
    """A dependency limiting ``group``; ``by_address`` for routes anyone may call (keys ignore Authorization)."""

    def dependency(request: Request) -> None:
        limits: dict[str, Limit] = request.app.state.rate_limits
        limit = limits.get(group)
        if limit is None or limit.requests <= 0:
            return
        now = int(time.time())
        window_start = now - now % limit.window_s
        key = f"rl:{group}:{_client_key(request, by_address=by_address)}:{window_start}"
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
