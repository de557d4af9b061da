"""Offers re-check itineraries against the serving timetable, real-time predictions included (Caltrain + its
GTFS-Realtime TripUpdates from shared data; fares from the feed's Fares v1)."""

from __future__ import annotations

import copy
import datetime as dt
from zoneinfo import ZoneInfo

from tests.ticketing_support import Clock, load_feeds, plan

PACIFIC = ZoneInfo("America/Los_Angeles")


def test_planned_with_or_without_realtime_both_pass_the_recheck(app, client, engine, login, shared_data,
                                                                tmp_path_factory):
    load_feeds(app, engine, [(shared_data / "caltrain-rt" / "caltrain.zip", "ct", "caltrain")],
               tmp_path_factory.getbasetemp() / "ct-timetables")
    app.state.clock = Clock(dt.datetime(2023, 11, 7, 16, 50, tzinfo=PACIFIC))
    _uid, h = login("passenger")
    depart = dt.datetime(2023, 11, 7, 17, 0, tzinfo=PACIFIC)
    scheduled = plan(client, "ct:70232", "ct:70012", depart)[0]
    app.state.planner.apply_realtime((shared_data / "caltrain-rt" / "ct-trip-updates.pb").read_bytes(), "ct")
    predicted = plan(client, "ct:70232", "ct:70012", depart)[0]
    ride = lambda it: next(leg for leg in it["legs"] if leg["mode"] == "RAIL")  # noqa: E731
    assert ride(predicted)["trip_id"] == ride(scheduled)["trip_id"]
    assert ride(predicted)["departure"] != ride(scheduled)["departure"]  # the train runs late

    def offer(it):  # noqa: ANN001, ANN202
        return client.post("/v1/offers", headers=h, json={"itinerary": it, "travelers": [{"rider_category": "adult"}]})

    for it in (scheduled, predicted):
        r = offer(it)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["legs"][0]["operator_id"] == "caltrain" and body["total"]["currency"] == "USD"
        assert body["total"]["amount"] > 0
    shifted = copy.deepcopy(predicted)
    leg = ride(shifted)
    leg["arrival"] = (dt.datetime.fromisoformat(leg["arrival"]) + dt.timedelta(seconds=1)).isoformat()
    r = offer(shifted)
    assert r.status_code == 409 and r.json()["error"]["code"] == "itinerary_mismatch"
