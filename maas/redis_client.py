"""One Redis client factory.

``REDIS_URL`` selects a real server; without it (the embedded default) an
in-process fakeredis stands in. Redis only ever holds what may be lost or
rebuilt: rate-limit counters, idempotency keys, seat holds with a TTL, replay
caches, the route-result cache. Money, tickets and the ledger are in the
database.
"""

from __future__ import annotations

import threading

import redis

from maas.settings import Settings

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def get_redis(settings: Settings) -> redis.Redis:
    key = settings.redis_url or "fakeredis://"
    with _lock:
        client = _clients.get(key)
        if client is None:
            if settings.redis_url:
                client = redis.Redis.from_url(settings.redis_url, socket_timeout=2.0,
                                              socket_connect_timeout=2.0, health_check_interval=30)
            else:
                import fakeredis

                client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
            _clients[key] = client
    return client


def redis_ok(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def reset_clients() -> None:
    with _lock:
        for client in _clients.values():
            try:
                client.close()
            except redis.RedisError:
                pass
        _clients.clear()
