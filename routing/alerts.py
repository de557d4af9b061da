"""GTFS-Realtime Service Alerts: parsed per feed, attached to the legs they touch.

``parse_alerts(tt, data, feed_id)`` reads a ``FeedMessage`` of Alerts and
returns :class:`FeedAlerts`; ``alerts_for_leg(alerts, tt, leg, language)``
lists the ones that touch an itinerary leg, in the passenger's language when
the feed translates them.

An alert touches a ride leg when one of its informed entities does (every
field an ``EntitySelector`` sets must match):

* ``agency_id``: a ride on a route of that agency of the alert's feed (a feed
  whose agency.txt gives no ids: any ride of the feed);
* ``route_id`` / ``route_type``: the leg's route;
* ``direction_id``: the direction of the leg's trip (trips.txt ``direction_id``;
  a trip of unknown direction is not ruled out);
* ``trip``: the leg's trip (``trip_id``, or the route of the ``TripDescriptor``);
* ``stop_id``: the stop boarded or left (or its parent station, or a platform of
  that station named by the alert).

and one of its ``active_period`` overlaps the leg's departure..arrival (no
period: always active). Walking legs carry the alerts of the stops they join.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2

from routing.errors import RealtimeError
from routing.timetable import Timetable

_CAUSES = gtfs_realtime_pb2.Alert.Cause
_EFFECTS = gtfs_realtime_pb2.Alert.Effect


@dataclass(frozen=True)
class Selector:
    agency_id: str | None = None
    route_id: str | None = None  # namespaced
    route_type: int | None = None
    trip_id: str | None = None  # namespaced
    stop_id: str | None = None  # namespaced
    direction_id: int | None = None


@dataclass(frozen=True)
class Alert:
    id: str
    feed_id: str
    periods: tuple[tuple[int, int], ...]  # (start, end) UTC epoch seconds; 0 = open
    selectors: tuple[Selector, ...]
    header: dict[str, str]  # language ('' = unspecified) -> text
    description: dict[str, str]
    url: dict[str, str]
    cause: str
    effect: str
    severity: str = "UNKNOWN_SEVERITY"

    def active(self, start: int, end: int) -> bool:
        if not self.periods:
            return True
        return any((a == 0 or a <= end) and (b == 0 or b >= start) for a, b in self.periods)

    def render(self, language: str | None) -> dict:
        """The alert as a plain dict, texts in ``language`` when translated (else the untagged / first text)."""
        lang, header = _pick(self.header, language)
        _, description = _pick(self.description, lang or language)
        _, url = _pick(self.url, lang or language)
        return {
            "id": self.id, "feed_id": self.feed_id, "cause": self.cause, "effect": self.effect,
            "severity": self.severity, "language": lang or None, "header": header, "description": description,
            "url": url,
            "active_periods": [{"start": _iso(a), "end": _iso(b)} for a, b in self.periods],
        }


@dataclass(frozen=True)
class FeedAlerts:
    feed_id: str
    timestamp: int
    alerts: tuple[Alert, ...]
    counts: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _iso(epoch: int) -> str | None:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat() if epoch else None


def _texts(ts) -> dict[str, str]:
    return {(t.language or "").strip().lower(): t.text for t in ts.translation if t.text}


def _pick(texts: dict[str, str], language: str | None) -> tuple[str, str | None]:
    """``(language, text)``: exact language, then same primary language, then untagged, then the first."""
    if not texts:
        return "", None
    for want in _preferences(language):
        if want in texts:
            return want, texts[want]
        prim = want.split("-")[0]
        for lang, text in texts.items():
            if lang.split("-")[0] == prim:
                return lang, text
    if "" in texts:
        return "", texts[""]
    lang = next(iter(texts))
    return lang, texts[lang]


def _preferences(language: str | None) -> list[str]:
    """Languages in order of preference from ``"fr"`` or an Accept-Language value ``"fr-CA,fr;q=0.9,en;q=0.5"``."""
    if not language:
        return []
    out = []
    for i, part in enumerate(language.split(",")):
        bits = part.strip().split(";")
        tag = bits[0].strip().lower()
        q = 1.0
        for b in bits[1:]:
            if b.strip().startswith("q="):
                try:
                    q = float(b.strip()[2:])
                except ValueError:
                    q = 0.0
        if tag and tag != "*" and q > 0:
            out.append((-q, i, tag))
    return [t for _, _, t in sorted(out)]


def message_kinds(msg) -> dict[str, int]:
    """How many entities of each kind a FeedMessage holds."""
    kinds = {"trip_update": 0, "vehicle": 0, "alert": 0, "other": 0}
    for e in msg.entity:
        for k in ("trip_update", "vehicle", "alert"):
            if e.HasField(k):
                kinds[k] += 1
                break
        else:
            kinds["other"] += 1
    return kinds


def parse_message(data: bytes, feed_id: str):
    msg = gtfs_realtime_pb2.FeedMessage()
    try:
        msg.ParseFromString(bytes(data))
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise RealtimeError(f"not a GTFS-Realtime FeedMessage: {exc}", details={"feed_id": feed_id}) from exc
    if not msg.header.gtfs_realtime_version:
        raise RealtimeError("not a GTFS-Realtime FeedMessage: the header has no gtfs_realtime_version",
                            details={"feed_id": feed_id})
    return msg


def parse_alerts(tt: Timetable, data: bytes, feed_id: str) -> FeedAlerts:
    """Service Alerts of feed ``feed_id``; :class:`RealtimeError` (``not_service_alerts``) for other messages."""
    if feed_id not in tt.feed_index:
        raise RealtimeError(f"unknown feed {feed_id!r}", details={"feed_id": feed_id})
    msg = parse_message(data, feed_id)
    kinds = message_kinds(msg)
    if msg.entity and not kinds["alert"]:
        raise RealtimeError("this message holds no Service Alerts; post TripUpdates to /v1/realtime/{feed_id}",
                            code="not_service_alerts", details={"feed_id": feed_id, "entities": kinds})
    ns = f"{feed_id}:"
    alerts = []
    warnings = []
    n_sel = 0
    for e in msg.entity:
        if not e.HasField("alert"):
            continue
        a = e.alert
        sels = []
        for ie in a.informed_entity:
            trip_id = ns + ie.trip.trip_id if ie.HasField("trip") and ie.trip.trip_id else None
            route = ie.route_id or (ie.trip.route_id if ie.HasField("trip") else "")
            sel = Selector(agency_id=ie.agency_id or None, route_id=ns + route if route else None,
                           route_type=int(ie.route_type) if ie.HasField("route_type") else None,
                           trip_id=trip_id, stop_id=ns + ie.stop_id if ie.stop_id else None,
                           direction_id=int(ie.direction_id) if ie.HasField("direction_id") else
                           int(ie.trip.direction_id) if ie.HasField("trip") and ie.trip.HasField("direction_id")
                           else None)
            if sel == Selector():
                warnings.append(f"alert {e.id}: an informed entity selects nothing")
                continue
            sels.append(sel)
        n_sel += len(sels)
        if not sels:
            warnings.append(f"alert {e.id}: no informed entity; not attached to any leg")
        periods = tuple((int(p.start) if p.HasField("start") else 0, int(p.end) if p.HasField("end") else 0)
                        for p in a.active_period)
        severity = "UNKNOWN_SEVERITY"
        if a.HasField("severity_level"):
            severity = gtfs_realtime_pb2.Alert.SeverityLevel.Name(a.severity_level)
        alerts.append(Alert(
            id=e.id, feed_id=feed_id, periods=periods, selectors=tuple(sels), header=_texts(a.header_text),
            description=_texts(a.description_text), url=_texts(a.url), cause=_CAUSES.Name(a.cause),
            effect=_EFFECTS.Name(a.effect), severity=severity))
    ts = int(msg.header.timestamp) if msg.header.HasField("timestamp") else 0
    counts = {"entities": len(msg.entity), "alerts": len(alerts), "informed_entities": n_sel,
              "other_entities": len(msg.entity) - len(alerts)}
    return FeedAlerts(feed_id, ts, tuple(alerts), counts, tuple(warnings[:50]))


def _stop_family(tt: Timetable, stop_id: str | None) -> set[str]:
    """A stop id with its parent station (a platform matches an alert on its station and vice versa)."""
    if not stop_id:
        return set()
    out = {stop_id}
    s = tt.find_stop(stop_id)
    if s is not None and int(tt.stop_parent[s]) >= 0:
        out.add(str(tt.stop_ids[int(tt.stop_parent[s])]))
    return out


def _matches(tt: Timetable, sel: Selector, leg: dict, stops: set[str]) -> bool:
    ride = leg.get("mode") != "WALK"
    route = tt.route_index.get(leg.get("route_id") or "") if ride else None
    if sel.agency_id is not None:
        if not ride or route is None:
            return False
        agency = str(tt.route_agency_ids[route])  # agency.txt's id as given (legs are of the alert's feed)
        if agency and agency != sel.agency_id:
            return False
    if sel.direction_id is not None:
        if not ride:
            return False
        trips = tt.trip_index.get(leg.get("trip_id") or "", ())
        dirs = {int(tt.trip_direction[t]) for t in trips}
        if dirs and -1 not in dirs and sel.direction_id not in dirs:
            return False
    if sel.route_id is not None and (not ride or leg.get("route_id") != sel.route_id):
        return False
    if sel.route_type is not None and (not ride or route is None or int(tt.route_types[route]) != sel.route_type):
        return False
    if sel.trip_id is not None and (not ride or leg.get("trip_id") != sel.trip_id):
        return False
    if sel.stop_id is not None and not (_stop_family(tt, sel.stop_id) & stops):
        return False
    return True


def alerts_for_leg(alerts: dict[str, FeedAlerts] | list[FeedAlerts], tt: Timetable, leg: dict,
                   language: str | None = None) -> list[dict]:
    """The alerts touching ``leg`` (an itinerary leg dict), rendered in ``language``."""
    feeds = alerts.values() if isinstance(alerts, dict) else alerts
    start = int(datetime.fromisoformat(leg["departure"]).timestamp())
    end = int(datetime.fromisoformat(leg["arrival"]).timestamp())
    stops = set()
    for place in (leg.get("from") or {}, leg.get("to") or {}):
        stops |= _stop_family(tt, place.get("stop_id"))
    leg_feed = leg.get("feed_id")
    out = []
    for fa in feeds:
        if leg.get("mode") != "WALK" and leg_feed is not None and leg_feed != fa.feed_id:
            continue
        for a in fa.alerts:
            if a.active(start, end) and any(_matches(tt, s, leg, stops) for s in a.selectors):
                out.append(a.render(language))
    return out
