"""Moves this Python process's clock when ``MAAS_TEST_CLOCK_SHIFT_DAYS`` is set (tests only).

The test suite puts this directory on ``PYTHONPATH`` when it runs with a
shifted clock, so that every Python process it starts (``maas demo``, the CLI)
lives on the same shifted clock as the tests themselves. Redis and PostgreSQL
keep the machine's real clock; the code must never mix the two.
"""

from __future__ import annotations

import os

_days = os.environ.get("MAAS_TEST_CLOCK_SHIFT_DAYS")
if _days and _days.strip() not in ("", "0"):
    import datetime as _dt

    import time_machine as _tm

    # MAAS_TEST_CLOCK_EPOCH pins the parent's shifted start, so parent and children agree to the second.
    _epoch = os.environ.get("MAAS_TEST_CLOCK_EPOCH")
    _start = (_dt.datetime.fromtimestamp(float(_epoch), _dt.UTC) if _epoch
              else _dt.datetime.now(_dt.UTC) + _dt.timedelta(days=int(_days)))
    _traveller = _tm.travel(_start, tick=True)
    _traveller.start()
