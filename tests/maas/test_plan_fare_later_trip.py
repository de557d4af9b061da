"""`optimize=fare` over HTTP and the CLI takes the later, cheaper trip of the counterexample (issue 13 item 12).

The feed is ``tests/routing/fare_counterexample.py``: 2.00 EUR via the 08:20 trip (within the 60-minute
transfer allowance), 4.00 EUR via the 08:00 one; both arrive at 09:30.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from maas.cli import main
from tests.routing.fare_counterexample import COUNTEREXAMPLE
from tests.routing.gtfs_text import write_gtfs
from tests.ticketing_support import load_feeds, plan

BERLIN = ZoneInfo("Europe/Berlin")
DEPART = dt.datetime(2025, 3, 5, 7, 55, tzinfo=BERLIN)


def _rides(it: dict) -> list[str]:
    return [f"{leg['departure'][11:16]}-{leg['arrival'][11:16]}" for leg in it["legs"] if leg["mode"] != "WALK"]


def test_http_plan_optimize_fare_returns_the_cheaper_later_trip(app, engine, client, tmp_path) -> None:  # noqa: ANN001
    path = write_gtfs(tmp_path / "cx", COUNTEREXAMPLE, timezone="Europe/Berlin")
    load_feeds(app, engine, [(path, "cx", "op")], tmp_path / "timetables")
    its = plan(client, "cx:X", "cx:Z", DEPART, optimize="fare")
    assert [(_rides(it), it["fare"]["amount"], it["fare"]["currency"]) for it in its] == [
        (["08:20-08:30", "09:15-09:30"], 200, "EUR")]


def test_cli_plan_optimize_fare_returns_the_cheaper_later_trip(cli_env, capsys, tmp_path) -> None:  # noqa: ANN001
    path = write_gtfs(tmp_path / "cx", COUNTEREXAMPLE, timezone="Europe/Berlin")
    assert main(["feeds", "import", str(path), "--feed-id", "cx", "--operator", "op"]) == 0
    capsys.readouterr()
    assert main(["plan", "--from", "cx:X", "--to", "cx:Z", "--depart", DEPART.isoformat(), "--json",
                 "--optimize", "fare"]) == 0
    its = json.loads(capsys.readouterr().out)["itineraries"]
    assert [(_rides(it), it["fare"]["amount"]) for it in its] == [(["08:20-08:30", "09:15-09:30"], 200)]
