"""Trip-to-trip transfer rules on a real feed: LIRR's timed connections at Jamaica.

LIRR's transfers.txt asks 5 minutes to change at Jamaica (stop 102, type 2) and lists timed connections
(type 1) between given trips there, which need none. The router must honour both: for journeys that take
such a connection, its earliest arrival per number of rides equals the rule-aware oracle's (which reads
transfers.txt itself), and the timed connections make some of them earlier than the stop rule alone would.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from reference import RefNetwork, TransferRules, earliest_arrivals, earliest_arrivals_rules, walking_graph
from test_transfer_rules_random import _check_rules

from routing.compile import compile_timetable
from routing.feeds import FeedSource
from routing.search import PlanRequest, earliest_arrival, plan


def test_lirr_timed_connections_at_jamaica(shared_data):
    path = shared_data / "nyc-mta/lirr.zip"
    tt = compile_timetable([FeedSource("lirr", path, "lirr")])
    ty = np.asarray(tt.trip_transfer_type)
    assert len(ty) >= 100 and set(ty.tolist()) == {1}  # the timed connections are kept (they beat the 5 min)
    # the service day with the most of those connections running (from the feed, not from today)
    svc = np.asarray(tt.service_days)
    ft, tt_ = np.asarray(tt.trip_transfer_from_trip), np.asarray(tt.trip_transfer_to_trip)
    both = svc[np.asarray(tt.trip_service)[ft]] & svc[np.asarray(tt.trip_service)[tt_]]
    day_i = int(np.argmax(both.sum(axis=0)))
    day = tt.first_day + timedelta(days=day_i)
    tz = ZoneInfo("America/New_York")
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    noon_minus_12 = int(tt.day_start_utc(0, day_i).timestamp())
    net = RefNetwork.from_gtfs([("lirr", path)], day)
    rules = TransferRules.from_gtfs([("lirr", path)])
    fp, change = walking_graph(tt)
    ids = tt.stop_ids.tolist()

    def first_last(t: int) -> tuple[int, int, int]:
        """First stop, last stop and first departure (seconds of the service day) of trip ``t``."""
        p = int(tt.trip_pattern[t])
        so, end = int(tt.pattern_stop_offsets[p]), int(tt.pattern_stop_offsets[p + 1])
        dep = int(tt.pattern_dep[int(tt.pattern_time_offsets[p]) + t - int(tt.pattern_trip_offsets[p])])
        return int(tt.pattern_stops[so]), int(tt.pattern_stops[end - 1]), dep

    H = 6 * 3600
    rng = np.random.default_rng(3)
    running = np.flatnonzero(both[:, day_i])
    compared = earlier = decided = 0
    for i in rng.permutation(running)[:30].tolist():
        o, _, dep = first_last(int(ft[i]))
        _, d, _ = first_last(int(tt_[i]))
        if o == d or ids[o] == "lirr:102" or ids[d] == "lirr:102":
            continue
        t0 = noon_minus_12 + dep - 300
        when = datetime.fromtimestamp(t0, tz)
        req = PlanRequest(ids[o], ids[d], depart_at=when, max_transfers=2)
        args = (net, ids[o], ids[d], t0, 3, fp, change)
        want = earliest_arrivals_rules(*args, rules, horizon_s=H)
        plain = earliest_arrivals(*args, walk_only=False, horizon_s=H)
        walk = earliest_arrivals(*args)[0]  # the router counts a walk-only journey in every round
        want = [w if walk is None else walk if w is None else min(w, walk) for w in want]
        # the oracle scans departures up to H after t0: compare what leaves by then
        got = [g if g is None or g <= t0 + H else None for g in earliest_arrival(tt, req)]
        want = [w if w is None or w <= t0 + H else None for w in want]
        assert got[1:] == want[1:], (ids[o], ids[d], when)
        compared += 1
        earlier += any(w is not None and (p is None or w < p) for w, p in zip(want[1:], plain[1:]))
        q = dict(min_change_s=0, walk_speed_m_s=1.3)
        its = plan(tt, req)
        if want[-1] is not None:
            assert min(int(datetime.fromisoformat(it["arrival"]).timestamp()) for it in its) == want[-1]
        decided += sum(_check_rules(it, rules, change, fp, q) for it in its)
    assert compared >= 25 and midnight.date() == day
    assert earlier >= 3 and decided >= 10, (earlier, decided)
    print(f"LIRR {day}: {compared} journeys over timed connections equal the rules oracle; the connections make "
          f"{earlier} earlier than Jamaica's 5 minutes would; {decided} planned changes decided by a trip rule")
