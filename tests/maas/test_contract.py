"""The checked-in OpenAPI document and the architecture's import rules."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from maas.openapi import build_openapi, render
from tests.conftest import REPO_ROOT


def test_openapi_document_is_up_to_date() -> None:
    checked_in = (REPO_ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8")
    generated = render(build_openapi())
    assert json.loads(checked_in) == json.loads(generated), "openapi/openapi.json is stale: run `make openapi`"


def test_contract_paths_are_served() -> None:
    paths = build_openapi()["paths"]
    for path in ("/health", "/v1/auth/register", "/v1/auth/token", "/v1/auth/refresh", "/v1/admin/operators",
                 "/v1/admin/users", "/v1/admin/gates", "/v1/audit/log", "/v1/audit/log/verify"):
        assert path in paths, path


def _lint_imports(config: Path) -> tuple[int, str]:
    """Runs import-linter in this process (no console script needed) on ``config``."""
    import logging

    from importlinter.cli import lint_imports

    # import-linter configures logging with dictConfig, which disables every logger that already exists
    # (disable_existing_loggers defaults to true): later tests in this worker would log nothing
    loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]
    was = [(lg, lg.disabled, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    root = (list(logging.root.handlers), logging.root.level)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = lint_imports(config_filename=str(config), no_cache=True, no_logo=True)
    finally:
        for lg, disabled, handlers, level, propagate in was:
            lg.disabled, lg.handlers[:], lg.level, lg.propagate = disabled, handlers, level, propagate
        logging.root.handlers[:], logging.root.level = root
    return code, out.getvalue()


def test_import_boundaries() -> None:
    code, report = _lint_imports(REPO_ROOT / "pyproject.toml")
    assert code == 0, report[-4000:]
    assert "Contracts: 4 kept, 0 broken." in report, report[-4000:]


def test_a_broken_import_contract_fails(tmp_path: Path) -> None:
    """The check above can fail: a contract the code breaks (the shell imports routing) is reported broken."""
    config = tmp_path / "broken.toml"
    config.write_text('''[tool.importlinter]
root_packages = ["maas", "routing"]

[[tool.importlinter.contracts]]
name = "the shell never imports routing (false on purpose)"
type = "forbidden"
source_modules = ["maas"]
forbidden_modules = ["routing"]
''', encoding="utf-8")
    code, report = _lint_imports(config)
    assert code != 0 and "BROKEN" in report, report[-4000:]
