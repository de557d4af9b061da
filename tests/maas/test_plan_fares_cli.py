"""`maas plan --optimize fare --max-fare FEN --rider-category C` on the imported Transcollines feed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maas.cli import main
from maas.settings import get_settings

TC_ZIP = "transcollines-fares-v2/transcollines-qc-ca-fares.zip"
DEPART = "2026-03-04T05:30:00-05:00"


@pytest.fixture
def cli_env(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("MAAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    from maas.db import dispose_engines

    dispose_engines()


def test_cli_plan_optimizes_fare_and_respects_max_fare(cli_env, capsys, shared_data: Path) -> None:  # noqa: ANN001
    """Pontiac -> Gatineau: the fare search lists the 10.00 CAD split ticket beside the 20.00 CAD direct ride."""
    assert main(["feeds", "import", str(shared_data / TC_ZIP), "--feed-id", "tc", "--operator", "transcollines"]) == 0
    capsys.readouterr()
    args = ["plan", "--from", "tc:F111-01", "--to", "tc:F912-45", "--depart", DEPART, "--json"]
    assert main(args + ["--optimize", "fare"]) == 0
    its = json.loads(capsys.readouterr().out)["itineraries"]
    assert {it["label"]: it["fare"]["amount"] for it in its} == {"cheapest": 1000, "fewest_transfers": 2000}
    assert main(args + ["--max-fare", "900"]) == 0
    assert json.loads(capsys.readouterr().out)["itineraries"] == []
    assert main(args[:-1] + ["--optimize", "fare", "--rider-category", "adult"]) == 0
    assert "[cheapest]" in capsys.readouterr().out
    assert main(args + ["--optimize", "cheap"]) != 0
