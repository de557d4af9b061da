"""`maas demo` end to end: a real server process on the embedded default."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):  # noqa: ANN001, ANN201
    data_dir = tmp_path_factory.mktemp("demo")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["MAAS_DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "maas", "demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"maas demo exited: {proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("maas demo did not come up within 240 s")
        yield base, data_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_demo_reports_embedded_backends_and_feeds(demo_server) -> None:  # noqa: ANN001
    base, _ = demo_server
    health = httpx.get(f"{base}/health").json()
    assert health["database"] == {"kind": "sqlite", "ok": True}
    assert health["redis"] == {"kind": "in-process", "ok": True}
    assert {"yx-bus", "yx-metro", "yx-coach"} <= set(health["timetable"]["feeds"])


def test_demo_accounts_log_in_and_plan_across_operators(demo_server) -> None:  # noqa: ANN001
    base, data_dir = demo_server
    token = httpx.post(f"{base}/v1/auth/token", json={"phone": "13800000000", "password": "demo-pass-123"})
    assert token.status_code == 200
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    ops = httpx.get(f"{base}/v1/admin/operators", headers=headers).json()
    assert {"yunxi-bus", "yunxi-metro", "yunxi-coach"} <= {o["operator_id"] for o in ops}

    depart = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(hour=8, minute=0, second=0, microsecond=0)
    r = httpx.get(f"{base}/v1/plan", params={"from": "yx-bus:RMGC", "to": "yx-coach:QSX",
                                             "depart_at": depart.isoformat()}, timeout=30)
    assert r.status_code == 200, r.text
    its = r.json()["itineraries"]
    assert its, "the demo city must connect the city centre to the county coach station"
    operators = {leg["operator_id"] for leg in its[0]["legs"] if leg["mode"] != "WALK"}
    assert "yunxi-coach" in operators
    assert oct(os.stat(data_dir / "demo-credentials.json").st_mode)[-3:] == "600"
