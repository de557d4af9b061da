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


def _empty_message() -> bytes:
    from google.transit import gtfs_realtime_pb2 as rt

    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = 1699405600
    return m.SerializeToString()


def test_one_overlay_per_feed(client, login, app, engine, settings, shared_data) -> None:  # noqa: ANN001
    """Issue 13 item 4: an empty snapshot of another feed leaves the first feed's real time in place."""
    _import_caltrain(engine, shared_data)
    with session_scope(engine) as s:
        import_feed(s, path=shared_data / "hk-xrl" / "hk_xrl.zip", feed_id="xrl", operator_id="mtr")
    app.state.planner.refresh()
    _, admin = login("admin")
    data = (shared_data / "caltrain-rt" / "ct-trip-updates.pb").read_bytes()
    assert client.post("/v1/realtime/ct", content=data, headers=admin).status_code == 200
    q = {"from": "ct:70232", "to": "ct:70272", "depart_at": "2023-11-07T16:50:00-08:00"}
    live = client.get("/v1/plan", params=q, headers=admin).json()["itineraries"]
    ride = next(leg for leg in live[0]["legs"] if leg["mode"] != "WALK")
    assert ride["realtime"] is True and ride["delay_s"] == 124  # trip 124 leaves 70232 at 17:05:04, not 17:03
    assert client.post("/v1/realtime/xrl", content=_empty_message(), headers=admin).status_code == 200
    assert client.get("/v1/plan", params=q, headers=admin).json()["itineraries"] == live
    snap = app.state.planner.snapshot
    assert sorted(snap.realtime_feeds) == ["ct", "xrl"] and len(snap.realtime.updated_trips) == 19
    feeds = client.get("/health").json()["timetable"]["realtime_feeds"]
    assert feeds["ct"]["timestamp"] == 1699405534 and feeds["ct"]["age_s"] > 0 and feeds["ct"]["trip_updates"] == 19
    assert feeds["xrl"]["trip_updates"] == 0
    # another worker applies both stored snapshots, each to its own feed
    other = create_app(settings, load_timetable=False)
    osnap = other.state.planner.current()
    assert sorted(osnap.realtime_feeds) == ["ct", "xrl"] and len(osnap.realtime.updated_trips) == 19
    # a newer snapshot of ct replaces ct's only
    assert client.post("/v1/realtime/ct", content=_empty_message(), headers=admin).status_code == 200
    snap = app.state.planner.snapshot
    assert sorted(snap.realtime_feeds) == ["ct", "xrl"] and len(snap.realtime.updated_trips) == 0
    static = client.get("/v1/plan", params=q, headers=admin).json()["itineraries"]
    assert static != live and all(not leg.get("realtime") for it in static for leg in it["legs"])


def _alerts_message() -> bytes:
    from google.transit import gtfs_realtime_pb2 as rt

    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = 1699405600
    e = m.entity.add()
    e.id = "route-l1"
    a = e.alert
    a.informed_entity.add().route_id = "L1"
    p = a.active_period.add()
    p.start, p.end = 1699400000, 1699420000  # 2023-11-07 15:33 .. 21:06 PST
    a.effect = rt.Alert.SIGNIFICANT_DELAYS
    for lang, text in (("en", "Delays on the Local"), ("es", "Retrasos en el Local")):
        t = a.header_text.translation.add()
        t.text, t.language = text, lang
    e = m.entity.add()
    e.id = "stop-later"
    a = e.alert
    a.informed_entity.add().stop_id = "70232"
    p = a.active_period.add()
    p.start, p.end = 1700000000, 1700100000  # a week later: not attached
    a.header_text.translation.add().text = "Elevator out of service"
    e = m.entity.add()
    e.id = "stop-now"
    a = e.alert
    a.informed_entity.add().stop_id = "70272"
    a.header_text.translation.add().text = "Platform 2 closed"
    return m.SerializeToString()


def test_alerts_are_refused_as_trip_updates_and_attached_to_legs(client, login, app, engine,
                                                                  shared_data) -> None:  # noqa: ANN001
    """Issue 13 item 5: Service Alerts posted as trip updates are a 422 and leave real time alone; posted as
    alerts they are kept per feed and listed on the legs they touch, in the passenger's language."""
    _import_caltrain(engine, shared_data)
    app.state.planner.refresh()
    _, admin = login("admin")
    ct = shared_data / "caltrain-rt"
    assert client.post("/v1/realtime/ct", content=(ct / "ct-trip-updates.pb").read_bytes(), headers=admin).status_code == 200
    r = client.post("/v1/realtime/ct", content=_alerts_message(), headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_trip_updates", r.text
    assert r.json()["error"]["details"]["entities"]["alert"] == 3
    r = client.post("/v1/realtime/ct", content=(ct / "ct-vehicle-positions.pb").read_bytes(), headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_trip_updates"
    assert len(app.state.planner.snapshot.realtime.updated_trips) == 19, "real time is still there"
    r = client.post("/v1/realtime/ct/alerts", content=(ct / "ct-trip-updates.pb").read_bytes(), headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_service_alerts"

    _, other_staff = login("operator", "someone-else")
    assert client.post("/v1/realtime/ct/alerts", content=_alerts_message(), headers=other_staff).status_code == 403
    assert client.post("/v1/realtime/ct/alerts", content=_alerts_message()).status_code == 401
    assert not app.state.planner.snapshot.alerts
    r = client.post("/v1/realtime/ct/alerts", content=_alerts_message(), headers=admin)
    assert r.status_code == 200 and r.json()["counts"]["alerts"] == 3, r.text
    q = {"from": "ct:70232", "to": "ct:70272", "depart_at": "2023-11-07T16:50:00-08:00"}
    its = client.get("/v1/plan", params={**q, "lang": "es"}, headers=admin).json()["itineraries"]
    ride = next(leg for leg in its[0]["legs"] if leg["mode"] != "WALK")
    assert ride["route_id"] == "ct:L1"
    assert {a["id"]: a["header"] for a in ride["alerts"]} == {"route-l1": "Retrasos en el Local",
                                                             "stop-now": "Platform 2 closed"}
    assert {a["id"] for a in its[0]["alerts"]} == {"route-l1", "stop-now"}
    its = client.get("/v1/plan", params=q, headers={**admin, "Accept-Language": "de, en;q=0.8"}).json()["itineraries"]
    ride = next(leg for leg in its[0]["legs"] if leg["mode"] != "WALK")
    assert [a["header"] for a in ride["alerts"] if a["id"] == "route-l1"] == ["Delays on the Local"]
    # a week later the route alert is over and the stop alert not yet... the later one is active then
    later = {**q, "depart_at": "2023-11-14T16:50:00-08:00"}
    its = client.get("/v1/plan", params=later, headers=admin).json()["itineraries"]
    assert {a["id"] for it in its for a in it["alerts"]} == {"stop-later", "stop-now"}
    assert client.get("/health").json()["timetable"]["realtime_feeds"]["ct"]["alerts"]["count"] == 3


def test_several_sources_of_one_feed(client, login, app, engine, shared_data) -> None:  # noqa: ANN001
    """A feed updated by several endpoints (NYC: one per line group): each source replaces its own snapshot."""
    from google.transit import gtfs_realtime_pb2 as rt

    _import_caltrain(engine, shared_data)
    app.state.planner.refresh()
    _, admin = login("admin")
    whole = rt.FeedMessage()
    whole.ParseFromString((shared_data / "caltrain-rt" / "ct-trip-updates.pb").read_bytes())
    halves = []
    for part in (whole.entity[:10], whole.entity[10:]):
        m = rt.FeedMessage()
        m.header.CopyFrom(whole.header)
        m.entity.extend(part)
        halves.append(m.SerializeToString())
    for name, data in zip(("north", "south"), halves):
        r = client.post("/v1/realtime/ct", params={"source": name}, content=data, headers=admin)
        assert r.status_code == 200 and r.json()["source"] == name, r.text
    snap = app.state.planner.snapshot
    assert sorted(snap.realtime_feeds) == ["ct@north", "ct@south"] and len(snap.realtime.updated_trips) == 19
    q = {"from": "ct:70232", "to": "ct:70272", "depart_at": "2023-11-07T16:50:00-08:00"}
    ride = next(leg for leg in client.get("/v1/plan", params=q).json()["itineraries"][0]["legs"]
                if leg["mode"] != "WALK")
    assert ride["realtime"] is True
    # the fare-aware search plans on the same real-time timetable
    its = client.get("/v1/plan", params={**q, "optimize": "fare"}).json()["itineraries"]
    assert its and any(leg.get("realtime") for it in its for leg in it["legs"]) and its[0]["fare"] is not None
    r = client.post("/v1/realtime/ct", params={"source": "north"}, content=_empty_message(), headers=admin)
    assert r.status_code == 200
    assert len(app.state.planner.snapshot.realtime.updated_trips) == 9
    assert client.post("/v1/realtime/ct", params={"source": "../x"}, content=halves[0],
                       headers=admin).status_code == 422
