"""The authorization matrix, generated from the app's routes.

Every route must have a rule here; a new route without one fails the build.
For each route and each principal (anonymous, passenger, operator staff of
the owning operator and of another one, regulator, admin, gate device) the
test calls the route and checks that refusal happens exactly where the rule
says: 401 for anonymous callers, 403 for authenticated callers outside the
rule, and neither for callers inside it (who may still get 404/409/422 for the
placeholder data).
"""

from __future__ import annotations

import re

import pytest

ANYONE = "anyone"
AUTHENTICATED = "authenticated"
OWN_OPERATOR = "operator:own"  # operator staff of the operator named in the path, not of another

# (method, path) -> the principals allowed.
RULES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/health"): frozenset({ANYONE}),
    ("POST", "/v1/auth/register"): frozenset({ANYONE}),
    ("POST", "/v1/auth/token"): frozenset({ANYONE}),
    ("POST", "/v1/auth/refresh"): frozenset({ANYONE}),
    ("POST", "/v1/auth/revoke"): frozenset({ANYONE}),
    ("GET", "/v1/me"): frozenset({AUTHENTICATED}),
    ("GET", "/.well-known/jwks.json"): frozenset({ANYONE}),  # public keys only
    ("GET", "/v1/plan"): frozenset({ANYONE}),
    ("GET", "/v1/stops"): frozenset({ANYONE}),  # stop search by name (autocomplete)
    ("POST", "/v1/realtime/{feed_id}"): frozenset({"admin", "operator"}),  # operator scope checked per feed
    ("POST", "/v1/realtime/{feed_id}/alerts"): frozenset({"admin", "operator"}),  # operator scope checked per feed
    ("POST", "/v1/admin/operators"): frozenset({"admin"}),
    ("GET", "/v1/admin/operators"): frozenset({"admin"}),
    ("POST", "/v1/admin/users"): frozenset({"admin"}),
    ("POST", "/v1/admin/users/{user_id}/disable"): frozenset({"admin"}),
    ("POST", "/v1/admin/users/{user_id}/enable"): frozenset({"admin"}),
    ("POST", "/v1/admin/gates"): frozenset({"admin"}),
    ("GET", "/v1/operators/{operator_id}"): frozenset({"admin", OWN_OPERATOR}),
    ("PATCH", "/v1/operators/{operator_id}"): frozenset({"admin", OWN_OPERATOR}),  # QR issuer algorithm
    ("GET", "/v1/operators/{operator_id}/gates"): frozenset({"admin", OWN_OPERATOR}),
    ("GET", "/v1/operators/{operator_id}/settlements"): frozenset({"admin", OWN_OPERATOR}),  # its runs' totals
    ("GET", "/v1/operators/{operator_id}/stats"): frozenset({"admin", OWN_OPERATOR}),  # validations, sales
    ("PATCH", "/v1/operators/{operator_id}/gates/{gate_id}"): frozenset({"admin", OWN_OPERATOR}),
    ("GET", "/v1/audit/log"): frozenset({"regulator", "admin"}),
    ("GET", "/v1/audit/log/verify"): frozenset({"regulator", "admin"}),
    # Ticketing: passengers act on what they own (ownership itself is tested in tests/ticketing).
    ("POST", "/v1/offers"): frozenset({"passenger"}),
    ("GET", "/v1/offers/{offer_id}/seats"): frozenset({"passenger"}),  # seat map of the caller's own offer
    ("PUT", "/v1/offers/{offer_id}/seats"): frozenset({"passenger"}),  # choose seats on the caller's own offer
    ("POST", "/v1/orders"): frozenset({"passenger"}),
    ("GET", "/v1/orders/{order_id}"): frozenset({"passenger"}),
    ("POST", "/v1/orders/{order_id}/cancel"): frozenset({"passenger"}),
    ("POST", "/v1/orders/{order_id}/refunds"): frozenset({"passenger"}),
    ("GET", "/v1/orders/{order_id}/refund-quote"): frozenset({"passenger"}),
    ("POST", "/v1/payments/stripe/webhook"): frozenset({ANYONE}),  # authenticated by Stripe's signature
    ("POST", "/v1/payments/sandbox/{order_id}/confirm"): frozenset({"passenger"}),
    ("POST", "/v1/payments/wechat/notify"): frozenset({ANYONE}),  # authenticated by WeChat Pay's signature
    ("POST", "/v1/payments/alipay/notify"): frozenset({ANYONE}),  # authenticated by Alipay's RSA2 sign
    ("GET", "/v1/payments/methods"): frozenset({ANYONE}),  # which rails an order may name
    ("GET", "/v1/payments/bills/{provider}/{day}"): frozenset({"admin"}),
    ("POST", "/v1/orders/{order_id}/payment/sync"): frozenset({"passenger"}),
    ("GET", "/v1/tickets"): frozenset({"passenger"}),
    ("GET", "/v1/tickets/{ticket_id}"): frozenset({"passenger"}),
    ("GET", "/v1/tickets/{ticket_id}/qr"): frozenset({"passenger"}),
    ("POST", "/v1/tickets/{ticket_id}/device-key"): frozenset({"passenger"}),
    ("POST", "/v1/travelers/{traveler_id}/face"): frozenset({"passenger"}),
    ("DELETE", "/v1/travelers/{traveler_id}/face"): frozenset({"passenger"}),
    ("GET", "/v1/gates/keys"): frozenset({"gate"}),
    ("POST", "/v1/gates/validate"): frozenset({"gate"}),
    ("POST", "/v1/gates/taps"): frozenset({"gate"}),
    # Clearing.
    ("POST", "/v1/settlements/runs"): frozenset({"admin"}),
    ("GET", "/v1/settlements/runs"): frozenset({"admin", "regulator"}),
    ("GET", "/v1/settlements/runs/{run_id}"): frozenset({"admin", "regulator"}),
    ("GET", "/v1/settlements/runs/{run_id}/statements/{operator_id}"): frozenset({"admin", OWN_OPERATOR}),
    ("POST", "/v1/disputes"): frozenset({"operator"}),
    ("GET", "/v1/disputes"): frozenset({"operator", "admin"}),
    ("GET", "/v1/disputes/{dispute_id}"): frozenset({"operator", "admin"}),
    ("POST", "/v1/disputes/{dispute_id}/resolve"): frozenset({"admin"}),
    ("POST", "/v1/reconciliations"): frozenset({"operator"}),
    ("POST", "/v1/clearing/agreements"): frozenset({"admin"}),
    ("GET", "/v1/clearing/agreements"): frozenset({"admin", "regulator"}),
    ("POST", "/v1/clearing/commission-terms"): frozenset({"admin"}),
    ("GET", "/v1/clearing/commission-terms"): frozenset({"admin", "regulator"}),
    # Regulators (maas/api/regulator.py).
    ("GET", "/v1/audit/coverage"): frozenset({"regulator", "admin"}),
    ("GET", "/v1/audit/coverage/stations"): frozenset({"regulator", "admin"}),
    ("GET", "/v1/audit/metrics"): frozenset({"regulator", "admin"}),
    ("GET", "/v1/audit/maturity"): frozenset({"regulator", "admin"}),
    ("GET", "/v1/audit/exports/orders"): frozenset({"regulator", "admin"}),
    ("GET", "/v1/audit/exports/journeys"): frozenset({"regulator", "admin"}),
    ("PUT", "/v1/admin/stations/{stop_id}"): frozenset({"admin"}),
}

PRINCIPALS = ("anonymous", "passenger", "operator_own", "operator_other", "regulator", "admin", "gate")


def _routes(app) -> list[tuple[str, str]]:  # noqa: ANN001
    """Every (method, path) the app serves, from its OpenAPI document (which lists each route once)."""
    return [(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops]


def test_every_route_has_a_rule(app) -> None:  # noqa: ANN001
    missing = [r for r in _routes(app) if r not in RULES]
    assert not missing, f"routes without an authorization rule: {missing}"
    stale = [r for r in RULES if r not in _routes(app)]
    assert not stale, f"rules for routes that no longer exist: {stale}"


def _allowed(rule: frozenset[str], principal: str) -> bool:
    if ANYONE in rule:
        return True
    if principal == "anonymous":
        return False
    if AUTHENTICATED in rule:
        return True
    if principal == "operator_own":
        return OWN_OPERATOR in rule or "operator" in rule
    if principal == "operator_other":
        return "operator" in rule
    return principal in rule


@pytest.fixture
def principals(client, login):  # noqa: ANN001, ANN201
    _, admin = login("admin")
    for op in ("own-op", "other-op"):
        client.post("/v1/admin/operators", json={"operator_id": op, "name": op}, headers=admin)
    gate = client.post("/v1/admin/gates", json={"operator_id": "own-op"}, headers=admin).json()
    return {
        "anonymous": {},
        "passenger": login("passenger")[1],
        "operator_own": login("operator", "own-op")[1],
        "operator_other": login("operator", "other-op")[1],
        "regulator": login("regulator")[1],
        "admin": admin,
        "gate": {"Authorization": f"Bearer {gate['token']}"},
    }


def _fill(path: str) -> str:
    return re.sub(r"\{operator_id\}", "own-op", re.sub(r"\{(?!operator_id)[^}]+\}", "placeholder-id", path))


def test_matrix(app, client, principals) -> None:  # noqa: ANN001
    checked = 0
    for method, path in _routes(app):
        rule = RULES[(method, path)]
        url = _fill(path)
        for principal in PRINCIPALS:
            r = client.request(method, url, headers=principals[principal], json={} if method != "GET" else None)
            allowed = _allowed(rule, principal)
            where = f"{method} {path} as {principal}: {r.status_code} {r.text[:200]}"
            if allowed:
                assert r.status_code not in (401, 403), where
            elif principal == "anonymous":
                assert r.status_code == 401, where
            else:
                assert r.status_code == 403, where
            assert r.status_code < 500, where
            checked += 1
    assert checked >= len(RULES) * len(PRINCIPALS)
