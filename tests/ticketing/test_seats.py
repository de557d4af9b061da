"""Seat holds never oversell, whatever the concurrency (embedded fakeredis with Lua, and real Redis)."""

from __future__ import annotations

import datetime as dt
import random
from concurrent.futures import ThreadPoolExecutor

from ticketing import seats

NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
DAY = "2026-11-22"


def test_concurrent_holds_never_exceed_capacity(settings):
    from maas.redis_client import get_redis

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


def test_holds_lapse_by_themselves_and_confirmed_seats_stay(settings):
    from maas.redis_client import get_redis

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
