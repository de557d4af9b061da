"""Loading GTFS-Realtime over HTTP: applied without recompiling, kept for every worker, scoped to the feed's operator."""

from __future__ import annotations

from maas.app import create_app
from maas.db import session_scope
from maas.feeds import import_feed


def _import_caltrain(engine, shared_data) -> None:  # noqa: ANN001
    with session_scope(engine) as s:
        import_feed(s, path=shared_data / "caltrain-rt" / "caltrain.zip", feed_id="ct", operator_id="caltrain")


def test_trip_updates_apply_and_reach_other_workers(client, login, app, engine, settings, shared_data) -> None:  # noqa: ANN001
    _import_caltrain(engine, shared_data)
    app.state.planner.refresh()
    _, admin = login("admin")
    data = (shared_data / "caltrain-rt" / "ct-trip-updates.pb").read_bytes()
    r = client.post("/v1/realtime/ct", content=data, headers={**admin, "Content-Type": "application/x-protobuf"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["feed_id"] == "ct" and body["unmatched_trips"] == 0 and body["timestamp"] > 0
    assert app.state.planner.snapshot.realtime is not None
    assert client.get("/health").json()["timetable"]["realtime"]["feed_id"] == "ct"

    # A second worker process (another app on the same data dir) serves the same real-time state.
    other = create_app(settings, load_timetable=False)
    snap = other.state.planner.current()
    assert snap.realtime is not None and snap.realtime_info["feed_id"] == "ct"


def test_realtime_refused_for_garbage_unknown_feed_and_other_operators(client, login, app, engine,
                                                                        shared_data) -> None:  # noqa: ANN001
    _import_caltrain(engine, shared_data)
    _, admin = login("admin")
    r = client.post("/v1/realtime/ct", content=b"\x00not a protobuf", headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_realtime_feed"
    assert app.state.planner.snapshot.realtime is None
    assert client.post("/v1/realtime/nope", content=b"x", headers=admin).json()["error"]["code"] == "feed_not_found"
    _, other_staff = login("operator", "someone-else")
    data = (shared_data / "caltrain-rt" / "ct-trip-updates.pb").read_bytes()
    assert client.post("/v1/realtime/ct", content=data, headers=other_staff).status_code == 403
    _, own_staff = login("operator", "caltrain")
    assert client.post("/v1/realtime/ct", content=data, headers=own_staff).status_code == 200
