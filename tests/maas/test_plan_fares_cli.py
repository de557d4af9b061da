"""`maas plan --optimize fare --max-fare FEN --rider-category C` on the imported Transcollines feed."""

from __future__ import annotations

import json
from pathlib import Path


from maas.cli import main

TC_ZIP = "transcollines-fares-v2/transcollines-qc-ca-fares.zip"
DEPART = "2026-03-04T05:30:00-05:00"


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
