"""Search over a GTFS-Realtime overlay (Caltrain static feed + its TripUpdates)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from routing.compile import compile_timetable
from routing.feeds import FeedSource
from routing.realtime import apply_trip_updates
from routing.search import PlanRequest, earliest_arrival, plan


@pytest.fixture(scope="module")
def caltrain(shared_data):
    tt = compile_timetable([FeedSource("ct", shared_data / "caltrain-rt" / "caltrain.zip", "caltrain")])
    ov = apply_trip_updates(tt, (shared_data / "caltrain-rt" / "ct-trip-updates.pb").read_bytes(), "ct")
    return tt, ov


def _leg_times_match(tt, arr, dep, leg) -> None:
    """The ride leg's times are the (merged real-time) times of its trip at its stops."""
    t = int(np.flatnonzero(tt.trip_ids == leg["trip_id"])[0])
    p = int(tt.trip_pattern[t])
    c = t - int(tt.pattern_trip_offsets[p])
    n = int(tt.pattern_n_trips[p])
    so, tb = int(tt.pattern_stop_offsets[p]), int(tt.pattern_time_offsets[p])
    stops = tt.stop_ids[tt.pattern_stops[so:int(tt.pattern_stop_offsets[p + 1])]].tolist()
    i = stops.index(leg["from"]["stop_id"])
    j = stops.index(leg["to"]["stop_id"], i + 1)
    day = datetime.fromisoformat(leg["service_date"]).date()
    base = tt.day_start_utc(0, tt.day_index(day))
    assert datetime.fromisoformat(leg["departure"]) == base + timedelta(seconds=int(dep[tb + i * n + c]))
    assert datetime.fromisoformat(leg["arrival"]) == base + timedelta(seconds=int(arr[tb + j * n + c]))


def test_itineraries_use_real_time_predictions(caltrain):
    tt, ov = caltrain
    arr, dep = ov.merged_times(tt)
    changed = 0
    for t, day in zip(ov.updated_trips.tolist(), ov.trip_day.tolist()):
        p = int(tt.trip_pattern[t])
        c = t - int(tt.pattern_trip_offsets[p])
        n = int(tt.pattern_n_trips[p])
        so, tb = int(tt.pattern_stop_offsets[p]), int(tt.pattern_time_offsets[p])
        L = int(tt.pattern_stop_offsets[p + 1]) - so
        base = tt.day_start_utc(0, day)
        o = str(tt.stop_ids[tt.pattern_stops[so]])
        d = str(tt.stop_ids[tt.pattern_stops[so + L - 1]])
        when = base + timedelta(seconds=int(tt.pattern_dep[tb + c]) - 60)
        req = PlanRequest(o, d, depart_at=when, max_transfers=1)
        its = plan(tt, req, realtime=ov)
        assert its
        for it in its:
            for leg in it["legs"]:
                if leg["mode"] != "WALK":
                    _leg_times_match(tt, arr, dep, leg)
        static = earliest_arrival(tt, req)[-1]
        live = earliest_arrival(tt, req, realtime=ov)[-1]
        changed += static != live
    assert changed > 0, "some delays change the earliest arrival"


def test_static_search_ignores_the_overlay(caltrain):
    tt, ov = caltrain
    t = int(ov.updated_trips[0])
    p = int(tt.trip_pattern[t])
    so = int(tt.pattern_stop_offsets[p])
    o = str(tt.stop_ids[tt.pattern_stops[so]])
    d = str(tt.stop_ids[tt.pattern_stops[int(tt.pattern_stop_offsets[p + 1]) - 1]])
    when = datetime(2023, 11, 7, 16, 0, tzinfo=timezone(timedelta(hours=-8)))
    for it in plan(tt, PlanRequest(o, d, depart_at=when)):
        for leg in it["legs"]:
            if leg["mode"] != "WALK":
                _leg_times_match(tt, tt.pattern_arr, tt.pattern_dep, leg)
