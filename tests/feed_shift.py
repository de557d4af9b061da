"""Real feeds moved in time by whole weeks, so tests can run on them "now".

The staged feeds' calendars lie in the past. Rather than edit the data (never)
or pin a test to the feed's dates, a fixture copies the feed with every service
date moved by a whole number of weeks: weekdays, timetables and everything
else stay as published.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import zipfile
from pathlib import Path

# file -> the columns that hold YYYYMMDD dates
DATE_COLUMNS = {
    "calendar.txt": ("start_date", "end_date"),
    "calendar_dates.txt": ("date",),
    "feed_info.txt": ("feed_start_date", "feed_end_date"),
}


def weeks_until(day_in_feed: dt.date, not_before: dt.date) -> int:
    """The whole weeks to move ``day_in_feed`` forward so that it falls on or after ``not_before``."""
    return max(0, math.ceil((not_before - day_in_feed).days / 7))


def _shift(value: str, weeks: int) -> str:
    if not value.strip():
        return value
    day = dt.datetime.strptime(value.strip(), "%Y%m%d").date() + dt.timedelta(weeks=weeks)
    return day.strftime("%Y%m%d")


def shift_feed_weeks(src: Path, dst: Path, weeks: int) -> Path:
    """Writes ``src`` (a GTFS zip) to ``dst`` with every calendar date moved by ``weeks`` weeks."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            columns = DATE_COLUMNS.get(Path(info.filename).name)
            if columns:
                text = data.decode("utf-8-sig")
                rows = list(csv.DictReader(io.StringIO(text)))
                fields = next(csv.reader(io.StringIO(text)))
                out = io.StringIO()
                writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: _shift(v, weeks) if k in columns else v for k, v in row.items()})
                data = out.getvalue().encode("utf-8")
            zout.writestr(info.filename, data)
    return dst
