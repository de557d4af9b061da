"""Reading the fare-relevant tables of one GTFS feed (zip or folder).

gtfs-kit reads neither Fares v2 nor everything of Fares v1, so this module
reads the CSV files itself (standard ``csv``; ids stay strings exactly as
written). Bad input raises `FareDataError` naming the file and line
(line 1 = header), never a bare traceback.

Tables read (all optional except where a referenced table is needed):

- context: agency.txt (timezone), routes.txt (agency, route_type,
  ``network_id``), stops.txt (``parent_station``, ``zone_id``), calendar.txt /
  calendar_dates.txt (only for the services that timeframes.txt references);
- Fares v2: networks.txt, route_networks.txt, areas.txt, stop_areas.txt,
  timeframes.txt, rider_categories.txt, fare_media.txt, fare_products.txt,
  fare_leg_rules.txt, fare_leg_join_rules.txt, fare_transfer_rules.txt;
- Fares v1: fare_attributes.txt, fare_rules.txt.

Amounts become integer minor units here (see `ticketing.fares.money`).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ticketing.fares.errors import FareDataError
from ticketing.fares.money import Money, to_minor

__all__ = [
    "FareAttribute",
    "FareLegRule",
    "FareProductRow",
    "FareRuleV1",
    "FareTransferRule",
    "FeedFares",
    "LegJoinRule",
    "Timeframe",
    "read_feed_fares",
]


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class FareProductRow:
    """One row of fare_products.txt. ``None`` category/medium = any (spec: empty field)."""

    fare_product_id: str
    name: str
    rider_category_id: str | None
    fare_media_id: str | None
    price: Money
    line: int


@dataclass(frozen=True, slots=True)
class FareLegRule:
    """One row of fare_leg_rules.txt; empty fields are ``None``."""

    leg_group_id: str | None
    network_id: str | None
    from_area_id: str | None
    to_area_id: str | None
    from_timeframe_group_id: str | None
    to_timeframe_group_id: str | None
    fare_product_id: str
    rule_priority: int
    transfer_only: bool  # MBTA extension: the rule prices only a leg reached by a transfer
    line: int


@dataclass(frozen=True, slots=True)
class LegJoinRule:
    """One row of fare_leg_join_rules.txt."""

    from_network_id: str
    to_network_id: str
    from_stop_id: str | None
    to_stop_id: str | None
    line: int


@dataclass(frozen=True, slots=True)
class FareTransferRule:
    """One row of fare_transfer_rules.txt (durations in seconds)."""

    from_leg_group_id: str | None
    to_leg_group_id: str | None
    transfer_count: int | None  # -1 = unlimited; None = not given
    duration_limit: int | None
    duration_limit_type: int | None  # 0..3, see the spec
    fare_transfer_type: int  # 0 = A + AB, 1 = A + AB + B, 2 = AB
    fare_product_id: str | None
    filter_fare_product_id: str | None  # newer column: applies only after a leg priced with that product
    line: int


@dataclass(frozen=True, slots=True)
class Timeframe:
    """One row of timeframes.txt: seconds after local midnight, end exclusive."""

    start_s: int
    end_s: int
    service_id: str


@dataclass(frozen=True, slots=True)
class FareAttribute:
    """One row of fare_attributes.txt (Fares v1)."""

    fare_id: str
    price: Money
    transfers: int | None  # 0, 1, 2 or None = unlimited
    transfer_duration: int | None  # seconds from the first boarding
    agency_id: str | None
    line: int


@dataclass(frozen=True, slots=True)
class FareRuleV1:
    """One row of fare_rules.txt (Fares v1)."""

    fare_id: str
    route_id: str | None
    origin_id: str | None
    destination_id: str | None
    contains_id: str | None
    line: int


@dataclass(slots=True)
class _Service:
    weekdays: tuple[bool, ...] = (False,) * 7
    start: date | None = None
    end: date | None = None
    added: set[date] = field(default_factory=set)
    removed: set[date] = field(default_factory=set)

    def active(self, d: date) -> bool:
        if d in self.removed:
            return False
        if d in self.added:
            return True
        return self.start is not None and self.end is not None and self.start <= d <= self.end and \
            self.weekdays[d.weekday()]


@dataclass(slots=True)
class FeedFares:
    """The fare data of one feed, ids not namespaced (the engine namespaces them).

    ``stop_areas`` maps a stop to its areas with the spec's station rule applied:
    a platform without areas of its own inherits its parent station's.
    """

    feed_id: str
    timezone: ZoneInfo | None
    route_network: dict[str, str] = field(default_factory=dict)
    route_agency: dict[str, str] = field(default_factory=dict)
    route_type: dict[str, int] = field(default_factory=dict)
    networks: set[str] = field(default_factory=set)
    stop_parent: dict[str, str] = field(default_factory=dict)
    stop_zone: dict[str, str] = field(default_factory=dict)
    areas: dict[str, str] = field(default_factory=dict)
    stop_areas: dict[str, frozenset[str]] = field(default_factory=dict)
    timeframes: dict[str, list[Timeframe]] = field(default_factory=dict)
    services: dict[str, _Service] = field(default_factory=dict)
    rider_categories: dict[str, tuple[str, bool]] = field(default_factory=dict)  # id -> (name, is_default)
    fare_media: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (name, fare_media_type)
    fare_products: dict[str, list[FareProductRow]] = field(default_factory=dict)
    leg_rules: list[FareLegRule] = field(default_factory=list)
    has_rule_priority: bool = False
    leg_join_rules: list[LegJoinRule] = field(default_factory=list)
    transfer_rules: list[FareTransferRule] = field(default_factory=list)
    fare_attributes: dict[str, FareAttribute] = field(default_factory=dict)
    fare_rules_v1: list[FareRuleV1] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_v2(self) -> bool:
        return bool(self.leg_rules)

    @property
    def has_v1(self) -> bool:
        return bool(self.fare_attributes)

    def areas_of(self, stop_id: str) -> frozenset[str]:
        """Areas of a stop (own, else its parent station's); empty when none."""
        own = self.stop_areas.get(stop_id)
        if own:
            return own
        parent = self.stop_parent.get(stop_id)
        return self.stop_areas.get(parent, frozenset()) if parent else frozenset()

    def service_active(self, service_id: str, d: date) -> bool:
        svc = self.services.get(service_id)
        return svc is not None and svc.active(d)


# --------------------------------------------------------------------------- CSV access


class _Source:
    """Text files of a feed in a zip or a folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            self._zip = None
            self._names = {p.name for p in self.path.iterdir() if p.is_file()}
        elif self.path.is_file():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile:
                raise FareDataError(f"{self.path}: not a zip file or folder", details={"path": str(path)}) from None
            # some feeds zip a folder: use the base names
            self._members = {Path(n).name: n for n in self._zip.namelist() if not n.endswith("/")}
            self._names = set(self._members)
        else:
            raise FareDataError(f"{self.path}: no such feed", details={"path": str(path)})

    def has(self, name: str) -> bool:
        return name in self._names

    def rows(self, name: str, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, str]]]:
        """Yields (line number, row) with values stripped; checks required columns."""
        if not self.has(name):
            return
        if self._zip is None:
            raw = (self.path / name).read_bytes()
        else:
            raw = self._zip.read(self._members[name])
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FareDataError(f"{name}: not UTF-8 text", details={"file": name}) from None
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return
        missing = [c for c in required if c not in header]
        if missing:
            raise FareDataError(f"{name}: missing required column(s) {', '.join(missing)}",
                                details={"file": name, "missing_columns": missing})
        for values in reader:
            if not values or all(not v.strip() for v in values):
                continue
            yield reader.line_num, {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header)}

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _opt(v: str) -> str | None:
    return v if v != "" else None


def _int(v: str, file: str, line: int, column: str, *, allowed: set[int] | None = None) -> int | None:
    if v == "":
        return None
    try:
        out = int(v)
    except ValueError:
        raise FareDataError(f"{file} line {line}: {column}={v!r} is not an integer",
                            details={"file": file, "line": line, "column": column}) from None
    if allowed is not None and out not in allowed:
        raise FareDataError(f"{file} line {line}: {column}={v!r} is not one of {sorted(allowed)}",
                            details={"file": file, "line": line, "column": column})
    return out


def _need(row: dict[str, str], column: str, file: str, line: int) -> str:
    v = row.get(column, "")
    if v == "":
        raise FareDataError(f"{file} line {line}: {column} is empty", details={"file": file, "line": line,
                                                                             "column": column})
    return v


def _time_s(v: str, file: str, line: int, column: str, default: int) -> int:
    if v == "":
        return default
    parts = v.split(":")
    try:
        h, m, s = (int(p) for p in parts)
    except ValueError:
        raise FareDataError(f"{file} line {line}: {column}={v!r} is not HH:MM:SS",
                            details={"file": file, "line": line, "column": column}) from None
    return h * 3600 + m * 60 + s


def _date(v: str, file: str, line: int, column: str) -> date:
    try:
        return datetime.strptime(v, "%Y%m%d").date()
    except ValueError:
        raise FareDataError(f"{file} line {line}: {column}={v!r} is not YYYYMMDD",
                            details={"file": file, "line": line, "column": column}) from None


def _ref(kind: str, value: str | None, known: set[str] | dict, file: str, line: int, column: str) -> None:
    if value is not None and value not in known:
        raise FareDataError(f"{file} line {line}: {column}={value!r} names no {kind}",
                            details={"file": file, "line": line, "column": column, "value": value})


# --------------------------------------------------------------------------- reader


def read_feed_fares(feed_id: str, path: Path) -> FeedFares:
    """Reads the fare-relevant tables of the feed at ``path`` (zip or folder).

    Raises `FareDataError` on a malformed row (naming file and line) or a
    reference to an id the feed does not define.
    """
    src = _Source(Path(path))
    try:
        return _read(feed_id, src)
    finally:
        src.close()


def _read(feed_id: str, src: _Source) -> FeedFares:
    tz: ZoneInfo | None = None
    for line, row in src.rows("agency.txt"):
        name = row.get("agency_timezone", "")
        if name:
            try:
                tz = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise FareDataError(f"agency.txt line {line}: unknown agency_timezone {name!r}",
                                    details={"file": "agency.txt", "line": line}) from None
            break
    ff = FeedFares(feed_id=feed_id, timezone=tz)

    for line, row in src.rows("networks.txt", ("network_id",)):
        ff.networks.add(_need(row, "network_id", "networks.txt", line))
    for line, row in src.rows("routes.txt", ("route_id",)):
        rid = _need(row, "route_id", "routes.txt", line)
        if row.get("network_id"):
            ff.route_network[rid] = row["network_id"]
            ff.networks.add(row["network_id"])
        if row.get("agency_id"):
            ff.route_agency[rid] = row["agency_id"]
        rt = _int(row.get("route_type", ""), "routes.txt", line, "route_type")
        if rt is not None:
            ff.route_type[rid] = rt
    for line, row in src.rows("route_networks.txt", ("network_id", "route_id")):
        nid = _need(row, "network_id", "route_networks.txt", line)
        ff.route_network[_need(row, "route_id", "route_networks.txt", line)] = nid
        ff.networks.add(nid)

    known_stops: set[str] = set()
    for line, row in src.rows("stops.txt", ("stop_id",)):
        sid = _need(row, "stop_id", "stops.txt", line)
        known_stops.add(sid)
        if row.get("parent_station"):
            ff.stop_parent[sid] = row["parent_station"]
        if row.get("zone_id"):
            ff.stop_zone[sid] = row["zone_id"]

    for line, row in src.rows("areas.txt", ("area_id",)):
        ff.areas[_need(row, "area_id", "areas.txt", line)] = row.get("area_name", "")
    stop_areas: dict[str, set[str]] = {}
    for line, row in src.rows("stop_areas.txt", ("area_id", "stop_id")):
        aid = _need(row, "area_id", "stop_areas.txt", line)
        _ref("area", aid, ff.areas, "stop_areas.txt", line, "area_id")
        stop_areas.setdefault(_need(row, "stop_id", "stop_areas.txt", line), set()).add(aid)
    ff.stop_areas = {k: frozenset(v) for k, v in stop_areas.items()}

    for line, row in src.rows("timeframes.txt", ("timeframe_group_id", "service_id")):
        gid = _need(row, "timeframe_group_id", "timeframes.txt", line)
        start = _time_s(row.get("start_time", ""), "timeframes.txt", line, "start_time", 0)
        end = _time_s(row.get("end_time", ""), "timeframes.txt", line, "end_time", 24 * 3600)
        if (row.get("start_time", "") == "") != (row.get("end_time", "") == ""):
            raise FareDataError(f"timeframes.txt line {line}: start_time and end_time must both be set or both empty",
                                details={"file": "timeframes.txt", "line": line})
        if not 0 <= start < end <= 24 * 3600:
            raise FareDataError(f"timeframes.txt line {line}: need 00:00:00 <= start_time < end_time <= 24:00:00",
                                details={"file": "timeframes.txt", "line": line})
        ff.timeframes.setdefault(gid, []).append(Timeframe(start, end, _need(row, "service_id", "timeframes.txt",
                                                                            line)))
    if ff.timeframes:
        _read_services(src, ff, {t.service_id for ts in ff.timeframes.values() for t in ts})

    for line, row in src.rows("rider_categories.txt", ("rider_category_id",)):
        cid = _need(row, "rider_category_id", "rider_categories.txt", line)
        is_default = _int(row.get("is_default_fare_category", ""), "rider_categories.txt", line,
                          "is_default_fare_category", allowed={0, 1}) == 1
        ff.rider_categories[cid] = (row.get("rider_category_name", ""), is_default)
    for line, row in src.rows("fare_media.txt", ("fare_media_id",)):
        mid = _need(row, "fare_media_id", "fare_media.txt", line)
        mtype = _int(row.get("fare_media_type", ""), "fare_media.txt", line, "fare_media_type",
                     allowed={0, 1, 2, 3, 4})
        ff.fare_media[mid] = (row.get("fare_media_name", ""), mtype if mtype is not None else 0)
    for line, row in src.rows("fare_products.txt", ("fare_product_id", "amount", "currency")):
        pid = _need(row, "fare_product_id", "fare_products.txt", line)
        currency = _need(row, "currency", "fare_products.txt", line).upper()
        amount = to_minor(_need(row, "amount", "fare_products.txt", line), currency,
                          where=f"fare_products.txt line {line}")
        cat = _opt(row.get("rider_category_id", ""))
        media = _opt(row.get("fare_media_id", ""))
        _ref("rider category", cat, ff.rider_categories, "fare_products.txt", line, "rider_category_id")
        _ref("fare medium", media, ff.fare_media, "fare_products.txt", line, "fare_media_id")
        ff.fare_products.setdefault(pid, []).append(
            FareProductRow(pid, row.get("fare_product_name", ""), cat, media, Money(amount, currency), line))

    f = "fare_leg_rules.txt"
    for line, row in src.rows(f, ("fare_product_id",)):
        if "rule_priority" in row:
            ff.has_rule_priority = True
        rule = FareLegRule(
            leg_group_id=_opt(row.get("leg_group_id", "")),
            network_id=_opt(row.get("network_id", "")),
            from_area_id=_opt(row.get("from_area_id", "")),
            to_area_id=_opt(row.get("to_area_id", "")),
            from_timeframe_group_id=_opt(row.get("from_timeframe_group_id", "")),
            to_timeframe_group_id=_opt(row.get("to_timeframe_group_id", "")),
            fare_product_id=_need(row, "fare_product_id", f, line),
            rule_priority=_int(row.get("rule_priority", ""), f, line, "rule_priority") or 0,
            transfer_only=row.get("transfer_only", "") == "1",
            line=line,
        )
        _ref("fare product", rule.fare_product_id, ff.fare_products, f, line, "fare_product_id")
        _ref("area", rule.from_area_id, ff.areas, f, line, "from_area_id")
        _ref("area", rule.to_area_id, ff.areas, f, line, "to_area_id")
        _ref("network", rule.network_id, ff.networks, f, line, "network_id")
        for col, tf in (("from_timeframe_group_id", rule.from_timeframe_group_id),
                        ("to_timeframe_group_id", rule.to_timeframe_group_id)):
            # Real feeds (MBTA) name timeframe groups that timeframes.txt lacks. A group without
            # timeframes covers no time, so the rule can never match: keep it, warn, go on.
            if tf is not None and tf not in ff.timeframes:
                msg = f"{f} line {line}: {col}={tf!r} names no timeframe group; the rule never matches"
                if len(ff.warnings) < 50:
                    ff.warnings.append(msg)
        ff.leg_rules.append(rule)

    f = "fare_leg_join_rules.txt"
    for line, row in src.rows(f, ("from_network_id", "to_network_id")):
        jr = LegJoinRule(_need(row, "from_network_id", f, line), _need(row, "to_network_id", f, line),
                         _opt(row.get("from_stop_id", "")), _opt(row.get("to_stop_id", "")), line)
        if (jr.from_stop_id is None) != (jr.to_stop_id is None):
            raise FareDataError(f"{f} line {line}: from_stop_id and to_stop_id must be given together",
                                details={"file": f, "line": line})
        _ref("network", jr.from_network_id, ff.networks, f, line, "from_network_id")
        _ref("network", jr.to_network_id, ff.networks, f, line, "to_network_id")
        _ref("stop", jr.from_stop_id, known_stops, f, line, "from_stop_id")
        _ref("stop", jr.to_stop_id, known_stops, f, line, "to_stop_id")
        ff.leg_join_rules.append(jr)

    f = "fare_transfer_rules.txt"
    groups = {r.leg_group_id for r in ff.leg_rules if r.leg_group_id}
    for line, row in src.rows(f, ("fare_transfer_type",)):
        tr = FareTransferRule(
            from_leg_group_id=_opt(row.get("from_leg_group_id", "")),
            to_leg_group_id=_opt(row.get("to_leg_group_id", "")),
            transfer_count=_int(row.get("transfer_count", ""), f, line, "transfer_count"),
            duration_limit=_int(row.get("duration_limit", ""), f, line, "duration_limit"),
            duration_limit_type=_int(row.get("duration_limit_type", ""), f, line, "duration_limit_type",
                                     allowed={0, 1, 2, 3}),
            fare_transfer_type=_int(_need(row, "fare_transfer_type", f, line), f, line, "fare_transfer_type",
                                    allowed={0, 1, 2}),  # type: ignore[arg-type]
            fare_product_id=_opt(row.get("fare_product_id", "")),
            filter_fare_product_id=_opt(row.get("filter_fare_product_id", "")),
            line=line,
        )
        if tr.duration_limit is not None and tr.duration_limit_type is None:
            raise FareDataError(f"{f} line {line}: duration_limit needs duration_limit_type",
                                details={"file": f, "line": line})
        if tr.transfer_count is not None and (tr.transfer_count == 0 or tr.transfer_count < -1):
            raise FareDataError(f"{f} line {line}: transfer_count must be -1 or >= 1",
                                details={"file": f, "line": line})
        _ref("leg group", tr.from_leg_group_id, groups, f, line, "from_leg_group_id")
        _ref("leg group", tr.to_leg_group_id, groups, f, line, "to_leg_group_id")
        _ref("fare product", tr.fare_product_id, ff.fare_products, f, line, "fare_product_id")
        ff.transfer_rules.append(tr)

    f = "fare_attributes.txt"
    for line, row in src.rows(f, ("fare_id", "price", "currency_type")):
        fid = _need(row, "fare_id", f, line)
        currency = _need(row, "currency_type", f, line).upper()
        price = Money(to_minor(_need(row, "price", f, line), currency, where=f"{f} line {line}"), currency)
        ff.fare_attributes[fid] = FareAttribute(
            fid, price, _int(row.get("transfers", ""), f, line, "transfers", allowed={0, 1, 2}),
            _int(row.get("transfer_duration", ""), f, line, "transfer_duration"),
            _opt(row.get("agency_id", "")), line)
    f = "fare_rules.txt"
    for line, row in src.rows(f, ("fare_id",)):
        fr = FareRuleV1(_need(row, "fare_id", f, line), _opt(row.get("route_id", "")),
                        _opt(row.get("origin_id", "")), _opt(row.get("destination_id", "")),
                        _opt(row.get("contains_id", "")), line)
        _ref("fare", fr.fare_id, ff.fare_attributes, f, line, "fare_id")
        ff.fare_rules_v1.append(fr)
    return ff


def _read_services(src: _Source, ff: FeedFares, wanted: set[str]) -> None:
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    for line, row in src.rows("calendar.txt", ("service_id", "start_date", "end_date")):
        sid = row["service_id"]
        if sid not in wanted:
            continue
        svc = ff.services.setdefault(sid, _Service())
        svc.weekdays = tuple(row.get(d, "0") == "1" for d in days)
        svc.start = _date(row["start_date"], "calendar.txt", line, "start_date")
        svc.end = _date(row["end_date"], "calendar.txt", line, "end_date")
    for line, row in src.rows("calendar_dates.txt", ("service_id", "date", "exception_type")):
        sid = row["service_id"]
        if sid not in wanted:
            continue
        svc = ff.services.setdefault(sid, _Service())
        d = _date(row["date"], "calendar_dates.txt", line, "date")
        (svc.added if row["exception_type"] == "1" else svc.removed).add(d)
    for sid in sorted(wanted - set(ff.services)):
        raise FareDataError(f"timeframes.txt: service_id {sid!r} is in neither calendar.txt nor calendar_dates.txt",
                            details={"file": "timeframes.txt", "service_id": sid})
