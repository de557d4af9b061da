"""`maas plan` and `maas plan --batch` plan on the real-time snapshot `maas realtime load` keeps (issue 13 item 3)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path


from maas.cli import main
from routing.compile import compile_timetable
from routing.feeds import FeedSource
from routing.realtime import apply_trip_updates
from routing.search import PlanRequest, plan

DEPART = "2023-11-07T16:50:00-08:00"
FROM, TO = "ct:70232", "ct:70272"  # trip 124 runs late between these platforms in the snapshot


def _times(its: list[dict]) -> list[tuple[str, str]]:
    return [(it["departure"], it["arrival"]) for it in its]


def test_cli_plan_and_batch_use_the_stored_snapshot(cli_env, capsys, shared_data: Path) -> None:  # noqa: ANN001
    ct = shared_data / "caltrain-rt"
    tt = compile_timetable([FeedSource("ct", ct / "caltrain.zip", "caltrain")])
    ov = apply_trip_updates(tt, (ct / "ct-trip-updates.pb").read_bytes(), "ct")
    req = PlanRequest(FROM, TO, depart_at=datetime.fromisoformat(DEPART))
    live, static = _times(plan(tt, req, realtime=ov)), _times(plan(tt, req))
    assert live != static, "the snapshot changes this answer"

    assert main(["feeds", "import", str(ct / "caltrain.zip"), "--feed-id", "ct", "--operator", "caltrain"]) == 0
    assert main(["realtime", "load", str(ct / "ct-trip-updates.pb"), "--feed-id", "ct"]) == 0
    capsys.readouterr()
    assert main(["plan", "--from", FROM, "--to", TO, "--depart", DEPART, "--json"]) == 0
    assert _times(json.loads(capsys.readouterr().out)["itineraries"]) == live
    batch = cli_env / "q.jsonl"
    batch.write_text(json.dumps({"from": FROM, "to": TO, "depart": DEPART}) + "\n", encoding="utf-8")
    assert main(["plan", "--batch", str(batch)]) == 0
    assert _times(json.loads(capsys.readouterr().out.splitlines()[0])["itineraries"]) == live


def test_cli_realtime_load_refuses_the_wrong_kind_and_keeps_alerts(cli_env, capsys, shared_data: Path) -> None:  # noqa: ANN001
    from tests.maas.test_realtime_api import _alerts_message

    ct = shared_data / "caltrain-rt"
    alerts = cli_env / "alerts.pb"
    alerts.write_bytes(_alerts_message())
    assert main(["feeds", "import", str(ct / "caltrain.zip"), "--feed-id", "ct", "--operator", "caltrain"]) == 0
    assert main(["realtime", "load", str(ct / "ct-trip-updates.pb"), "--feed-id", "ct"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["counts"]["matched"] == 19
    assert main(["realtime", "load", str(alerts), "--feed-id", "ct"]) != 0
    assert "holds no TripUpdates but Service Alerts" in capsys.readouterr().err
    assert main(["realtime", "load", str(ct / "ct-trip-updates.pb"), "--feed-id", "ct", "--alerts"]) != 0
    assert "holds no Service Alerts" in capsys.readouterr().err
    assert main(["realtime", "load", str(alerts), "--feed-id", "ct", "--alerts"]) == 0
    capsys.readouterr()
    assert main(["plan", "--from", FROM, "--to", TO, "--depart", DEPART, "--json", "--lang", "es"]) == 0
    its = json.loads(capsys.readouterr().out)["itineraries"]
    assert _times(its[:1]) == [("2023-11-07T17:05:04-08:00", "2023-11-07T17:21:58-08:00")]  # still real time
    assert "Retrasos en el Local" in [a["header"] for a in its[0]["alerts"]]
