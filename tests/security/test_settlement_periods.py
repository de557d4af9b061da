"""Issue 12, item 3: a settlement run for a period that has not ended (or for absurd dates) is refused.

The attack (over HTTP, as an admin): ``POST /v1/settlements/runs`` for ``[9999-12-30, 9999-12-31)``
swept every queued entry, today's included, into a closed run as adjustments. Now a period must end
by the current business day (the app's clock, in the clearing time zone) and start in a sane year;
nothing is settled by a refused request.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from clearing.interface import record_expiry
from maas.db import session_scope
from tests.clearing.builders import sale
from tests.ticketing_support import Clock

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def queued(app, engine):  # noqa: ANN001, ANN201
    """A clock at 10:00 on a business day, and a leg recognised today (queued for settlement)."""
    today = dt.datetime.now(SHANGHAI).date() - dt.timedelta(days=3)
    app.state.clock = Clock(dt.datetime.combine(today, dt.time(10, 0), SHANGHAI))
    with session_scope(engine) as s:
        t = sale(s, 300, [("yunxi-bus", 3_000, 300)], day=today)
        record_expiry(s, leg_id=t.legs[0].leg_id, expired_at=app.state.clock.now)
    return today


def _run(client, headers, start: str, end: str):  # noqa: ANN001, ANN202
    return client.post("/v1/settlements/runs", headers=headers, json={"period_start": start, "period_end": end})


def _queue_size(engine) -> int:  # noqa: ANN001
    import sqlalchemy as sa

    from clearing.models import SettleQueue

    with session_scope(engine) as s:
        return s.execute(sa.select(sa.func.count()).select_from(SettleQueue)).scalar_one()


@pytest.mark.parametrize("start,end", [("9999-12-30", "9999-12-31"), ("+1", "+2"), ("0", "+1"), ("-1", "+1")])
def test_periods_that_have_not_ended_are_refused(client, login, engine, queued, start, end):  # noqa: ANN001
    _, admin = login("admin")

    def day(x: str) -> str:
        return (queued + dt.timedelta(days=int(x))).isoformat() if x[0] in "+-0" else x

    before = _queue_size(engine)
    r = _run(client, admin, day(start), day(end))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "period_not_ended"
    assert r.json()["error"]["details"]["business_day"] == queued.isoformat()
    assert _queue_size(engine) == before > 0  # nothing swept
    assert client.get("/v1/settlements/runs", headers=admin).json() == []


@pytest.mark.parametrize("start,end", [("0001-01-01", "0001-01-02"), ("1969-12-31", "1970-01-01")])
def test_unreasonable_dates_are_refused(client, login, engine, queued, start, end):  # noqa: ANN001
    _, admin = login("admin")
    r = _run(client, admin, start, end)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_period", r.text


def test_a_period_that_ended_yesterday_settles_and_today_stays_queued(client, login, engine, queued):  # noqa: ANN001
    _, admin = login("admin")
    r = _run(client, admin, (queued - dt.timedelta(days=1)).isoformat(), queued.isoformat())
    assert r.status_code == 201, r.text
    assert r.json()["totals"]["gross"] == 0 and _queue_size(engine) == 1  # today's leg waits for its own run
    r = _run(client, admin, queued.isoformat(), (queued + dt.timedelta(days=1)).isoformat())
    assert r.status_code == 422  # today has not ended at 10:00
    from maas.journeys import now

    client.app.state.clock.advance(hours=14)  # 00:00 the next day
    assert now(client.app).astimezone(SHANGHAI).date() == queued + dt.timedelta(days=1)
    r = _run(client, admin, queued.isoformat(), (queued + dt.timedelta(days=1)).isoformat())
    assert r.status_code == 201 and r.json()["totals"]["gross"] == 300 and _queue_size(engine) == 0
