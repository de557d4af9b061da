"""Imported GTFS feeds: the registry in the database and the compiled timetable on disk.

`routing` reads, validates and compiles feeds; this module records which
feeds belong to which operator and composes them into one timetable.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sqlmodel import Session, select

from maas import accounts, audit
from maas.errors import MaasError, NotFound
from maas.models import FeedRecord
from maas.security import Principal
from maas.settings import Settings
from routing.cache import load_or_compile, source_hash
from routing.compile import CompileOptions
from routing.errors import FeedError
from routing.feeds import FeedReport, FeedSource, validate_feed
from routing.timetable import Timetable
from ticketing.fares.engine import FareEngine
from maas.demo import read_seat_capacity


class FeedNotFound(NotFound):
    code = "feed_not_found"


class InvalidFeedId(MaasError):
    code = "invalid_feed_id"


class UnknownAgency(MaasError):
    code = "unknown_agency"


def default_agency_operator_id(feed_id: str, agency_id: str) -> str:
    """The operator id an agency of a several-agency feed gets by default: ``<feed_id>.<agency_id>``.

    Deterministic; an agency id that is not a valid operator-id suffix (characters outside
    ``[A-Za-z0-9_.-]``, or too long) is slugged and suffixed with 8 hex digits of its sha256, so
    two agencies never share an operator by accident.
    """
    plain = f"{feed_id}.{agency_id}"
    if agency_id and len(plain) <= 64 and accounts.OPERATOR_ID_RE.match(plain):
        return plain
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", agency_id).strip("-")[:12] or "agency"
    digest = hashlib.sha256(agency_id.encode()).hexdigest()[:8]
    return f"{feed_id[:64 - len(slug) - 10]}.{slug}-{digest}"


def agency_operator_map(feed_id: str, agencies: list[dict[str, str]], *, stored: dict[str, str] | None = None,
                        overrides: dict[str, str] | None = None) -> dict[str, str]:
    """``agency_id -> operator_id`` for a feed's agencies.

    One agency: nothing (the feed's operator owns every route, as before). Several: one operator
    per agency (`default_agency_operator_id`). Then the mapping stored at the previous import (for
    agencies still in the feed: a re-import keeps earlier overrides), then ``overrides``.
    Raises `UnknownAgency` when an override names an agency the feed does not have.
    """
    ids = [a["agency_id"] for a in agencies]
    unknown = sorted(set(overrides or {}) - set(ids))
    if unknown:
        raise UnknownAgency(f"feed {feed_id} has no agency {', '.join(map(repr, unknown))}",
                            details={"unknown": unknown, "agencies": ids})
    mapping = {a: default_agency_operator_id(feed_id, a) for a in ids} if len(ids) > 1 else {}
    mapping.update({a: o for a, o in (stored or {}).items() if a in ids})
    mapping.update(overrides or {})
    return mapping


def compile_options(settings: Settings, footpaths_file: Path | None = None) -> CompileOptions:
    return CompileOptions(walk_radius_m=settings.walk_radius_m, walk_speed_m_s=settings.walk_speed_m_s,
                          footpaths_file=footpaths_file)


def import_feed(session: Session, *, path: Path, feed_id: str, operator_id: str | None = None,
                operator_name: str | None = None, operator_kind: str | None = None,
                agency_operators: dict[str, str] | None = None, in_seat_from_blocks: bool | None = None,
                actor: Principal | None = None) -> tuple[FeedRecord, FeedReport]:
    """Validate a feed and register it (creating its operators if new).

    ``operator_id`` (default: the feed id) owns the feed; the routes of each agency belong to the
    operator `agency_operator_map` gives it (``agency_operators`` overrides: ``agency_id -> operator_id``).
    ``in_seat_from_blocks``: infer in-seat links from trips.txt ``block_id`` when compiling (``None``: as stored
    at the previous import, else off).
    A broken feed raises `routing.errors.FeedError` carrying the readable report; nothing is recorded.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FeedNotFound(f"no GTFS feed at {path}", details={"path": str(path)})
    if not feed_id or ":" in feed_id or len(feed_id) > 64 or not accounts.OPERATOR_ID_RE.match(feed_id):
        raise InvalidFeedId("feed ids are 1-64 letters, digits, '_', '.' or '-' (no ':')")
    operator_id = operator_id or feed_id
    record = session.get(FeedRecord, feed_id)
    if in_seat_from_blocks is None:
        in_seat_from_blocks = bool(record.in_seat_from_blocks) if record else False
    source = FeedSource(feed_id=feed_id, path=path, operator_id=operator_id, in_seat_from_blocks=in_seat_from_blocks)
    report = validate_feed(source)
    if not report.ok:
        raise FeedError(f"feed {feed_id} was refused: {len(report.problems)} problem(s)", report=report)
    mapping = agency_operator_map(feed_id, report.agencies, stored=record.agency_operators if record else None,
                                  overrides=agency_operators)
    accounts.ensure_operator(session, operator_id=operator_id, name=operator_name, kind=operator_kind, actor=actor)
    names = {a["agency_id"]: a["name"] for a in report.agencies}
    for agency_id, agency_operator in sorted(mapping.items()):
        accounts.ensure_operator(session, operator_id=agency_operator, name=names.get(agency_id) or None,
                                 kind=operator_kind, actor=actor)
    record = record or FeedRecord(feed_id=feed_id, operator_id=operator_id, path="", sha256="")
    record.operator_id = operator_id
    record.agency_operators = mapping
    record.in_seat_from_blocks = in_seat_from_blocks
    record.path = str(path)
    record.sha256 = source_hash(source)
    record.summary = report.to_dict()
    session.add(record)
    session.flush()
    audit.record(session, action="feed.import", actor_id=actor.subject if actor else None,
                 actor_role=actor.role if actor else "system", target=feed_id, operator_id=operator_id,
                 details={"sha256": record.sha256, "counts": report.counts, "agency_operators": mapping,
                          "in_seat_from_blocks": in_seat_from_blocks})
    return record, report


def list_sources(session: Session) -> list[FeedSource]:
    rows = session.exec(select(FeedRecord).order_by(FeedRecord.feed_id)).all()
    return [FeedSource(feed_id=r.feed_id, path=Path(r.path), operator_id=r.operator_id,
                       agency_operators=r.agency_operators or {},
                       in_seat_from_blocks=bool(r.in_seat_from_blocks)) for r in rows]


def build_timetable(settings: Settings, sources: list[FeedSource],
                    footpaths_file: Path | None = None) -> tuple[Timetable, bool]:
    """The compiled timetable of these feeds, from the on-disk cache when it is there."""
    if not sources:
        raise NoFeeds("no feeds are imported yet: run `maas feeds import PATH --feed-id ID` first")
    return load_or_compile(sources, settings.timetable_dir, compile_options(settings, footpaths_file))


AGREEMENTS_FILE = "fare_agreements.json"
OPERATOR_TABLES_FILE = "operator_fare_tables.json"


def _platform_file(settings: Settings, configured: Path | None, name: str,
                   sources: list[FeedSource]) -> Path | None:
    """The configured file; else ``<data_dir>/platform/<name>``; else the demo layout's
    ``<feeds' parent>/platform/<name>``; else none."""
    if configured is not None:
        return configured
    candidates = [settings.platform_dir / name, *(Path(s.path).parent / "platform" / name for s in sources)]
    return next((c for c in candidates if c.is_file()), None)


def build_fare_engine(settings: Settings, sources: list[FeedSource]) -> FareEngine:
    """Fares of the imported feeds plus the platform's agreements and operator fare tables."""
    return FareEngine.from_feeds(
        [(s.feed_id, s.path) for s in sources],
        agreements=_platform_file(settings, settings.fare_agreements_file, AGREEMENTS_FILE, sources),
        operator_tables=_platform_file(settings, settings.operator_fare_tables_file, OPERATOR_TABLES_FILE, sources),
        operators={s.feed_id: s.operator_id for s in sources},
    )


def build_seat_capacity(sources: list[FeedSource]) -> dict[str, int]:
    """Namespaced trip id -> seats of reserved-seat trips (operator configuration: ``seat_capacity.txt``)."""
    caps: dict[str, int] = {}
    for s in sources:
        if Path(s.path).is_dir():
            caps.update({f"{s.feed_id}:{trip}": n for trip, n in read_seat_capacity(Path(s.path)).items()})
    return caps


class NoFeeds(MaasError):
    code = "no_feeds"
    status = 503
