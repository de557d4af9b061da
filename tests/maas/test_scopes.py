"""Roles and operator scoping: an operator principal never reads another operator's data."""

from __future__ import annotations


def test_operator_cannot_read_another_operators_data(client, login) -> None:  # noqa: ANN001
    _, admin = login("admin")
    for op in ("bus", "metro"):
        assert client.post("/v1/admin/operators", json={"operator_id": op, "name": op}, headers=admin).status_code == 201
        assert client.post("/v1/admin/gates", json={"operator_id": op}, headers=admin).status_code == 201
    _, bus_staff = login("operator", "bus")

    own = client.get("/v1/operators/bus/gates", headers=bus_staff)
    assert own.status_code == 200
    assert [g["operator_id"] for g in own.json()] == ["bus"]

    for path in ("/v1/operators/metro", "/v1/operators/metro/gates"):
        other = client.get(path, headers=bus_staff)
        assert other.status_code == 403, path
        assert other.json()["error"]["code"] == "operator_scope"
        assert "metro" not in other.text.replace('"operator_id":"metro"', "")  # no data of theirs leaks


def test_gate_device_token_is_scoped_to_its_operator(client, login) -> None:  # noqa: ANN001
    _, admin = login("admin")
    client.post("/v1/admin/operators", json={"operator_id": "bus", "name": "bus"}, headers=admin)
    client.post("/v1/admin/operators", json={"operator_id": "metro", "name": "metro"}, headers=admin)
    gate = client.post("/v1/admin/gates", json={"operator_id": "bus", "stop_id": "bus:S1"}, headers=admin).json()
    headers = {"Authorization": f"Bearer {gate['token']}"}
    me = client.get("/v1/me", headers=headers).json()
    assert me == {"subject": gate["gate_id"], "role": "gate", "operator_id": "bus"}
    # A gate is not operator staff: it cannot list gates, its own operator's or another's.
    assert client.get("/v1/operators/bus/gates", headers=headers).status_code == 403
    assert client.get("/v1/operators/metro/gates", headers=headers).status_code == 403


def test_admin_only_routes_refuse_other_roles(client, login) -> None:  # noqa: ANN001
    for role, operator in (("passenger", None), ("regulator", None), ("operator", "bus")):
        _, headers = login(role, operator)
        r = client.post("/v1/admin/operators", json={"operator_id": "x", "name": "x"}, headers=headers)
        assert r.status_code == 403, role
        assert r.json()["error"]["code"] == "wrong_role"


def test_admin_creates_staff_bound_to_existing_operator_only(client, login) -> None:  # noqa: ANN001
    _, admin = login("admin")
    r = client.post("/v1/admin/users", json={"role": "operator", "operator_id": "ghost", "phone": "13700000001",
                                             "password": "long-enough"}, headers=admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_operator"
    r = client.post("/v1/admin/users", json={"role": "operator", "phone": "13700000001", "password": "long-enough"},
                    headers=admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "operator_required"
