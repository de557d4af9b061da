"""Real feeds moved by whole weeks run the same trips on the same weekdays, N weeks later."""

from __future__ import annotations

import datetime as dt

from routing.compile import compile_timetable
from routing.feeds import FeedSource
from tests.feed_shift import shift_feed_weeks, weeks_until


def test_a_feed_moved_by_whole_weeks_runs_the_same_trips_later(shared_data, tmp_path):
    src = shared_data / "hk-xrl" / "hk_xrl.zip"
    day = dt.date(2026, 1, 28)
    weeks = weeks_until(day, dt.date.today())
    assert day + dt.timedelta(weeks=weeks) >= dt.date.today() > day + dt.timedelta(weeks=weeks - 1)
    moved = shift_feed_weeks(src, tmp_path / "moved.zip", weeks)
    before = compile_timetable([FeedSource("x", src, "op")])
    after = compile_timetable([FeedSource("x", moved, "op")])
    later = day + dt.timedelta(weeks=weeks)
    assert later.weekday() == day.weekday()
    assert after.first_day == before.first_day + dt.timedelta(weeks=weeks)
    running = before.trips_running(before.day_index(day)).sum()
    assert running > 0 and after.trips_running(after.day_index(later)).sum() == running
    saturday = day + dt.timedelta(days=3)
    assert after.trips_running(after.day_index(saturday + dt.timedelta(weeks=weeks))).sum() == \
        before.trips_running(before.day_index(saturday)).sum()
