"""The checked-in OpenAPI document and the architecture's import rules."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_import_boundaries() -> None:
    lint = REPO_ROOT / ".venv" / "bin" / "lint-imports"
    cmd = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
