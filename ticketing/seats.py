"""Seat holds on reserved-seat trips (coach), in Redis, never oversold.

One sorted set per (trip, service date): ``seats:<trip_id>:<YYYY-MM-DD>``;
each member ``"<seat>|<hold_id>"`` is one seat, its score the hold's expiry in
epoch milliseconds. A hold that is not confirmed simply expires: every script
first drops members whose score is in the past. A sold seat (paid order) is a
member whose score is the end of the journey (+2 days), so it outlives any
hold. All changes run as one Lua script, so concurrent offers on any number of
API workers see one consistent count (Redis runs a script atomically).

Redis only holds what can be rebuilt: the sold seats are also in the database
(`TicketLeg.seat`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import redis

# KEYS[1] set; ARGV: now_ms, expiry_ms, capacity, n, hold_id, key_ttl_ms.
# The key's lifetime is relative (PEXPIRE, never shortened), so it follows the
# caller's clock (``now``) and not Redis's: an injected clock stays consistent.
# Returns the hold's seat numbers, or {} when the trip cannot seat n more.
_ACQUIRE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local suffix = '|' .. ARGV[5]
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. now)
local members = redis.call('ZRANGE', key, 0, -1)
local mine = {}
local taken = {}
local others = 0
for _, m in ipairs(members) do
  local seat = tonumber(string.match(m, '^(%d+)|'))
  if string.sub(m, -string.len(suffix)) == suffix then
    table.insert(mine, seat)
  else
    taken[seat] = true
    others = others + 1
  end
end
if #mine == n then
  for _, seat in ipairs(mine) do redis.call('ZADD', key, 'XX', ARGV[2], seat .. suffix) end
  if redis.call('PTTL', key) < tonumber(ARGV[6]) then redis.call('PEXPIRE', key, ARGV[6]) end
  return mine
end
for _, seat in ipairs(mine) do redis.call('ZREM', key, seat .. suffix) end
if others + n > cap then return {} end
local out = {}
local seat = 1
while #out < n do
  if not taken[seat] then
    table.insert(out, seat)
    redis.call('ZADD', key, ARGV[2], seat .. suffix)
  end
  seat = seat + 1
end
if redis.call('PTTL', key) < tonumber(ARGV[6]) then redis.call('PEXPIRE', key, ARGV[6]) end
return out
"""

_RELEASE = """
local suffix = '|' .. ARGV[1]
local removed = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(m, -string.len(suffix)) == suffix then
    local seat = string.match(m, '^(%d+)|')
    if ARGV[2] == '' or ARGV[2] == seat then
      removed = removed + redis.call('ZREM', KEYS[1], m)
    end
  end
end
return removed
"""


# Moves a hold to chosen seats. KEYS[1] set; ARGV: now_ms, expiry_ms, hold_id, key_ttl_ms, seat...
# Returns 1 when the hold now holds exactly those seats; 0 when one is held or sold by another hold
# (nothing changes then); -1 when the hold has lapsed (it holds no seat any more: ask for a new offer).
_CHOOSE = """
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[1])
local suffix = '|' .. ARGV[3]
local mine = {}
local taken = {}
for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
  local seat = string.match(m, '^(%d+)|')
  if string.sub(m, -string.len(suffix)) == suffix then table.insert(mine, m) else taken[seat] = true end
end
if #mine == 0 then return -1 end
for i = 5, #ARGV do
  if taken[ARGV[i]] then return 0 end
end
for _, m in ipairs(mine) do redis.call('ZREM', key, m) end
for i = 5, #ARGV do redis.call('ZADD', key, ARGV[2], ARGV[i] .. suffix) end
if redis.call('PTTL', key) < tonumber(ARGV[4]) then redis.call('PEXPIRE', key, ARGV[4]) end
return 1
"""


def hold_key(trip_id: str, service_date: str) -> str:
    return f"seats:{trip_id}:{service_date}"


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def _key_ttl_ms(service_date: str, until: dt.datetime, now: dt.datetime) -> int:
    """How long the set must live, from ``now``: past the service day (+3 days) and past every hold in it."""
    day = dt.date.fromisoformat(service_date)
    end = max(dt.datetime.combine(day + dt.timedelta(days=3), dt.time(), tzinfo=dt.UTC), until)
    return max(_ms(end) - _ms(now), 60_000)


def acquire(client: redis.Redis, *, key: str, service_date: str, hold_id: str, seats: int, capacity: int,
            until: dt.datetime, now: dt.datetime) -> list[int] | None:
    """Holds (or extends the hold of) ``seats`` seats until ``until``; ``None`` when sold out.

    Idempotent per ``hold_id``: calling it again with the same count extends
    the same seats; if the hold had expired it takes free seats again.
    """
    out = client.eval(_ACQUIRE, 1, key, _ms(now), _ms(until), capacity, seats, hold_id,
                      _key_ttl_ms(service_date, until, now))
    got = [int(s) for s in out]
    return got if len(got) == seats else None


def release(client: redis.Redis, *, key: str, hold_id: str, seat: int | None = None) -> int:
    """Frees a hold's seats (or only ``seat``); returns how many were removed."""
    return int(client.eval(_RELEASE, 1, key, hold_id, "" if seat is None else str(seat)))


def occupied(client: redis.Redis, *, key: str, now: dt.datetime) -> int:
    """Seats held or sold right now."""
    return int(client.zcount(key, _ms(now), "+inf"))


def release_all(client: redis.Redis, holds: Sequence[dict]) -> None:
    for h in holds:
        release(client, key=h["key"], hold_id=h["hold_id"])


def choose(client: redis.Redis, *, key: str, service_date: str, hold_id: str, seats: Sequence[int],
           until: dt.datetime, now: dt.datetime) -> int:
    """Moves the (live) hold ``hold_id`` to exactly ``seats``, atomically: ``1`` done; ``0`` a seat is held or
    sold by another hold (nothing changed); ``-1`` the hold has lapsed. Seat numbers are checked by the caller."""
    return int(client.eval(_CHOOSE, 1, key, _ms(now), _ms(until), hold_id, _key_ttl_ms(service_date, until, now),
                           *[str(int(x)) for x in seats]))


def taken_by_others(client: redis.Redis, *, key: str, hold_id: str, now: dt.datetime) -> list[int]:
    """Seat numbers held or sold right now by any hold but ``hold_id``, ascending."""
    suffix = "|" + hold_id
    out = set()
    for m in client.zrangebyscore(key, _ms(now), "+inf"):
        m = m.decode() if isinstance(m, bytes) else m
        if not m.endswith(suffix):
            out.add(int(m.split("|", 1)[0]))
    return sorted(out)
