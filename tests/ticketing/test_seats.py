"""Seat holds never oversell, whatever the concurrency (embedded fakeredis with Lua, and real Redis)."""

from __future__ import annotations

import datetime as dt
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from ticketing import seats

# The clock the code is given, a year behind, at, and a year ahead of the wall clock
# that Redis keeps: holds must follow the injected clock, whatever Redis's own is.
CLOCK_OFFSETS = pytest.mark.parametrize("offset_days", [-365, 0, 365])


def _clock(offset_days: int) -> tuple[dt.datetime, str]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=offset_days)
    return now, now.date().isoformat()


@CLOCK_OFFSETS
def test_concurrent_holds_never_exceed_capacity(settings, offset_days):
    from maas.redis_client import get_redis

    NOW, DAY = _clock(offset_days)
    r = get_redis(settings)
    key = seats.hold_key("yx-coach:YX-QS_0_01", DAY)
    capacity = 25
    wants = [random.Random(i).choice([1, 2, 3]) for i in range(60)]

    def hold(i: int) -> list[int] | None:
        return seats.acquire(r, key=key, service_date=DAY, hold_id=f"off_{i}", seats=wants[i], capacity=capacity,
                             until=NOW + dt.timedelta(minutes=10), now=NOW)

    with ThreadPoolExecutor(max_workers=16) as pool:
        got = list(pool.map(hold, range(len(wants))))
    granted = [s for g in got if g for s in g]
    assert len(granted) == len(set(granted)) <= capacity
    assert capacity - len(granted) < 3  # refused only when the remainder could not fit the request
    assert sorted(granted) == list(range(1, len(granted) + 1))
    assert seats.occupied(r, key=key, now=NOW) == len(granted)
    for i, g in enumerate(got):
        if g is None:
            assert wants[i] > capacity - len(granted)


@CLOCK_OFFSETS
def test_holds_lapse_by_themselves_and_confirmed_seats_stay(settings, offset_days):
    from maas.redis_client import get_redis

    NOW, DAY = _clock(offset_days)
    r = get_redis(settings)
    key = seats.hold_key("yx-coach:T", DAY)
    kw = {"key": key, "service_date": DAY, "capacity": 2, "now": NOW}
    a = seats.acquire(r, hold_id="a", seats=1, until=NOW + dt.timedelta(minutes=10), **kw)
    b = seats.acquire(r, hold_id="b", seats=1, until=NOW + dt.timedelta(minutes=1), **kw)
    assert (a, b) == ([1], [2])
    assert seats.acquire(r, hold_id="c", seats=1, until=NOW + dt.timedelta(minutes=10), **kw) is None
    # "a" is paid: its seat is kept until after the journey; "b" lapses
    later = NOW + dt.timedelta(minutes=5)
    assert seats.acquire(r, key=key, service_date=DAY, capacity=2, now=NOW, hold_id="a", seats=1,
                         until=NOW + dt.timedelta(days=2)) == [1]
    assert seats.acquire(r, key=key, service_date=DAY, capacity=2, now=later, hold_id="c", seats=1,
                         until=later + dt.timedelta(minutes=10)) == [2]
    assert seats.release(r, key=key, hold_id="c") == 1
    assert seats.occupied(r, key=key, now=later) == 1
    assert seats.release(r, key=key, hold_id="a", seat=1) == 1 and seats.occupied(r, key=key, now=later) == 0


@CLOCK_OFFSETS
def test_the_set_lives_past_its_service_day_and_its_longest_hold(settings, offset_days):
    from maas.redis_client import get_redis

    r = get_redis(settings)
    now, day = _clock(offset_days)
    key = seats.hold_key("yx-coach:T", day)
    kw = {"key": key, "service_date": day, "capacity": 2, "now": now}
    assert seats.acquire(r, hold_id="a", seats=1, until=now + dt.timedelta(minutes=10), **kw) == [1]
    ttl_days = r.pttl(key) / 86_400_000
    service_end = dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=3), dt.time(), tzinfo=dt.UTC)
    assert abs(ttl_days - (service_end - now).total_seconds() / 86_400) < 0.01
    # a sold seat kept for a week extends the set's life; a shorter hold never shortens it
    assert seats.acquire(r, hold_id="b", seats=1, until=now + dt.timedelta(days=7), **kw) == [2]
    assert 6.99 < r.pttl(key) / 86_400_000 <= 7
    assert seats.acquire(r, hold_id="a", seats=1, until=now + dt.timedelta(minutes=20), **kw) == [1]
    assert 6.99 < r.pttl(key) / 86_400_000 <= 7
