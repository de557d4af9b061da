"""The clearing calendar: settlement periods are dates in one time zone."""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

#: Periods, refund dates and recognition dates are dates in this zone (``MAAS_CLEARING_TIMEZONE``).
CLEARING_TZ = ZoneInfo(os.environ.get("MAAS_CLEARING_TIMEZONE", "Asia/Shanghai"))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local_date(at: dt.datetime) -> dt.date:
    """The clearing date of an aware timestamp."""
    if at.tzinfo is None:
        raise ValueError("timestamps are timezone-aware")
    return at.astimezone(CLEARING_TZ).date()
