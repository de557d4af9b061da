"""Browser tests of the /app front ends: the demo city served by uvicorn in a thread, driven by Debian's
headless Chromium through Playwright (``executable_path``; ``playwright install`` is never needed).

One server per backend (embedded SQLite + fakeredis, PostgreSQL + Redis) for the whole module, built like
``maas demo`` builds it. Screenshots go to a temporary directory, or to ``MAAS_SCREENSHOTS_DIR``
(e.g. docs/screenshots) when it is set.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_TEST_URL

CHROMIUM = os.environ.get("MAAS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MOBILE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_settings(backend: dict, data_dir: Path) -> Any:
    """Settings on an empty database and Redis for this backend (as tests/conftest.py's ``settings``)."""
    from maas.db import get_engine
    from maas.redis_client import get_redis, reset_clients
    from maas.settings import load_settings

    reset_clients()
    limits = "auth=100000/60,plan=100000/60,gates=1000000/60"
    if backend["kind"] == "embedded":
        shutil.copytree(backend["template"], data_dir)
        return load_settings(environment="test", data_dir=data_dir, rate_limits=limits, log_level="WARNING")
    s = load_settings(environment="test", data_dir=data_dir, database_url=backend["database_url"],
                      redis_url=REDIS_TEST_URL, rate_limits=limits, log_level="WARNING")
    import sqlalchemy as sa

    with get_engine(s).begin() as conn:
        tables = [r[0] for r in conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))]
        if tables:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
    get_redis(s).flushdb()
    return s


class DemoServer:
    def __init__(self, base: str, info: dict[str, Any], app: Any) -> None:
        self.base, self.info, self.app = base, info, app
        self.password = info["credentials"]["password"]

    def account(self, role: str, operator_id: str | None = None) -> dict[str, Any]:
        return next(a for a in self.info["credentials"]["accounts"]
                    if a["role"] == role and (operator_id is None or a.get("operator_id") == operator_id))

    def gate(self, operator_id: str) -> dict[str, Any]:
        return next(g for g in self.info["credentials"]["gates"] if g["operator_id"] == operator_id)


@contextlib.contextmanager
def serve_demo(settings: Any) -> Iterator[DemoServer]:
    """The demo city built on ``settings`` (see `_clean_settings`) and served by uvicorn in a thread."""
    import uvicorn

    from maas.app import create_app
    from maas.demo_server import build_demo
    from maas.redis_client import reset_clients

    info = build_demo(settings)
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, name="web-test-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200
    try:
        yield DemoServer(base, info, app)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        reset_clients()


@pytest.fixture(scope="module")
def demo(backend: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with serve_demo(_clean_settings(backend, tmp_path_factory.mktemp("web") / "data")) as server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("MAAS_SCREENSHOTS_DIR")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def mobile_page(chromium: Any, demo: DemoServer) -> Iterator[Any]:
    """A phone-sized page in Asia/Shanghai (the demo city's zone) that fails the test on any page error."""
    context = chromium.new_context(base_url=demo.base, locale="zh-CN", timezone_id="Asia/Shanghai", **MOBILE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    # JavaScript errors; a failed request's own console line is not one (the UI shows the API's error)
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"errors in the page: {errors}"


AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"


def assert_accessible(page: Any, what: str) -> None:
    """axe-core (WCAG 2 A and AA rules) on the page as it is now; fails on serious or critical violations."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # the pages' policy allows eval (Alpine.js needs it), not injected <script> elements
        page.evaluate("source => { (0, eval)(source); }", AXE.read_text(encoding="utf-8"))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    assert not result, f"accessibility violations on {what}: {result}"
