"""The routing core: GTFS in -> compiled timetable -> RAPTOR search -> itineraries.

Depends only on numpy, numba, pandas, gtfs-kit, scipy, gtfs-realtime-bindings
and the standard library. Public names are imported lazily (importing
``routing.feeds`` does not compile numba kernels).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FeedSource": "routing.feeds",
    "FeedReport": "routing.feeds",
    "validate_feed": "routing.feeds",
    "RoutingError": "routing.errors",
    "FeedError": "routing.errors",
    "NoItinerary": "routing.errors",
    "UnknownStop": "routing.errors",
    "InvalidQuery": "routing.errors",
    "RealtimeError": "routing.errors",
    "Timetable": "routing.timetable",
    "MODES": "routing.timetable",
    "CompileOptions": "routing.compile",
    "compile_timetable": "routing.compile",
    "load_or_compile": "routing.cache",
    "apply_trip_updates": "routing.realtime",
    "RealtimeOverlay": "routing.realtime",
    "merge_overlays": "routing.realtime",
    "realtime_view": "routing.realtime",
    "parse_alerts": "routing.alerts",
    "alerts_for_leg": "routing.alerts",
    "PlanRequest": "routing.search",
    "plan": "routing.search",
    "run_benchmark": "routing.bench",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'routing' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
