"""Issue 12 item 15: hostile input gets a 4xx with a machine-readable code, never a bare 500.

The attacks, over HTTP on both backends: NUL bytes (and other control characters, unpaired surrogates) in text
fields, query parameters and path parameters; integers past 64 bits (commission ``fixed_per_leg``,
agreement ``priority``, dispute ``claimed_amount``, resolve ``amount``); planning times in year 9999 and
0001; a chunked body over the size limit (which came back as 400 instead of 413). PostgreSQL refuses NUL
bytes and overflows its integer columns, SQLite refuses unpaired surrogates: each was a 500 somewhere.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient

from maas.app import create_app
from maas.db import session_scope
from tests.clearing.builders import sale, use

TOO_BIG = 2**64 + 7
TZ = dt.timezone(dt.timedelta(hours=8))


def _refused(r, *codes: str) -> None:  # noqa: ANN001
    assert 400 <= r.status_code < 500, f"{r.status_code} {r.text[:500]}"
    code = r.json()["error"]["code"]
    assert code in (codes or ("validation_error",)), r.text[:500]


@pytest.fixture
def admin(login) -> dict[str, str]:  # noqa: ANN001
    return login("admin")[1]


@pytest.mark.parametrize("bad", ["Bus\u0000Co", "Bus\u0001Co", "Bus\ud800Co", "Bus\u001bCo"])
def test_control_characters_in_operator_name(client, admin, bad: str) -> None:  # noqa: ANN001
    body = json.dumps({"operator_id": "op-nul", "name": bad})  # ASCII escapes: "\\u0000", "\\ud800"
    r = client.post("/v1/admin/operators", content=body, headers={**admin, "Content-Type": "application/json"})
    _refused(r)
    assert r.json()["error"]["details"]["fields"][0]["field"] == "body.name"
    ok = client.post("/v1/admin/operators", json={"operator_id": "op-ok", "name": "Bus\tCo 公交\n"}, headers=admin)
    assert ok.status_code == 201, ok.text  # tabs, newlines and any script stay allowed


def test_nul_in_register_name_and_gate_stop(client, admin, engine) -> None:  # noqa: ANN001
    r = client.post("/v1/auth/register", json={"phone": "+14155552671", "password": "long enough pw",
                                               "name": "Zhang\u0000San"})
    _refused(r)
    client.post("/v1/admin/operators", json={"operator_id": "op-g", "name": "G"}, headers=admin)
    _refused(client.post("/v1/admin/gates", json={"operator_id": "op-g", "stop_id": "x\u0000y"}, headers=admin))
    gate = client.post("/v1/admin/gates", json={"operator_id": "op-g", "roaming": True}, headers=admin).json()
    r = client.post("/v1/gates/validate", json={"gate_id": gate["gate_id"], "stop_id": "st\u0000op", "payload": "x"},
                    headers={"Authorization": f"Bearer {gate['token']}"})
    _refused(r)


def test_nul_in_query_and_path_parameters(client, admin, login) -> None:  # noqa: ANN001
    _, regulator = login("regulator")
    _refused(client.get("/v1/audit/log", params={"action": "a\u0000b"}, headers=regulator))
    _refused(client.get("/v1/audit/exports/orders", params={"operator_id": "a\u0000b"}, headers=regulator))
    _refused(client.get("/v1/operators/op%00x/gates", headers=admin))
    _refused(client.get("/v1/plan", params={"from": "a\u0000", "to": "b", "depart_at": "2026-10-07T08:00:00+08:00"}))


def test_nul_in_reconciliation_csv(client, login) -> None:  # noqa: ANN001
    _, staff = login("operator", "op-rec")
    csv_text = "leg_id,validated_at,amount\nleg\u00001,2026-10-07T08:00:00+08:00,200\n"
    for kwargs in ({"content": csv_text.encode(), "headers": {**staff, "Content-Type": "text/csv"}},
                   {"files": {"file": ("r.csv", csv_text.encode(), "text/csv")}, "headers": staff}):
        r = client.post("/v1/reconciliations", **kwargs)
        _refused(r, "invalid_csv")


def test_integers_past_64_bits_in_clearing(client, admin) -> None:  # noqa: ANN001
    day = dt.date.today().isoformat()
    r = client.post("/v1/clearing/commission-terms", json={"term_id": "c1", "operator_id": "op-a", "rate_bp": 100,
                                                            "fixed_per_leg": TOO_BIG, "valid_from": day}, headers=admin)
    _refused(r)
    negative = {"term_id": "c2", "operator_id": "op-a", "fixed_per_leg": -1, "valid_from": day}
    _refused(client.post("/v1/clearing/commission-terms", json=negative, headers=admin))
    base = {"agreement_id": "ag1", "method": "fixed", "operator_ids": ["op-a", "op-b"], "fixed_amounts": {"op-a": 100},
            "remainder_operator": "op-b", "valid_from": day}
    _refused(client.post("/v1/clearing/agreements", json={**base, "priority": TOO_BIG}, headers=admin))
    # priority is a 32-bit column: past 2**31 it overflowed PostgreSQL as well.
    _refused(client.post("/v1/clearing/agreements", json={**base, "priority": 2**31}, headers=admin))
    _refused(client.post("/v1/clearing/agreements", json={**base, "fixed_amounts": {"op-a": TOO_BIG}}, headers=admin))
    ok = client.post("/v1/clearing/agreements", json={**base, "priority": 5}, headers=admin)
    assert ok.status_code == 201, ok.text


def test_integers_past_64_bits_in_disputes(client, admin, login, engine) -> None:  # noqa: ANN001
    today = dt.datetime.now(TZ).date()
    d1, d2 = today - dt.timedelta(days=10), today - dt.timedelta(days=9)
    with session_scope(engine) as s:
        t = sale(s, 300, [("op-d", 3_000, 300)], day=d1)
        use(s, t, 0)
    run = client.post("/v1/settlements/runs", json={"period_start": d1.isoformat(), "period_end": d2.isoformat()},
                      headers=admin)
    assert run.status_code == 201, run.text
    _, staff = login("operator", "op-d")
    body = {"run_id": run.json()["run_id"], "leg_id": t.legs[0].leg_id, "reason": "short paid"}
    _refused(client.post("/v1/disputes", json={**body, "claimed_amount": TOO_BIG}, headers=staff))
    _refused(client.post("/v1/disputes", json={**body, "claimed_amount": -TOO_BIG}, headers=staff))
    _refused(client.post("/v1/disputes", json={**body, "reason": "short\u0000paid"}, headers=staff))
    d = client.post("/v1/disputes", json={**body, "claimed_amount": 50}, headers=staff)
    assert d.status_code == 201, d.text
    r = client.post(f"/v1/disputes/{d.json()['dispute_id']}/resolve", json={"decision": "accept", "amount": TOO_BIG},
                    headers=admin)
    _refused(r)
    r = client.post(f"/v1/disputes/{d.json()['dispute_id']}/resolve", json={"decision": "accept", "amount": 40},
                    headers=admin)
    assert r.status_code == 200, r.text


@pytest.fixture
def planning_client(app, engine, shared_data):  # noqa: ANN001, ANN201
    """The app with a real (small) feed loaded, so that planning reaches the routing core."""
    from maas.feeds import import_feed

    with session_scope(engine) as s:
        import_feed(s, path=shared_data / "hk-xrl" / "hk_xrl.zip", feed_id="xrl")
    app.state.load_timetable_on_start = False
    app.state.planner.refresh()
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("when", ["9999-12-31T23:00:00+08:00", "0001-01-01T00:00:00+08:00",
                                  "9999-12-31T23:59:59-12:00", "0001-01-01T00:30:00+14:00",
                                  "1969-12-31T23:00:00+08:00", "2200-01-01T00:00:00+08:00"])
@pytest.mark.parametrize("param", ["depart_at", "arrive_by"])
def test_planning_times_out_of_range(planning_client, when: str, param: str) -> None:  # noqa: ANN001
    r = planning_client.get("/v1/plan", params={"from": "22.3,114.1", "to": "22.4,114.2", param: when})
    _refused(r)
    assert r.json()["error"]["details"]["fields"][0]["field"] == f"query.{param}"


@pytest.mark.parametrize("when", ["1970-01-02T08:00:00+08:00", "2199-12-30T08:00:00+08:00"])
def test_planning_times_at_the_bounds_are_planned(planning_client, when: str) -> None:  # noqa: ANN001
    r = planning_client.get("/v1/plan", params={"from": "22.3,114.1", "to": "22.4,114.2", "depart_at": when})
    assert r.status_code == 200 and r.json()["itineraries"] == [], r.text  # no service then, and no error


def _chunks(total: int, size: int = 4096):  # noqa: ANN202
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b" " * n


@pytest.mark.parametrize("path,ctype", [("/v1/auth/register", "application/json"),
                                        ("/v1/reconciliations", "text/csv"),
                                        ("/v1/payments/stripe/webhook", "application/json")])
def test_a_chunked_body_over_the_limit_is_413(settings, login, path: str, ctype: str) -> None:  # noqa: ANN001
    _, staff = login("operator", "op-big")  # the reconciliation upload needs operator staff
    app = create_app(settings.model_copy(update={"max_body_bytes": 10_000}))
    app.state.load_timetable_on_start = False
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post(path, content=_chunks(200_000), headers={**staff, "Content-Type": ctype})
    assert "content-length" not in {k.lower() for k in r.request.headers}, "the body must go chunked"
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"


def test_every_route_refuses_control_characters_before_anything_else(app, client) -> None:  # noqa: ANN001
    """The rule is app-wide (one dependency on the app), so no route, old or new, can forget it."""
    import re

    paths = app.openapi()["paths"]
    checked = 0
    for path, operations in paths.items():
        url = re.sub(r"\{[^}]+\}", "some-id", path)
        for method in operations:
            r = client.request(method.upper(), url, params={"probe": "x\u0000"})
            assert r.status_code == 422, f"{method.upper()} {path}: {r.status_code} {r.text[:200]}"
            assert r.json()["error"]["details"]["fields"] == [
                {"field": "query.probe", "type": "control_characters", "message": r.json()["error"]["details"][
                    "fields"][0]["message"]}]
            checked += 1
    assert checked >= 50


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_extreme_dates_anywhere_are_not_server_errors(client, admin, login, day: str) -> None:  # noqa: ANN001
    """Every date and time parameter at the ends of the calendar: a 4xx or an answer, never a 500."""
    _, regulator = login("regulator")
    _, staff = login("operator", "op-x")
    _, passenger = login("passenger")
    stamp = f"{day}T00:00:00+00:00"
    calls = [
        ("GET", "/v1/audit/log", regulator, {"since": stamp}, None),
        ("GET", "/v1/audit/log", regulator, {"until": stamp}, None),
        ("GET", "/v1/audit/coverage", regulator, {"date": day}, None),
        ("GET", "/v1/audit/metrics", regulator, {"start": day, "end": day}, None),
        ("GET", "/v1/audit/metrics", regulator, {"month": day[:7]}, None),
        ("GET", "/v1/audit/maturity", regulator, {"start": day, "end": day}, None),
        ("GET", "/v1/audit/exports/orders", regulator, {"start": day, "end": day}, None),
        ("GET", "/v1/audit/exports/journeys", regulator, {"start": day, "end": day}, None),
        ("POST", "/v1/settlements/runs", admin, None, {"period_start": day, "period_end": day}),
        ("POST", "/v1/clearing/commission-terms", admin, None,
         {"term_id": "t", "operator_id": "op-x", "valid_from": day, "valid_until": day}),
        ("POST", "/v1/clearing/agreements", admin, None,
         {"agreement_id": "a", "method": "distance", "valid_from": day, "valid_until": day}),
        ("POST", "/v1/reconciliations", staff, {"window_start": day, "window_end": day}, None),
        ("POST", "/v1/orders", passenger, None, {"offer_id": "off_x", "travelers": [
            {"name": "张三", "id_type": "passport", "id_number": "E1234567", "birth_date": day}]}),
    ]
    for method, path, headers, params, body in calls:
        kwargs: dict = {"params": params, "headers": headers}
        if path == "/v1/reconciliations":
            kwargs.update(content=f"leg_id,validated_at,amount\nL1,{stamp},100\n".encode(),
                          headers={**headers, "Content-Type": "text/csv"})
        elif body is not None:
            kwargs["json"] = body
        r = client.request(method, path, **kwargs)
        assert r.status_code < 500, f"{method} {path} {params or body}: {r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            assert r.json()["error"]["code"], r.text


@pytest.mark.parametrize("row", ["L1,9999-12-31T23:00:00-05:00,100", "L1,0001-01-01T00:00:00+08:00,100",
                                 f"L1,2026-10-07T08:00:00+08:00,{2**70}"])
def test_reconciliation_rows_at_the_ends_of_the_calendar(client, login, row: str) -> None:  # noqa: ANN001
    _, staff = login("operator", "op-y")
    r = client.post("/v1/reconciliations", content=f"leg_id,validated_at,amount\n{row}\n".encode(),
                    headers={**staff, "Content-Type": "text/csv"})
    assert r.status_code < 500, r.text
    if r.status_code == 200:
        assert r.json()["malformed"], r.text  # the row is reported by line number, not matched
