"""Failed-login budget per account, with exponential backoff (in Redis).

Each phone number (an account or not, so the answers do not reveal which
numbers exist) has ``login_free_failures`` free failed logins. After that one
attempt is allowed per backoff period, which doubles from ``login_backoff_s``
to ``login_backoff_max_s``; while it runs every attempt, even with the right
password, gets 429 with ``Retry-After``. A successful login, or a quiet
``login_failure_window_s``, forgets the failures.

So that the backoff is not a weapon for locking owners out, an address the
account logged in from successfully (within ``login_known_address_days``)
has a budget of its own for that account, with the same backoff: an attacker
elsewhere cannot lock the owner out of home, and guessing from the owner's
address is throttled all the same.

An attempt is counted as a failure *before* the password is checked and
forgiven on success, so concurrent guesses cannot all slip in before the
first failure is recorded. The keys hold HMACs of the phone number and the
address, never either. Redis errors propagate (503): an outage must not open
unlimited guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import redis

from maas.ratelimit import RateLimited
from maas.settings import Settings


class LoginThrottled(RateLimited):
    code = "login_throttled"


@dataclass(frozen=True)
class Attempt:
    key: str
    #: ``la:<account>:<address>``: marks the address as the owner's after a success.
    known_key: str

    @property
    def failures(self) -> str:
        return f"lf:{self.key}"

    @property
    def lock(self) -> str:
        return f"ll:{self.key}"


def _mac(settings: Settings, label: bytes, text: str) -> str:
    key = settings.secret("blind_index_key").encode()
    return hmac.new(key, label + text.encode(), hashlib.sha256).hexdigest()[:32]


def _account_key(settings: Settings, phone: str) -> str:
    from maas.accounts import InvalidPhone, normalise_phone

    try:
        ident = normalise_phone(phone)
    except InvalidPhone:
        ident = phone.strip()
    return _mac(settings, b"login:", ident)


def backoff_s(settings: Settings, failures: int) -> int:
    """The lock after the ``failures``-th failure (0 while failures are free)."""
    over = failures - settings.login_free_failures
    if over <= 0:
        return 0
    return min(settings.login_backoff_max_s, settings.login_backoff_s * 2 ** min(over - 1, 30))


def _throttled(client: redis.Redis, attempt: Attempt) -> LoginThrottled:
    ttl_ms = int(client.pttl(attempt.lock))
    retry = max(1, -(-ttl_ms // 1000)) if ttl_ms > 0 else 1
    err = LoginThrottled("too many failed logins for this account: try again later",
                         details={"retry_after_s": retry})
    err.headers = {"Retry-After": str(retry)}  # type: ignore[attr-defined]
    return err


def begin(client: redis.Redis, settings: Settings, phone: str, address: str = "") -> Attempt:
    """Admit one login attempt from ``address`` (counted as a failure until `succeeded`), or raise
    LoginThrottled."""
    account = _account_key(settings, phone)
    known_key = f"la:{account}:{_mac(settings, b'addr:', address)[:16]}"
    known = bool(address) and bool(client.exists(known_key))
    attempt = Attempt(f"{account}:{known_key[-16:]}" if known else account, known_key)
    if client.exists(attempt.lock):
        raise _throttled(client, attempt)
    pipe = client.pipeline()
    pipe.incr(attempt.failures)
    pipe.expire(attempt.failures, settings.login_failure_window_s)
    failures = int(pipe.execute()[0])
    lock_s = backoff_s(settings, failures)
    if lock_s:
        # One attempt per backoff period: the attempt that starts the period is the one allowed.
        if not client.set(attempt.lock, str(int(time.time()) + lock_s), nx=True, ex=lock_s):
            client.decr(attempt.failures)  # refused attempts do not lengthen the backoff
            raise _throttled(client, attempt)
    return attempt


def succeeded(client: redis.Redis, settings: Settings, attempt: Attempt) -> None:
    pipe = client.pipeline()
    pipe.delete(attempt.failures, attempt.lock)
    pipe.set(attempt.known_key, "1", ex=settings.login_known_address_days * 86400)
    pipe.execute()
