"""The demo's seeded past (maas.demo.history, issue 15): made through the API, exact to the fen, seeded once.

Dates come from the clock the history is seeded against (noon in the demo city's zone of the process's day,
which the suite's clock shift moves), never from a calendar date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.ticketing_support import SHANGHAI, Clock

OPERATORS = ("yunxi-bus", "yunxi-metro", "yunxi-coach", "yunxi-ferry")


@pytest.fixture
def seeded(settings, app) -> dict[str, Any]:  # noqa: ANN001
    from maas.demo.history import seed_history
    from maas.demo_server import build_demo

    info = build_demo(settings)
    now = dt.datetime.now(SHANGHAI).replace(hour=12, minute=0, second=0, microsecond=0)
    report = seed_history(settings, info["credentials"], now=now)
    app.state.planner.refresh()
    app.state.clock = Clock(now)
    return {"info": info, "report": report, "now": now}


def _login(client, info: dict[str, Any], role: str, operator_id: str | None = None) -> dict[str, str]:  # noqa: ANN001
    acc = next(a for a in info["credentials"]["accounts"]
               if a["role"] == role and (operator_id is None or a.get("operator_id") == operator_id))
    r = client.post("/v1/auth/token", json={"phone": acc["phone"], "password": info["credentials"]["password"]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _stats(client, admin: dict[str, str], operator_id: str, start: str, end: str) -> dict[str, Any]:  # noqa: ANN001
    r = client.get(f"/v1/operators/{operator_id}/stats", headers=admin,
                   params={"group": "day", "period_start": start, "period_end": end})
    assert r.status_code == 200, r.text
    return r.json()


def _everything(client, admin: dict[str, str], start: str, end: str) -> Any:  # noqa: ANN001
    runs = client.get("/v1/settlements/runs", headers=admin).json()
    return runs, {op: _stats(client, admin, op, start, end)["totals"] for op in OPERATORS}


def test_seeded_history_is_exact_settled_and_seeded_once(settings, engine, client, seeded) -> None:  # noqa: ANN001
    from clearing import ledger
    from maas.demo.history import seed_history
    from maas.db import session_scope

    report, info, now = seeded["report"], seeded["info"], seeded["now"]
    today = now.date()
    assert report.seeded, report.reason
    assert report.days == [(today - dt.timedelta(days=d)).isoformat() for d in range(7, 0, -1)]
    assert report.refunded_order and len(report.refunded) == 1 and report.validations > 0
    first, last = report.days[0], today.isoformat()

    # the journal balances: every entry, and every account taken together
    with session_scope(engine) as session:
        assert ledger.unbalanced_entries(session) == []
        assert sum(ledger.balances(session, currency="CNY").values()) == 0

    admin = _login(client, info, "admin")
    runs = client.get("/v1/settlements/runs", headers=admin).json()
    assert [r["run_id"] for r in runs] == [report.run_id]
    run = client.get(f"/v1/settlements/runs/{report.run_id}", headers=admin, params={"verify": "true"}).json()
    assert run["verified"] is True
    assert (run["period_start"], run["period_end"]) == report.period == (first, report.days[-1])  # yesterday open

    # the run's totals are the sales of its period minus their refunds, as the API reported them, to the fen
    settled_days = report.days[:-1]
    sales = sum(report.paid[d] for d in settled_days)
    refunds = sum(report.refunded.get(d, 0) for d in settled_days)
    assert run["totals"]["gross"] - run["totals"]["refunds"] == sales - refunds
    assert run["totals"]["net_payable"] == run["totals"]["gross"] - run["totals"]["refunds"] - run["totals"]["commission"] \
        + run["totals"]["adjustments"]
    # ... and each operator's share equals what its console's statistics count for those days
    per_op = {o["operator_id"]: o for o in run["operators"]}
    sold = value_refunded = 0
    for op in OPERATORS:
        stats = _stats(client, admin, op, first, report.period[1])["totals"]
        assert per_op.get(op, {"gross": 0})["gross"] == stats["gross"], op
        sold += stats["gross"]
        value_refunded += stats["refunded"]  # the refunded legs' value, before the refund fee the operator keeps
    assert sold == sales and run["totals"]["refunds"] == refunds
    assert value_refunded == refunds + sum(report.refund_fees.get(d, 0) for d in settled_days)
    # the whole week, yesterday's unsettled sales included, is what was paid
    week = sum(_stats(client, admin, op, first, last)["totals"]["gross"] for op in OPERATORS)
    assert week == sum(report.paid.values())

    # the operator console has a run, its statement, and chart points on several days
    bus = _login(client, info, "operator", "yunxi-bus")
    mine = client.get("/v1/operators/yunxi-bus/settlements", headers=bus).json()
    assert [r["run_id"] for r in mine] == [report.run_id] and mine[0]["totals"]["lines"] > 0
    statement = client.get(f"/v1/settlements/runs/{report.run_id}/statements/yunxi-bus", headers=bus).json()
    assert statement["totals"] == mine[0]["totals"]
    rows = _stats(client, bus, "yunxi-bus", first, last)["rows"]
    assert sum(1 for row in rows if row["validations"] > 0) >= 5
    assert sum(1 for row in rows if row["revenue"] > 0) == 7

    # a second seeding (a restart of `maas demo` on the same data) adds nothing
    before = _everything(client, admin, first, last)
    again = seed_history(settings, info["credentials"], now=now + dt.timedelta(hours=1))
    assert not again.seeded and again.orders == [] and again.run_id is None
    assert _everything(client, admin, first, last) == before


def test_history_is_switched_off_by_flag_or_setting(monkeypatch) -> None:  # noqa: ANN001
    from maas.demo.history import enabled

    monkeypatch.delenv("MAAS_DEMO_HISTORY", raising=False)
    assert enabled() is True
    for off in ("0", "false", "no", "OFF"):
        monkeypatch.setenv("MAAS_DEMO_HISTORY", off)
        assert enabled() is False
    assert enabled(True) is True  # --history wins over the setting
    monkeypatch.setenv("MAAS_DEMO_HISTORY", "1")
    assert enabled() is True and enabled(False) is False
