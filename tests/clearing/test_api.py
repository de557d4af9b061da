"""End to end over HTTP: tickets across three demo-city operators -> uses, refunds -> runs, statements, disputes."""

from __future__ import annotations

import csv
import datetime as dt
import io

from clearing.agreements import set_commission
from clearing.interface import RefundRecord, record_expiry, record_refund
from maas.db import session_scope
from tests.clearing.builders import at, sale, use

BUS, METRO, COACH = "yunxi-bus", "yunxi-metro", "yunxi-coach"  # the demo city's operator ids


def test_settlement_end_to_end(client, login, engine) -> None:  # noqa: ANN001
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    d1, d2 = today - dt.timedelta(days=10), today - dt.timedelta(days=9)
    _, admin = login("admin")
    _, regulator = login("regulator")
    staff = {op: login("operator", op)[1] for op in (BUS, METRO, COACH)}
    with session_scope(engine) as s:
        for op, bp in ((BUS, 500), (METRO, 300), (COACH, 800)):
            set_commission(s, term_id=f"c-{op}", operator_id=op, rate_bp=bp, fixed_per_leg=1, valid_from=d1)
        t1 = sale(s, 500, [(BUS, 3_000, 200), (METRO, 9_000, 400)], day=d1)          # transfer discount 100
        t2 = sale(s, 3_000, [(METRO, 8_000, 400), (COACH, 60_000, 2_800)], day=d1)   # discount 200
        t3 = sale(s, 2_500, [(COACH, 40_000, 2_500)], day=d1)
        t4 = sale(s, 200, [(BUS, 2_000, 200)], day=d1)
        t5 = sale(s, 1_500, [(COACH, 30_000, 1_500)], day=d1)
        use(s, t1, 0)
        use(s, t1, 1)
        use(s, t2, 1)
        record_expiry(s, leg_id=t2.legs[0].leg_id, expired_at=at(d2, 3))
        record_refund(s, RefundRecord("rf-t3", t3.ticket_id, (t3.legs[0].leg_id,), 2_000, "CNY", at(d1, 6)))
        use(s, t4, 0)
    paid_run1 = 500 + 3_000 + 2_500 + 200

    body = {"period_start": d1.isoformat(), "period_end": d2.isoformat()}
    r = client.post("/v1/settlements/runs", json=body, headers=admin)
    assert r.status_code == 201, r.text
    run = r.json()
    assert set(run) >= {"run_id", "period_start", "period_end", "status", "digest", "currency", "totals", "operators"}
    assert run["status"] == "closed" and run["currency"] == "CNY" and len(run["digest"]) == 64
    ops = {o["operator_id"]: o for o in run["operators"]}
    assert set(ops) == {BUS, METRO, COACH}
    for o in ops.values():
        assert o["net_payable"] == o["gross"] - o["refunds"] - o["commission"] + o["adjustments"]
    for key in ("gross", "refunds", "commission", "adjustments", "net_payable"):
        assert run["totals"][key] == sum(o[key] for o in ops.values())
    # bus: 167 (t1, 200/600 of 500) + 200 (t4); commission 5 % + 1 fen per leg.
    assert ops[BUS]["gross"] == 367 and ops[BUS]["commission"] == (8 + 1) + (10 + 1)
    assert ops[COACH]["refunds"] == 2_000
    t = run["totals"]
    assert t["net_payable"] + t["commission"] + t["refunds"] == paid_run1  # to the fen

    again = client.post("/v1/settlements/runs", json=body, headers=admin)
    assert again.status_code == 200 and again.json()["run_id"] == run["run_id"]
    assert again.json()["digest"] == run["digest"]
    got = client.get(f"/v1/settlements/runs/{run['run_id']}?verify=true", headers=regulator)
    assert got.status_code == 200 and got.json()["verified"] is True and got.json()["digest"] == run["digest"]
    assert client.get(f"/v1/settlements/runs/{run['run_id']}", headers=staff[BUS]).status_code == 403
    assert client.post("/v1/settlements/runs", json=body, headers=regulator).status_code == 403

    # Statements: the operator's own lines, JSON and CSV; never another operator's.
    st = client.get(f"/v1/settlements/runs/{run['run_id']}/statements/{BUS}", headers=staff[BUS])
    assert st.status_code == 200
    lines = st.json()["lines"]
    assert {line["leg_id"] for line in lines} == {t1.legs[0].leg_id, t4.legs[0].leg_id}
    assert sum(line["net"] for line in lines) == ops[BUS]["net_payable"] == st.json()["totals"]["net_payable"]
    csv_r = client.get(f"/v1/settlements/runs/{run['run_id']}/statements/{BUS}?format=csv", headers=staff[BUS])
    assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_r.text)))
    assert sorted(int(row["net"]) for row in rows) == sorted(line["net"] for line in lines)
    for other in (METRO, COACH):
        denied = client.get(f"/v1/settlements/runs/{run['run_id']}/statements/{BUS}", headers=staff[other])
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "operator_scope"
        assert t1.legs[0].leg_id not in denied.text
    assert client.get(f"/v1/settlements/runs/{run['run_id']}/statements/{BUS}", headers=admin).status_code == 200

    # After the close: a refund dated inside the closed period, and a dispute of a metro line.
    with session_scope(engine) as s:
        record_refund(s, RefundRecord("rf-t5", t5.ticket_id, (t5.legs[0].leg_id,), 1_200, "CNY", at(d1, 18)))
    wrong = client.post("/v1/disputes", json={"run_id": run["run_id"], "leg_id": t1.legs[0].leg_id,
                                              "reason": "not ours"}, headers=staff[METRO])
    assert wrong.status_code == 404  # a bus line is not in metro's statement
    d = client.post("/v1/disputes", json={"run_id": run["run_id"], "leg_id": t1.legs[1].leg_id,
                                          "reason": "distance agreement says more", "claimed_amount": 50},
                    headers=staff[METRO])
    assert d.status_code == 201, d.text
    assert client.post(f"/v1/disputes/{d.json()['dispute_id']}/resolve", json={"decision": "accept", "amount": 50},
                       headers=staff[METRO]).status_code == 403
    res = client.post(f"/v1/disputes/{d.json()['dispute_id']}/resolve", json={"decision": "accept", "amount": 50,
                                                                            "note": "agreed"}, headers=admin)
    assert res.status_code == 200 and res.json()["status"] == "accepted" and res.json()["adjustment_entry_id"]
    twice = client.post(f"/v1/disputes/{d.json()['dispute_id']}/resolve", json={"decision": "reject"}, headers=admin)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "dispute_closed"

    # The closed run did not change; the next run carries the late refund and the dispute as adjustments.
    assert client.get(f"/v1/settlements/runs/{run['run_id']}?verify=true", headers=admin).json() == {
        **run, "verified": True}
    # the period below ends tomorrow: it may close once today has ended (the app's clock, clearing's zone)
    tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0, 30), dt.timezone(dt.timedelta(hours=8)))
    client.app.state.clock = lambda: tomorrow
    r2 = client.post("/v1/settlements/runs", json={"period_start": d2.isoformat(),
                                                  "period_end": (today + dt.timedelta(days=1)).isoformat()},
                     headers=admin)
    assert r2.status_code == 201, r2.text
    ops2 = {o["operator_id"]: o for o in r2.json()["operators"]}
    assert ops2[COACH]["adjustments"] == 1_500 - 1_200 and ops2[COACH]["refunds"] == 0
    assert ops2[METRO]["adjustments"] == 50
    overlap = client.post("/v1/settlements/runs", json={"period_start": d1.isoformat(),
                                                       "period_end": today.isoformat()}, headers=admin)
    assert overlap.status_code == 409 and overlap.json()["error"]["code"] == "period_overlaps"
    # Across both runs, operators' nets + commission + every refund = what passengers paid + the dispute award.
    t2_ = r2.json()["totals"]
    assert (t["net_payable"] + t2_["net_payable"] + t["commission"] + t2_["commission"] + 2_000 + 1_200
            == paid_run1 + 1_500 + 50)


def test_bad_requests_get_domain_errors(client, login) -> None:  # noqa: ANN001
    _, admin = login("admin")
    r = client.post("/v1/settlements/runs", json={"period_start": "2026-03-02", "period_end": "2026-03-01"},
                    headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_period"
    r = client.post("/v1/settlements/runs", json={"period_start": "2026-03-02"}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = client.get("/v1/settlements/runs/run_nope", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "run_not_found"

