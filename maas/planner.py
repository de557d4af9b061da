"""The serving snapshot of the timetable, swapped atomically on refresh.

Workers map the compiled arrays read-only; a refresh (new feeds, a new
real-time snapshot) builds a new `Snapshot` off to the side and replaces the
reference in one assignment, so a query always sees one consistent version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.engine import Engine

from maas.db import session_scope
from maas.feeds import NoFeeds, build_fare_engine, build_seat_capacity, build_timetable, list_sources
from maas.settings import Settings
from routing.fares import FareTables
from routing.feeds import FeedSource
from routing.search import PlanRequest, plan_answer
from routing.timetable import Timetable
from ticketing.fares.engine import FareEngine
from ticketing.fares.tables import fare_tables_for

log = structlog.get_logger("maas.planner")


@dataclass(frozen=True)
class Snapshot:
    timetable: Timetable
    sources: tuple[FeedSource, ...]
    loaded_at: float
    from_cache: bool
    realtime: Any = None  #: a routing.realtime.RealtimeOverlay: every feed's latest snapshot merged
    realtime_info: dict[str, Any] = field(default_factory=dict)  #: what the latest load reported
    #: feed_id (or feed_id@source) -> its own latest overlay (a snapshot replaces only its own)
    realtime_feeds: dict[str, Any] = field(default_factory=dict)
    #: feed_id -> {"timestamp", "loaded_at", "trip_updates", "matched", "unmatched", ...} per feed
    realtime_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: feed_id -> that feed's latest Service Alerts (a routing.alerts.FeedAlerts)
    alerts: dict[str, Any] = field(default_factory=dict)
    fares: FareEngine | None = None
    #: Namespaced trip id -> seats, for reserved-seat (coach) trips.
    seat_capacity: dict[str, int] = field(default_factory=dict)
    #: Fare tables of the fare-aware search, built lazily per (rider category, active timeframes).
    _fare_tables: dict[tuple, Any] = field(default_factory=dict, repr=False, compare=False)
    _fare_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def fare_tables(self, rider_category: str = "adult", at: dt.datetime | None = None) -> FareTables | None:
        """`routing.fares.FareTables` of this snapshot's fares for a rider category (``None`` without fares).

        Built once per rider category and set of timeframes active at ``at``
        (per feed), then cached for the life of the snapshot.
        """
        if self.fares is None:
            return None
        tf = tuple(sorted((fid, tuple(sorted(p.timeframes_at(at)))) for fid, p in self.fares.pricers.items()
                          if at is not None and p.ff.timeframes))
        key = (rider_category, tf)
        hit = self._fare_tables.get(key)
        if hit is None:
            with self._fare_lock:
                hit = self._fare_tables.get(key)
                if hit is None:
                    hit = fare_tables_for(self.fares, self.timetable, rider_category=rider_category, at=at)
                    if len(self._fare_tables) > 64:
                        self._fare_tables.clear()
                    self._fare_tables[key] = hit
        return hit

    def plan(self, request: PlanRequest, language: str | None = None) -> list[dict[str, Any]]:
        """Plan on this snapshot: a fare search uses the fare tables of ``request.rider_category``;
        every itinerary's ``fare`` is then (re)priced by the full fare engine (authoritative).
        With Service Alerts loaded, every leg lists the ``alerts`` touching it (texts in ``language``,
        a tag or an Accept-Language value, when the feed translates them) and the itinerary their union."""
        return self.plan_answer(request, language, explain=False)["itineraries"]

    def plan_answer(self, request: PlanRequest, language: str | None = None,
                    explain: bool = True) -> dict[str, Any]:
        """:meth:`plan` as ``{"itineraries", "reason", "filtered"}``: ``reason`` (``code``, ``message``,
        details; see routing.explain) says why ``itineraries`` is empty (else None); ``filtered`` counts
        the itineraries each filter rule removed (docs/planning.md)."""
        fares = None
        if request.optimize == "fare" or request.max_fare is not None:
            fares = self.fare_tables(request.rider_category, request.depart_at)
        answer = plan_answer(self.timetable, request, realtime=self.realtime, fares=fares, explain=explain)
        its = [self.price(it, request.rider_category) for it in answer.itineraries]
        reason = answer.reason
        if request.max_fare is not None:
            # the budget holds for the authoritative fare too (the kernel's tables may not cover every rule)
            kept = [it for it in its if it["fare"] is not None and it["fare"]["amount"] <= request.max_fare]
            if its and not kept and explain:
                reason = {"code": "over_max_fare", "message": f"every journey costs more than max_fare "
                          f"{request.max_fare}", "max_fare": request.max_fare}
            its = kept
        if self.alerts:
            its = [self.with_alerts(it, language) for it in its]
        return {"itineraries": its, "reason": reason if not its else None, "filtered": answer.filtered or None}

    def with_alerts(self, itinerary: dict[str, Any], language: str | None = None) -> dict[str, Any]:
        from routing.alerts import alerts_for_leg

        seen: dict[tuple[str, str], dict] = {}
        legs = []
        for leg in itinerary["legs"]:
            found = alerts_for_leg(self.alerts, self.timetable, leg, language)
            for a in found:
                seen.setdefault((a["feed_id"], a["id"]), a)
            legs.append({**leg, "alerts": found})
        return {**itinerary, "legs": legs, "alerts": list(seen.values())}

    def price(self, itinerary: dict[str, Any], rider_category: str = "adult") -> dict[str, Any]:
        """The itinerary with its ``fare`` filled in (null where no fare data covers a leg)."""
        if self.fares is None:
            return itinerary
        quote = self.fares.price_itinerary(itinerary, rider_category=rider_category)
        total = quote.total
        return {**itinerary, "fare": {"amount": total.amount, "currency": total.currency} if total else None}


def _source_key(feed_id: str, source: str | None) -> str:
    """``feed_id``, or ``feed_id@source`` for one of several real-time endpoints of a feed."""
    if not source:
        return feed_id
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", source) or source.startswith("."):
        from routing.errors import RealtimeError

        raise RealtimeError("source must be 1-40 letters, digits, '_', '-' or '.'", code="invalid_source",
                            details={"source": source})
    return f"{feed_id}@{source}"


class Planner:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._realtime_seen: dict[str, float] = {}
        self._alerts_seen: dict[str, float] = {}
        self._realtime_checked = 0.0

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def refresh(self) -> Snapshot | None:
        """Load (or compile) the timetable of every imported feed and swap it in."""
        with session_scope(self.engine) as session:
            sources = list_sources(session)
        if not sources:
            return None
        with self._lock:
            started = time.perf_counter()
            tt, cached = build_timetable(self.settings, sources)
            snap = Snapshot(timetable=tt, sources=tuple(sources), loaded_at=time.time(), from_cache=cached,
                            fares=build_fare_engine(self.settings, sources),
                            seat_capacity=build_seat_capacity(sources))
            self._snapshot = snap
            log.info("timetable_loaded", feeds=[s.feed_id for s in sources], from_cache=cached,
                     seconds=round(time.perf_counter() - started, 3))
            return snap

    def current(self) -> Snapshot:
        """The serving snapshot, loading it on first use; NoFeeds when nothing is imported."""
        snap = self._snapshot or self.refresh()
        if snap is None:
            raise NoFeeds("no timetable is loaded: import a feed first")
        self._sync_realtime(snap)
        return self._snapshot or snap

    # Real time ------------------------------------------------------------------------------------
    #
    # Each feed's latest TripUpdates snapshot is kept as a file <data_dir>/realtime/<feed_id>.pb, so every
    # worker process (and a server started later) applies the same ones; a worker notices a newer file
    # within a second. One overlay per feed, merged for planning: a feed's snapshot replaces its own only.

    @property
    def realtime_dir(self) -> Path:
        return self.settings.data_dir / "realtime"

    def apply_realtime(self, data: bytes, feed_id: str, source: str | None = None) -> dict[str, Any]:
        """Apply a GTFS-Realtime TripUpdates snapshot of one feed without recompiling, and keep it for
        other workers. It replaces that feed's previous snapshot only; with ``source`` (a feed updated by
        several endpoints, e.g. NYC subway lines) that source's previous snapshot only.

        Raises `routing.errors.RealtimeError` for a message that cannot be parsed or holds no TripUpdates
        (nothing is kept then).
        """
        key = _source_key(feed_id, source)
        snap = self.current()
        self.realtime_dir.mkdir(parents=True, exist_ok=True)
        target = self.realtime_dir / f"{key}.pb"
        info = self._apply(snap, data, key)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        self._realtime_seen[key] = target.stat().st_mtime
        return info

    def _apply(self, snap: Snapshot, data: bytes, key: str) -> dict[str, Any]:
        from routing.realtime import apply_trip_updates

        feed_id, _, source = key.partition("@")
        overlay = apply_trip_updates(snap.timetable, data, feed_id)
        info = {"feed_id": feed_id, **({"source": source} if source else {}),
                "timestamp": int(overlay.timestamp), "counts": dict(overlay.counts),
                "unmatched_trips": len(overlay.unmatched_trip_ids), "warnings": list(overlay.warnings[:20])}
        status = {"timestamp": int(overlay.timestamp), "loaded_at": time.time(),
                  "trip_updates": int(overlay.counts.get("trip_updates", 0)),
                  "matched": int(overlay.counts.get("matched", 0)),
                  "cancelled": int(overlay.counts.get("cancelled", 0)),
                  "unmatched": int(overlay.counts.get("unmatched", 0)),
                  "unmatched_by_cause": dict(overlay.counts.get("unmatched_by_cause", {}))}
        with self._lock:
            current = self._snapshot
            if current is not None and current.timetable is snap.timetable:
                self._snapshot = self._with_overlay(current, key, overlay, info, status)
        return info

    @staticmethod
    def _with_overlay(snap: Snapshot, feed_id: str, overlay: Any, info: dict, status: dict) -> Snapshot:
        from routing.realtime import merge_overlays

        feeds = {**snap.realtime_feeds, feed_id: overlay}
        return dataclasses.replace(
            snap, realtime=merge_overlays(snap.timetable, [feeds[f] for f in sorted(feeds)]), realtime_info=info,
            realtime_feeds=feeds, realtime_status={**snap.realtime_status, feed_id: status})

    def _sync_realtime(self, snap: Snapshot) -> None:
        """Pick up the snapshots other workers (or `maas realtime load`) stored; at most one check a second."""
        now = time.monotonic()
        if now - self._realtime_checked < 1.0:
            return
        self._realtime_checked = now
        try:
            files = [(p.stat().st_mtime, p) for p in self.realtime_dir.glob("*.pb")]
        except OSError:
            return
        known = {s.feed_id for s in snap.sources}
        try:
            alert_files = [(p.stat().st_mtime, p) for p in (self.realtime_dir / "alerts").glob("*.pb")]
        except OSError:
            alert_files = []
        for mtime, path in sorted(alert_files):
            feed_id = path.stem
            current = self._snapshot or snap
            if feed_id in known and (mtime > self._alerts_seen.get(feed_id, 0.0) or feed_id not in current.alerts):
                self._alerts_seen[feed_id] = mtime
                try:
                    self._apply_alerts(current, path.read_bytes(), feed_id)
                except Exception as exc:  # noqa: BLE001 - a bad stored file must not break planning
                    log.warning("alerts_sync_failed", feed_id=feed_id, error=type(exc).__name__)
        for mtime, path in sorted(files):
            key = path.stem  # <feed_id> or <feed_id>@<source>
            if key.partition("@")[0] not in known:
                continue
            current = self._snapshot or snap
            if mtime > self._realtime_seen.get(key, 0.0) or key not in current.realtime_feeds:
                self._realtime_seen[key] = mtime
                try:
                    self._apply(current, path.read_bytes(), key)
                except Exception as exc:  # noqa: BLE001 - a bad stored file must not break planning
                    log.warning("realtime_sync_failed", feed_id=key, error=type(exc).__name__)

    def apply_alerts(self, data: bytes, feed_id: str) -> dict[str, Any]:
        """Keep a feed's GTFS-Realtime Service Alerts (replacing its previous ones) for every worker.

        Raises `routing.errors.RealtimeError` for a message that is not Service Alerts (nothing is kept then).
        """
        snap = self.current()
        fa = self._apply_alerts(snap, data, feed_id)
        folder = self.realtime_dir / "alerts"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{feed_id}.pb"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        self._alerts_seen[feed_id] = target.stat().st_mtime
        return {"feed_id": feed_id, "timestamp": fa.timestamp, "counts": dict(fa.counts), "warnings": list(fa.warnings)}

    def _apply_alerts(self, snap: Snapshot, data: bytes, feed_id: str) -> Any:
        from routing.alerts import parse_alerts

        fa = parse_alerts(snap.timetable, data, feed_id)
        with self._lock:
            current = self._snapshot
            if current is not None and current.timetable is snap.timetable:
                self._snapshot = dataclasses.replace(current, alerts={**current.alerts, feed_id: fa})
        return fa

    def realtime_feeds_info(self) -> dict[str, dict[str, Any]]:
        """Per feed: its snapshot's timestamp, ``age_s`` (now minus that timestamp), when it was loaded, counts."""
        snap = self._snapshot
        if snap is None:
            return {}
        now = time.time()
        out = {f: {**st, "age_s": (round(now - st["timestamp"], 1) if st["timestamp"] else None)}
               for f, st in sorted(snap.realtime_status.items())}
        for f, fa in sorted(snap.alerts.items()):
            out.setdefault(f, {})["alerts"] = {"timestamp": fa.timestamp, "count": len(fa.alerts),
                                               "age_s": round(now - fa.timestamp, 1) if fa.timestamp else None}
        return out

    def info(self) -> dict[str, Any] | None:
        snap = self._snapshot
        if snap is None:
            return None
        return {"feeds": [s.feed_id for s in snap.sources], "from_cache": snap.from_cache,
                "stops": int(len(snap.timetable.stop_ids)), "realtime": snap.realtime_info or None,
                "realtime_feeds": self.realtime_feeds_info()}
