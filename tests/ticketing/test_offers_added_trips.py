"""Journeys planned on GTFS-RT ADDED / NEW and DUPLICATED trips can be bought, and nothing else can
(issue 13 item 6 follow-up).

The planner runs on the real-time view (`routing.realtime.view_for`) whose extra trips carry their own stop
times; `ticketing.offers.recheck_leg` rebuilds every leg the client sends, so it must know those trips too --
on their service day only, at their own times, and only while the snapshot that has them is served.

Feed (Europe/Berlin, weekdays of 2025), on Wednesday 2025-06-04::

    R1  T1  A 08:00  B 08:10  C 08:20  D 08:30      (cancelled by the snapshot)
    R1  T2  A 09:00  B 09:10  C 09:20  D 09:30
    R1  X1  A 08:20           C 08:35               (NEW, only in the snapshot)
    R1  T2b A 09:30  B 09:40  C 09:52  D 10:02      (DUPLICATED from T2 at 09:30, 2 min late from C)
"""

from __future__ import annotations

import copy
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from google.transit import gtfs_realtime_pb2 as rt

from routing.compile import compile_timetable
from routing.feeds import FeedSource
from routing.realtime import apply_trip_updates
from routing.search import PlanRequest, plan
from tests.routing.gtfs_text import stop_times, write_gtfs
from tests.ticketing_support import Clock, load_feeds
from tests.ticketing_support import plan as http_plan
from ticketing.errors import ItineraryMismatch
from ticketing.offers import recheck_itinerary

BER = ZoneInfo("Europe/Berlin")
WED = dt.date(2025, 6, 4)
FILES = {
    "stops.txt": """
        stop_id,stop_name,stop_lat,stop_lon
        A,A,52.50,13.40
        B,B,52.50,13.42
        C,C,52.50,13.44
        D,D,52.50,13.46
    """,
    "routes.txt": "route_id,route_short_name,route_type,network_id\nR1,1,3,N\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WD,T1\nR1,WD,T2\n",
    "stop_times.txt": stop_times({
        "T1": "A 08:00 B 08:10 C 08:20 D 08:30",
        "T2": "A 09:00 B 09:10 C 09:20 D 09:30",
    }),
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                    "WD,1,1,1,1,1,0,0,20250101,20251231\n",
    "fare_products.txt": "fare_product_id,fare_product_name,amount,currency\nRIDE,Single ride,2.00,EUR\n",
    "fare_leg_rules.txt": "leg_group_id,network_id,fare_product_id\nride,N,RIDE\n",
}


def _at(hm: str, day: dt.date = WED) -> dt.datetime:
    h, m = (int(x) for x in hm.split(":"))
    return dt.datetime(day.year, day.month, day.day, h, m, tzinfo=BER)


def _message(*, added: bool = True) -> bytes:
    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int(_at("07:50").timestamp())

    def entity():  # noqa: ANN202
        e = m.entity.add()
        e.id = str(len(m.entity))
        return e.trip_update

    if added:
        tu = entity()  # a NEW trip on R1: A 08:20 -> C 08:35
        tu.trip.trip_id, tu.trip.route_id, tu.trip.start_date = "X1", "R1", "20250604"
        tu.trip.schedule_relationship = rt.TripDescriptor.NEW
        for stop, hm in (("A", "08:20"), ("C", "08:35")):
            u = tu.stop_time_update.add()
            u.stop_id = stop
            u.arrival.time = u.departure.time = int(_at(hm).timestamp())
        tu = entity()  # T2 duplicated at 09:30 as T2b, 2 minutes late from C
        tu.trip.trip_id, tu.trip.start_date = "T2", "20250604"
        tu.trip.schedule_relationship = rt.TripDescriptor.DUPLICATED
        tu.trip_properties.trip_id, tu.trip_properties.start_time = "T2b", "09:30:00"
        tu.trip_properties.start_date = "20250604"
        u = tu.stop_time_update.add()
        u.stop_id = "C"
        u.departure.delay = 120
    tu = entity()  # T1 cancelled that day
    tu.trip.trip_id, tu.trip.start_date = "T1", "20250604"
    tu.trip.schedule_relationship = rt.TripDescriptor.CANCELED
    return m.SerializeToString()


@pytest.fixture(scope="module")
def feed(tmp_path_factory):  # noqa: ANN001, ANN201
    path = write_gtfs(tmp_path_factory.mktemp("added") / "f", FILES, timezone="Europe/Berlin")
    tt = compile_timetable([FeedSource("f", path)])
    return path, tt, apply_trip_updates(tt, _message(), "f")


def _plan(tt, ov, o: str, d: str, hm: str, day: dt.date = WED) -> dict:  # noqa: ANN001
    its = plan(tt, PlanRequest(f"f:{o}", f"f:{d}", depart_at=_at(hm, day), max_transfers=0), realtime=ov)
    assert its, (o, d, hm)
    return its[0]


def _ride(it: dict) -> dict:
    return next(leg for leg in it["legs"] if leg["mode"] != "WALK")


def _times(leg: dict) -> tuple[str, str, str, str]:
    return leg["trip_id"], leg["service_date"], leg["departure"][11:16], leg["arrival"][11:16]


NOW = _at("07:40")


def test_the_snapshot_has_the_added_and_duplicated_trips(feed) -> None:  # noqa: ANN001
    _path, tt, ov = feed
    assert (ov.counts["added"], ov.counts["duplicated"], ov.counts["cancelled"]) == (1, 1, 1)
    assert _times(_ride(_plan(tt, ov, "A", "C", "08:15"))) == ("f:X1", "2025-06-04", "08:20", "08:35")
    assert _times(_ride(_plan(tt, ov, "A", "D", "09:10"))) == ("f:T2b", "2025-06-04", "09:30", "10:02")


@pytest.mark.parametrize(("o", "d", "hm", "want"), [
    ("A", "C", "08:15", ("f:X1", "2025-06-04", "08:20", "08:35")),  # NEW
    ("A", "D", "09:10", ("f:T2b", "2025-06-04", "09:30", "10:02")),  # DUPLICATED, late from C
    ("B", "C", "09:35", ("f:T2b", "2025-06-04", "09:40", "09:52")),  # DUPLICATED, part of it
])
def test_a_journey_on_a_real_time_trip_passes_the_recheck(feed, o, d, hm, want) -> None:  # noqa: ANN001
    _path, tt, ov = feed
    it = _plan(tt, ov, o, d, hm)
    leg = _ride(it)
    assert _times(leg) == want
    got = recheck_itinerary(tt, it, now=NOW, realtime=ov)
    assert len(got) == 1
    assert _times(got[0]) == want
    assert (got[0]["departure"], got[0]["arrival"]) == (leg["departure"], leg["arrival"])
    assert (got[0]["route_id"], got[0]["from"]["stop_id"], got[0]["to"]["stop_id"]) == ("f:R1", f"f:{o}", f"f:{d}")
    assert [s["stop_id"] for s in got[0]["intermediate_stops"]] == [s["stop_id"] for s in leg["intermediate_stops"]]
    assert got[0]["distance_m"] > 0


def _mismatch(tt, it, ov) -> None:  # noqa: ANN001
    with pytest.raises(ItineraryMismatch):
        recheck_itinerary(tt, it, now=NOW, realtime=ov)


@pytest.mark.parametrize(("field", "shift"), [("departure", 60), ("arrival", -60), ("arrival", 1),
                                              ("departure", -1200)])
def test_an_added_trip_with_times_it_does_not_have_is_refused(feed, field, shift) -> None:  # noqa: ANN001
    _path, tt, ov = feed
    it = copy.deepcopy(_plan(tt, ov, "A", "C", "08:15"))
    leg = _ride(it)
    leg[field] = (dt.datetime.fromisoformat(leg[field]) + dt.timedelta(seconds=shift)).isoformat()
    _mismatch(tt, it, ov)


def test_a_real_time_trip_at_stops_it_does_not_serve_is_refused(feed) -> None:  # noqa: ANN001
    _path, tt, ov = feed
    it = copy.deepcopy(_plan(tt, ov, "A", "C", "08:15"))
    _ride(it)["to"] = {"stop_id": "f:B"}  # X1 does not call at B
    _ride(it)["arrival"] = _at("08:28").isoformat()
    _mismatch(tt, it, ov)
    it = copy.deepcopy(_plan(tt, ov, "A", "C", "08:15"))
    leg = _ride(it)
    leg["from"], leg["to"] = leg["to"], leg["from"]  # backwards
    leg["departure"], leg["arrival"] = leg["arrival"], leg["departure"]
    _mismatch(tt, it, ov)


def test_the_duplicate_and_its_original_do_not_lend_each_other_times(feed) -> None:  # noqa: ANN001
    _path, tt, ov = feed
    dup = copy.deepcopy(_plan(tt, ov, "A", "D", "09:10"))
    _ride(dup)["trip_id"] = "f:T2"  # the duplicate's times under the original's id
    _mismatch(tt, dup, ov)
    orig = copy.deepcopy(_plan(tt, ov, "A", "D", "08:50"))
    assert _times(_ride(orig)) == ("f:T2", "2025-06-04", "09:00", "09:30")
    assert recheck_itinerary(tt, orig, now=NOW, realtime=ov)[0]["trip_id"] == "f:T2"  # still runs as planned
    _ride(orig)["trip_id"] = "f:T2b"  # the original's times under the duplicate's id
    _mismatch(tt, orig, ov)
    added = copy.deepcopy(_plan(tt, ov, "A", "C", "08:15"))
    _ride(added)["trip_id"] = "f:T2b"  # another real-time trip's times
    _mismatch(tt, added, ov)


def test_an_added_trip_on_another_service_date_is_refused(feed) -> None:  # noqa: ANN001
    _path, tt, ov = feed
    for days in (1, 7, -1):
        it = copy.deepcopy(_plan(tt, ov, "A", "C", "08:15"))
        leg = _ride(it)
        leg["service_date"] = (WED + dt.timedelta(days=days)).isoformat()
        for f in ("departure", "arrival"):
            leg[f] = (dt.datetime.fromisoformat(leg[f]) + dt.timedelta(days=days)).isoformat()
        with pytest.raises(ItineraryMismatch):
            recheck_itinerary(tt, it, now=NOW - dt.timedelta(days=2), realtime=ov)
    it = copy.deepcopy(_plan(tt, ov, "A", "C", "08:15"))
    _ride(it)["service_date"] = "2025-06-05"  # only the date: the times are of the 4th
    _mismatch(tt, it, ov)


def test_without_the_snapshot_nothing_planned_on_real_time_can_be_bought(feed) -> None:  # noqa: ANN001
    _path, tt, ov = feed
    withdrawn = apply_trip_updates(tt, _message(added=False), "f")  # the next snapshot drops X1 and T2b
    for o, d, hm in (("A", "C", "08:15"), ("A", "D", "09:10")):
        it = _plan(tt, ov, o, d, hm)
        recheck_itinerary(tt, it, now=NOW, realtime=ov)
        _mismatch(tt, it, None)
        _mismatch(tt, it, withdrawn)


def test_a_cancelled_trip_is_still_refused(feed) -> None:  # noqa: ANN001
    _path, tt, ov = feed
    it = _plan(tt, None, "A", "D", "07:55")  # planned on the schedule: T1
    assert _times(_ride(it)) == ("f:T1", "2025-06-04", "08:00", "08:30")
    assert recheck_itinerary(tt, it, now=NOW)[0]["trip_id"] == "f:T1"
    _mismatch(tt, it, ov)
    # the next Wednesday T1 runs, and X1 does not
    nxt = _plan(tt, ov, "A", "D", "07:55", WED + dt.timedelta(days=7))
    assert _times(_ride(nxt)) == ("f:T1", "2025-06-11", "08:00", "08:30")
    assert recheck_itinerary(tt, nxt, now=NOW, realtime=ov)[0]["trip_id"] == "f:T1"


def test_offers_over_http_sell_added_and_duplicated_trips(app, client, engine, login, feed,  # noqa: ANN001
                                                          tmp_path_factory) -> None:
    path, _tt, _ov = feed
    load_feeds(app, engine, [(path, "f", "op")], tmp_path_factory.getbasetemp() / "added-timetables")
    app.state.clock = Clock(NOW)
    _uid, h = login("passenger")
    app.state.planner.apply_realtime(_message(), "f")

    def offer(it):  # noqa: ANN001, ANN202
        return client.post("/v1/offers", headers=h, json={"itinerary": it, "travelers": [{"rider_category": "adult"}]})

    for o, d, hm, want in (("A", "C", "08:15", ("f:X1", "2025-06-04", "08:20", "08:35")),
                           ("A", "D", "09:10", ("f:T2b", "2025-06-04", "09:30", "10:02"))):
        it = http_plan(client, f"f:{o}", f"f:{d}", _at(hm), max_transfers=0)[0]
        assert _times(_ride(it)) == want
        r = offer(it)
        assert r.status_code == 201, r.text
        body = r.json()
        assert [(x["trip_id"], x["departure"], x["arrival"]) for x in body["legs"]] == [
            (_ride(it)["trip_id"], _ride(it)["departure"], _ride(it)["arrival"])]
        assert body["total"] == {"amount": 200, "currency": "EUR"}
        forged = copy.deepcopy(it)
        _ride(forged)["arrival"] = (dt.datetime.fromisoformat(_ride(forged)["arrival"])
                                    + dt.timedelta(minutes=1)).isoformat()
        r = offer(forged)
        assert r.status_code == 409 and r.json()["error"]["code"] == "itinerary_mismatch", r.text
    app.state.planner.apply_realtime(_message(added=False), "f")  # the next snapshot has neither
    r = offer(it)
    assert r.status_code == 409 and r.json()["error"]["code"] == "itinerary_mismatch", r.text
