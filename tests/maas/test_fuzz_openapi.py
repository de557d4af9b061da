"""Property-based fuzzing of the OpenAPI document against the running app (schemathesis).

Every operation gets generated requests (valid and invalid by the schema) as
an admin and as an anonymous caller; the app must never answer 5xx, and its
successful responses must match the documented schemas. Bounded (a few
examples per operation, embedded backend) so CI stays fast.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

MAX_EXAMPLES = int(os.environ.get("MAAS_FUZZ_EXAMPLES", "8"))

pytestmark = pytest.mark.skipif("embedded" not in os.environ.get("MAAS_TEST_BACKENDS", "embedded,postgres"),
                                reason="the fuzzer runs on the embedded backend")


@pytest.fixture
def fuzz_app(tmp_path, shared_data):  # noqa: ANN001, ANN201
    from maas.app import create_app
    from maas.db import dispose_engines, get_engine, session_scope, upgrade_database
    from maas.feeds import import_feed
    from maas.redis_client import reset_clients
    from maas.settings import load_settings

    settings = load_settings(environment="test", data_dir=tmp_path / "data", log_level="WARNING",
                             rate_limits="auth=1000000/60,plan=1000000/60,gates=1000000/60")
    upgrade_database(settings)
    # A real (small) feed, so that planning is fuzzed through the routing core and not refused early.
    with session_scope(get_engine(settings)) as s:
        import_feed(s, path=shared_data / "hk-xrl" / "hk_xrl.zip", feed_id="xrl")
    app = create_app(settings, load_timetable=False)
    app.state.planner.refresh()
    yield app
    dispose_engines()
    reset_clients()


@pytest.fixture
def admin_headers(fuzz_app):  # noqa: ANN001, ANN201
    from fastapi.testclient import TestClient

    from maas import accounts
    from maas.db import session_scope

    with session_scope(fuzz_app.state.engine) as s:
        accounts.create_user(s, phone="13800009999", password="fuzz-admin-pass", name="fuzz", role="admin")
    with TestClient(fuzz_app) as c:
        token = c.post("/v1/auth/token", json={"phone": "13800009999", "password": "fuzz-admin-pass"}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_no_server_errors_and_documented_responses(fuzz_app, admin_headers) -> None:  # noqa: ANN001
    # The pytest plugin of schemathesis does not run under this pytest; drive its strategies directly.
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @hsettings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
        def fuzz(case) -> None:  # noqa: ANN001
            case.call_and_validate(headers=admin_headers, checks=checks)
            case.call_and_validate(checks=checks)

        try:
            fuzz()
        except Exception as exc:  # noqa: BLE001  (collect every operation's failure, report them together)
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)


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


def test_injection_in_every_text_field(fuzz_app, admin_headers) -> None:  # noqa: ANN001
    """Every string in every body and query parameter replaced by hostile text: never a 5xx, nothing executed."""
    from fastapi.testclient import TestClient

    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []
    with TestClient(fuzz_app, raise_server_exceptions=False) as client:
        for operation in operations:
            @given(case=operation.as_strategy())
            @hsettings(max_examples=2, deadline=None, derandomize=True, database=None,
                       suppress_health_check=list(HealthCheck))
            def probe(case) -> None:  # noqa: ANN001
                for payload in INJECTIONS:
                    path = case.formatted_path if hasattr(case, "formatted_path") else case.path
                    for key in (case.path_parameters or {}):
                        path = path.replace("{" + key + "}", "x")
                    query = _replace_strings(dict(case.query or {}), payload)
                    body = _replace_strings(case.body, payload) if isinstance(case.body, (dict, list)) else None
                    r = client.request(case.method, path, params=query, json=body, headers=admin_headers)
                    if r.status_code >= 500:
                        failures.append(f"{operation.label} with {payload[:30]!r}: {r.status_code} {r.text[:300]}")

            probe()
        # The hostile names were stored as text, not executed: the accounts table is intact.
        assert client.post("/v1/auth/token", json={"phone": "13800009999", "password": "fuzz-admin-pass"}).status_code == 200
    assert not failures, "\n".join(failures[:20])
