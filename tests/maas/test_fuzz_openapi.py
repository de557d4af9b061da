"""Property-based fuzzing of the OpenAPI document against the running app (schemathesis), on both backends.

Every operation gets generated requests (valid and invalid by the schema) from every principal that may
call it (the rules of tests/maas/test_authorization_matrix.py: passenger, gate device, operator staff,
regulator, admin) and from an anonymous caller; path parameters are half the time the caller's real ids
(its operator, its gate, the loaded feed), so the fuzzer gets past 401/403/404 into the handlers. The app
must never answer 5xx, and its responses must match the documented schemas. PostgreSQL matters: it refuses
NUL bytes and overflows its integer columns where SQLite does not. Bounded (``MAAS_FUZZ_EXAMPLES`` examples
per operation and principal) so the whole module stays within a few minutes.
"""

from __future__ import annotations

import os
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.maas.test_authorization_matrix import PRINCIPALS, RULES, _allowed

MAX_EXAMPLES = int(os.environ.get("MAAS_FUZZ_EXAMPLES", "4"))
OWN_OPERATOR = "fuzz-op"
# Operations that could take the fuzzer's own principals away (a disabled gate, a revoked login) run last.
LAST = {("PATCH", "/v1/operators/{operator_id}/gates/{gate_id}"), ("POST", "/v1/auth/revoke")}


@pytest.fixture
def fuzz_app(settings, shared_data):  # noqa: ANN001, ANN201
    from maas.app import create_app
    from maas.db import get_engine, session_scope
    from maas.feeds import import_feed

    # A real (small) feed, so that planning is fuzzed through the routing core and not refused early.
    with session_scope(get_engine(settings)) as s:
        import_feed(s, path=shared_data / "hk-xrl" / "hk_xrl.zip", feed_id="xrl", operator_id=OWN_OPERATOR)
    app = create_app(settings, load_timetable=False)
    app.state.planner.refresh()
    return app


@pytest.fixture
def principals(fuzz_app, make_user) -> dict[str, dict]:  # noqa: ANN001
    """Authorization headers and real ids of one caller of each kind (the matrix's principals)."""
    from fastapi.testclient import TestClient

    def token(c: TestClient, role: str, operator_id: str | None = None) -> dict[str, str]:
        _, phone, password = make_user(role, operator_id)
        r = c.post("/v1/auth/token", json={"phone": phone, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    with TestClient(fuzz_app) as c:
        admin = token(c, "admin")
        c.post("/v1/admin/operators", json={"operator_id": "other-op", "name": "other"}, headers=admin)
        gate = c.post("/v1/admin/gates", json={"operator_id": OWN_OPERATOR, "roaming": True}, headers=admin)
        assert gate.status_code == 201, gate.text
        headers = {
            "anonymous": {}, "admin": admin, "passenger": token(c, "passenger"),
            "operator_own": token(c, "operator", OWN_OPERATOR), "operator_other": token(c, "operator", "other-op"),
            "regulator": token(c, "regulator"), "gate": {"Authorization": f"Bearer {gate.json()['token']}"},
        }
    known = {"operator_id": OWN_OPERATOR, "gate_id": gate.json()["gate_id"], "feed_id": "xrl"}
    return {"headers": headers, "known": known}


def _callers(method: str, path: str) -> list[str]:
    """The principals the matrix allows on an operation (each one reaches its handler), plus anonymous."""
    rule = RULES.get((method, path))
    if rule is None:  # a new route: test_authorization_matrix fails until it has a rule; fuzz it as everybody
        return [p for p in PRINCIPALS if p != "operator_other"]
    allowed = [p for p in PRINCIPALS if p not in ("anonymous", "operator_other") and _allowed(rule, p)]
    return ["anonymous", *allowed]


def _operations(app):  # noqa: ANN001, ANN202
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(operations, key=lambda op: (op.method.upper(), op.path) in LAST)


def test_no_server_errors_and_documented_responses(fuzz_app, principals) -> None:  # noqa: ANN001
    # The pytest plugin of schemathesis does not run under this pytest; drive its strategies directly.
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    operations = _operations(fuzz_app)
    assert len(operations) >= 50
    failures: list[str] = []
    reached: dict[str, set[int]] = {}
    started = time.monotonic()
    for operation in operations:
        method, path = operation.method.upper(), operation.path
        callers = _callers(method, path)

        @given(case=operation.as_strategy(), caller=st.sampled_from(callers), real_ids=st.booleans())
        @hsettings(max_examples=MAX_EXAMPLES * len(callers), deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
        def fuzz(case, caller: str, real_ids: bool) -> None:  # noqa: ANN001
            if real_ids and case.path_parameters:
                for name in case.path_parameters:
                    if name in principals["known"]:
                        case.path_parameters[name] = principals["known"][name]
            response = case.call_and_validate(headers=principals["headers"][caller], checks=checks)
            reached.setdefault(operation.label, set()).add(response.status_code)

        try:
            fuzz()
        except Exception as exc:  # noqa: BLE001  (collect every operation's failure, report them together)
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    # The fuzzer got past the door: no operation only ever answered 401/403.
    locked_out = sorted(label for label, codes in reached.items() if codes <= {401, 403})
    assert not locked_out, f"operations the fuzzer never got into: {locked_out}"
    print(f"fuzzed {len(operations)} operations in {elapsed:.0f} s (MAAS_FUZZ_EXAMPLES sets the examples)")


INJECTIONS = (
    "' OR '1'='1' --",
    "'); DROP TABLE users; --",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "${jndi:ldap://127.0.0.1/x}",
    "{{7*7}}",
    "\u0000nul\u0000",
    "张三\u202e\ufeff",
    "x" * 10_000,
)


def _replace_strings(value, payload):  # noqa: ANN001, ANN202
    if isinstance(value, str):
        return payload
    if isinstance(value, dict):
        return {k: _replace_strings(v, payload) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_strings(v, payload) for v in value]
    return value


def test_injection_in_every_text_field(fuzz_app, principals) -> None:  # noqa: ANN001
    """Every string in every body and query parameter replaced by hostile text, sent by each principal that
    may call the operation: never a 5xx, nothing executed."""
    from fastapi.testclient import TestClient

    failures: list[str] = []
    with TestClient(fuzz_app, raise_server_exceptions=False) as client:
        for operation in _operations(fuzz_app):
            callers = [c for c in _callers(operation.method.upper(), operation.path) if c != "anonymous"] or [
                "anonymous"]

            @given(case=operation.as_strategy())
            @hsettings(max_examples=1, deadline=None, derandomize=True, database=None,
                       suppress_health_check=list(HealthCheck))
            def probe(case) -> None:  # noqa: ANN001
                for payload in INJECTIONS:
                    path = case.path
                    for key in (case.path_parameters or {}):
                        path = path.replace("{" + key + "}", principals["known"].get(key, "x"))
                    query = _replace_strings(dict(case.query or {}), payload)
                    body = _replace_strings(case.body, payload) if isinstance(case.body, (dict, list)) else None
                    for caller in callers:
                        r = client.request(case.method, path, params=query, json=body,
                                           headers=principals["headers"][caller])
                        if r.status_code >= 500:
                            failures.append(f"{operation.label} as {caller} with {payload[:30]!r}: "
                                            f"{r.status_code} {r.text[:300]}")

            probe()
        # The hostile names were stored as text, not executed: the accounts still work.
        assert client.get("/v1/me", headers=principals["headers"]["admin"]).status_code == 200
    assert not failures, "\n".join(failures[:20])
