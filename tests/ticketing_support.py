"""Builders shared by the ticketing tests: the demo city loaded into an app, a movable clock, travellers.

Not fixtures of their own DB: everything runs on the shared ``settings`` /
``engine`` / ``client`` fixtures of tests/conftest.py (both backends).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

SHANGHAI = ZoneInfo("Asia/Shanghai")
_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]


def resident_id(region: str = "110101", birth: str = "19900307", seq: str = "123") -> str:
    """A GB 11643-valid resident ID number (check character computed)."""
    body = region + birth + seq
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, _WEIGHTS)) % 11]


class Clock:
    """A settable clock for ``app.state.clock`` (feeds have fixed service dates)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now = self.now + dt.timedelta(**kw)


def load_feeds(app: Any, engine: Any, feeds: list[tuple[Path, str, str]], cache_dir: Path) -> None:
    """Imports ``(path, feed_id, operator_id)`` feeds and loads the timetable (compiled once per cache_dir)."""
    from maas.db import session_scope
    from maas.feeds import import_feed

    settings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    link = settings.timetable_dir
    if not link.exists():
        os.symlink(cache_dir, link)
    with session_scope(engine) as session:
        for path, feed_id, operator_id in feeds:
            import_feed(session, path=path, feed_id=feed_id, operator_id=operator_id)
    app.state.planner.refresh()


def demo_day() -> dt.date:
    """A day of the demo's service window that is not its holiday (tomorrow, or the day after)."""
    from maas.demo import demo_holiday

    day = dt.date.today() + dt.timedelta(days=1)
    return day + dt.timedelta(days=1) if day == demo_holiday(dt.date.today()) else day


def plan(client: Any, origin: str, destination: str, depart: dt.datetime, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/plan", params={"from": origin, "to": destination, "depart_at": depart.isoformat(),
                                       **params})
    assert r.status_code == 200, r.text
    return r.json()["itineraries"]


def pick(itineraries: list[dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """The first itinerary whose transit legs have exactly these modes, in order."""
    for it in itineraries:
        if [leg["mode"] for leg in it["legs"] if leg["mode"] != "WALK"] == modes:
            return it
    raise AssertionError(f"no itinerary with modes {modes}: "
                         f"{[[x['mode'] for x in it['legs']] for it in itineraries]}")


def traveler(name: str = "张三", rider_category: str = "adult", **kw: Any) -> dict[str, Any]:
    return {"name": name, "id_type": "cn_resident_id", "id_number": kw.pop("id_number", resident_id()),
            "rider_category": rider_category, **kw}


def buy(client: Any, headers: dict[str, str], itinerary: dict[str, Any], travelers: list[dict[str, Any]],
        key: str | None = None, **order_fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Offer then order (``order_fields``: e.g. ``payment_method``, ``payer_id``); returns (offer, order) JSON."""
    r = client.post("/v1/offers", headers=headers, json={
        "itinerary": itinerary, "travelers": [{"rider_category": t["rider_category"]} for t in travelers]})
    assert r.status_code == 201, r.text
    offer = r.json()
    h = dict(headers, **({"Idempotency-Key": key} if key else {}))
    r = client.post("/v1/orders", headers=h, json={"offer_id": offer["offer_id"], "travelers": travelers,
                                                   **order_fields})
    assert r.status_code == 201, r.text
    return offer, r.json()


def gate_headers(engine: Any, operator_id: str, stop_id: str | None = None) -> tuple[str, dict[str, str]]:
    """A gate standing at ``stop_id``, or (without one) a gate explicitly allowed to roam."""
    from maas import accounts
    from maas.db import session_scope

    with session_scope(engine) as session:
        gate, token = accounts.create_gate(session, operator_id=operator_id, stop_id=stop_id,
                                           roaming=stop_id is None)
    return gate.gate_id, {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, Path]:
    """The demo city written once per module: (folder, feeds, shared timetable cache)."""
    from maas.demo import write_demo_city

    out = tmp_path_factory.mktemp("yunxi")
    return out, write_demo_city(out / "city"), out / "timetables"


@pytest.fixture
def demo(app, engine, city):  # noqa: ANN001, ANN201
    """The demo city imported into ``app``; the app's clock (returned) starts at 07:30 local on `demo_day`."""
    _out, feeds, cache = city
    load_feeds(app, engine, [(f.path, f.feed_id, f.operator_id) for f in feeds], cache)
    clock = Clock(dt.datetime.combine(demo_day(), dt.time(7, 30), SHANGHAI))
    app.state.clock = clock
    return clock


def journey(client: Any, clock: Clock) -> dict[str, Any]:
    """A bus + metro + coach itinerary (云溪一中 -> 青石县) leaving after the clock's time."""
    its = plan(client, "yx-bus:YXYZ", "yx-coach:QSX", clock.now + dt.timedelta(minutes=30), window_s=3600,
               max_itineraries=10)
    return pick(its, ["BUS", "SUBWAY", "COACH"])
