"""A small, realistic past for the demo city, made through the real API (issue 15).

Over the ``days`` days before the app's clock, a few travellers buy journeys
with the sandbox payment rail, most legs are validated at the demo's gate
devices, the unused ones expire, one order is refunded before it departs, and
one settlement run closes the older part of that past (yesterday stays
unsettled). Everything goes through the HTTP API of an app of our own, served
in-process, whose clock is moved through those days: the same offers, orders,
payments, gates, jobs (expiry, recognition) and settlement code as in use, no
SQL of ours and no figures of ours.

Idempotent: nothing is seeded into a database that has any order already (a
second `maas demo` on the same data directory, or a demo that has been used).
Off with ``maas demo --no-history`` or ``MAAS_DEMO_HISTORY=0``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select

from maas.db import get_engine, session_scope, utcnow
from maas.settings import Settings

LOCAL = ZoneInfo("Asia/Shanghai")  # the demo city's time zone (its feeds' agency_timezone)
DEFAULT_DAYS = 7
#: Jobs a scheduler would run each night; not ``clearing.settle_daily`` (the history makes one run of its own).
NIGHTLY_JOBS = ("ticketing.query_payments", "ticketing.expire_orders", "ticketing.reconcile_refunds",
                "ticketing.expire_legs", "clearing.recognise_uses")
#: (name, resident ID birth date, rider category); ID numbers are generated valid, demo data only.
TRAVELLERS = (("陈静", "19850412", "adult"), ("刘洋", "19920830", "adult"), ("赵敏", "19780215", "adult"),
              ("孙浩", "20010921", "adult"), ("周婷", "19960304", "adult"))
#: (local time, origin, destination, travellers, validated, on the days ``back % m[0] != m[1]`` (days back from
#: today) when ``m`` is given): the day's purchases, so that the days differ a little.
TRIPS = (((7, 10), "yx-bus:YXYZ", "yx-coach:QSX", 1, True, None),
         ((8, 20), "yx-bus:RMGC", "yx-bus:XHGY", 2, True, (3, 2)),
         ((12, 30), "yx-bus:XHGY", "yx-bus:YXYZ", 1, False, (2, 0)),  # never used: its legs expire (breakage)
         ((17, 40), "yx-bus:YXYZ", "yx-bus:RMGC", 1, True, None),
         ((18, 5), "yx-bus:RMGC", "yx-bus:YXYZ", 3, True, (4, 1)))
#: The order refunded (whole, before it leaves): (days after the first day, trip index).
REFUNDED = (1, 1)
_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]


def enabled(flag: bool | None = None) -> bool:
    """``flag`` when given, else ``MAAS_DEMO_HISTORY`` (default on; ``0``/``false``/``no``/``off`` turn it off)."""
    if flag is not None:
        return flag
    return os.environ.get("MAAS_DEMO_HISTORY", "1").strip().lower() not in ("0", "false", "no", "off")


def _resident_id(birth: str, seq: int) -> str:
    body = f"530102{birth}{seq:03d}"  # 530102: a Kunming district code; the check character per GB 11643
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11]


class _Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class HistoryReport:
    seeded: bool
    reason: str = ""
    days: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    paid: dict[str, int] = field(default_factory=dict)  # day -> minor units, the orders' totals as the API gave them
    refunded: dict[str, int] = field(default_factory=dict)  # day -> minor units, the refunds as the API gave them
    refund_fees: dict[str, int] = field(default_factory=dict)  # day -> minor units kept by the operators as fees
    validations: int = 0
    refunded_order: str | None = None
    run_id: str | None = None
    period: tuple[str, str] | None = None

    def summary(self) -> str:
        if not self.seeded:
            return f"not seeded ({self.reason})"
        start, end = self.period or ("", "")
        return (f"{len(self.orders)} orders over {len(self.days)} days ({self.days[0]} .. {self.days[-1]}), "
                f"{self.validations} validations, {len(self.refunded)} refund, settlement run {self.run_id} for [{start}, {end})")


def has_activity(settings: Settings) -> bool:
    """Whether the database has any order (then no history is seeded: it is there, or the demo was used)."""
    from ticketing.models import Order

    with session_scope(get_engine(settings)) as session:
        return session.exec(select(Order.order_id).limit(1)).first() is not None


def seed_history(settings: Settings, credentials: dict[str, Any], *, now: dt.datetime | None = None,
                 days: int = DEFAULT_DAYS) -> HistoryReport:
    """Seeds the past ``days`` days before ``now`` (default: the clock the served app uses) into the demo.

    ``credentials``: what `maas.demo_server.build_demo` wrote (accounts, their password, gate tokens).
    """
    if days < 3:
        raise ValueError("the history spans at least 3 days (a settled period and an unsettled yesterday)")
    if has_activity(settings):
        return HistoryReport(False, "the database has orders already")
    try:
        with warnings.catch_warnings():  # starlette's notice about httpx's successor
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient  # needs httpx (installed by `make install`)
    except ImportError:  # pragma: no cover - a minimal install
        return HistoryReport(False, "httpx is not installed")
    from maas.app import create_app

    now = now or utcnow()
    today = now.astimezone(LOCAL).date()
    app = create_app(settings, load_timetable=False, warm_up=False)
    app.state.planner.refresh()
    app.state.rate_limits = {}  # this app is ours alone, driven by one caller
    clock = _Clock(now)
    app.state.clock = clock
    report = HistoryReport(True)
    # No access line per seeding request (the app's and the in-process client's): a few hundred lines would bury
    # what `maas demo` prints. Warnings and errors still show; the audit log's checkpoints are logged as ever.
    quiet = [logging.getLogger(name) for name in ("httpx", "maas.http")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        _seed(settings, credentials, app, clock, today, days, report, TestClient)
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    return report


def _seed(settings: Settings, credentials: dict[str, Any], app: Any, clock: _Clock, today: dt.date, days: int,
          report: HistoryReport, TestClient: Any) -> None:  # noqa: N803
    from maas.jobs import run_jobs

    now = clock.now
    with TestClient(app, base_url="http://demo-history.local", raise_server_exceptions=True) as client:
        h = _Api(client, credentials)
        passenger, admin = h.login("passenger"), h.login("admin")
        seq = 0
        for back in range(days, 0, -1):
            day = today - dt.timedelta(days=back)
            report.days.append(day.isoformat())
            for i, ((hour, minute), origin, destination, n, validated, skip) in enumerate(TRIPS):
                refund = (days - back, i) == REFUNDED
                if skip is not None and back % skip[0] == skip[1] and not refund:
                    continue
                clock.now = dt.datetime.combine(day, dt.time(hour, minute), LOCAL)
                its = h.ok(client.get("/v1/plan", params={
                    "from": origin, "to": destination, "window_s": 3600, "max_itineraries": 5,
                    "depart_at": (clock.now + dt.timedelta(minutes=15)).isoformat()}))["itineraries"]
                it = next((x for x in its if any(leg["mode"] != "WALK" for leg in x["legs"])), None)
                if it is None:
                    continue
                travellers = []
                for k in range(n):
                    name, birth, category = TRAVELLERS[(back + i + k) % len(TRAVELLERS)]
                    seq += 1
                    travellers.append({"name": name, "id_type": "cn_resident_id", "rider_category": category,
                                       "id_number": _resident_id(birth, seq)})
                offer = h.ok(client.post("/v1/offers", headers=passenger, json={
                    "itinerary": it, "travelers": [{"rider_category": t["rider_category"]} for t in travellers]}))
                order = h.ok(client.post("/v1/orders", json={
                    "offer_id": offer["offer_id"], "travelers": travellers, "payment_method": "sandbox"},
                    headers={**passenger, "Idempotency-Key": f"demo-history-{day.isoformat()}-{i}"}))
                clock.now += dt.timedelta(minutes=2)
                paid = h.ok(client.post(order["payment"]["confirm_url"], headers=passenger))
                if paid["status"] != "ticketed":
                    raise RuntimeError(f"demo history: order {order['order_id']} is {paid['status']}")
                report.orders.append(order["order_id"])
                report.paid[day.isoformat()] = report.paid.get(day.isoformat(), 0) + offer["total"]["amount"]
                got = h.ok(client.get(f"/v1/orders/{order['order_id']}", headers=passenger))
                if refund:  # one whole order refunded before it departs
                    legs = [leg["leg_id"] for t in got["tickets"] for leg in t["legs"]]
                    answer = h.ok(client.post(f"/v1/orders/{order['order_id']}/refunds", headers=passenger,
                                              json={"leg_ids": legs}))
                    report.refunded[day.isoformat()] = _amount(answer, "amount")
                    report.refund_fees[day.isoformat()] = _amount(answer, "fee")
                    report.refunded_order = order["order_id"]
                elif validated:
                    report.validations += h.ride(got["tickets"], clock, passenger)
            # the night after: what a scheduler runs (expiries, recognition of the day's uses)
            at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(3, 0), LOCAL)
            for job in NIGHTLY_JOBS:
                run_jobs(settings, job, now=at.astimezone(dt.UTC))
        clock.now = now
        start, end = today - dt.timedelta(days=days), today - dt.timedelta(days=1)
        run = client.post("/v1/settlements/runs", headers=admin, json={
            "period_start": start.isoformat(), "period_end": end.isoformat()})
        report.run_id = h.ok(run)["run_id"]
        report.period = (start.isoformat(), end.isoformat())


def _amount(refund: dict[str, Any], key: str) -> int:
    value = refund.get(key)
    if isinstance(value, dict):  # a Money object
        value = value.get("amount")
    if not isinstance(value, int):
        raise RuntimeError(f"demo history: unexpected refund answer {sorted(refund)}")
    return value


class _Api:
    def __init__(self, client: Any, credentials: dict[str, Any]) -> None:
        self.client = client
        self.credentials = credentials
        self.gates = {g["operator_id"]: g for g in credentials["gates"]}

    @staticmethod
    def ok(r: Any) -> Any:
        if r.status_code >= 300:
            raise RuntimeError(f"demo history: {r.request.method} {r.request.url.path} -> {r.status_code} "
                               f"{r.text[:300]}")
        return r.json()

    def login(self, role: str) -> dict[str, str]:
        acc = next(a for a in self.credentials["accounts"] if a["role"] == role)
        token = self.ok(self.client.post("/v1/auth/token", json={
            "phone": acc["phone"], "password": self.credentials["password"]}))["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def ride(self, tickets: list[dict[str, Any]], clock: _Clock, passenger: dict[str, str]) -> int:
        """Each traveller shows the ticket's QR at the gate of every leg, a few minutes before it leaves."""
        accepted = 0
        for position in range(len(tickets[0]["legs"])):  # the travellers of an order ride together
            for ticket in tickets:
                leg = ticket["legs"][position]
                gate = self.gates.get(leg["operator_id"])
                if gate is None:
                    continue
                clock.now = max(clock.now, dt.datetime.fromisoformat(leg["departure"]) - dt.timedelta(minutes=3))
                qr = self.ok(self.client.get(f"/v1/tickets/{ticket['ticket_id']}/qr", headers=passenger))
                result = self.ok(self.client.post("/v1/gates/validate", headers={
                    "Authorization": f"Bearer {gate['token']}"}, json={
                    "gate_id": gate["gate_id"], "stop_id": leg["from_stop_id"], "payload": qr["payload"]}))
                accepted += result["result"] == "accepted"
        return accepted
