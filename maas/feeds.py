"""Imported GTFS feeds: the registry in the database and the compiled timetable on disk.

`routing` reads, validates and compiles feeds; this module records which
feeds belong to which operator and composes them into one timetable.
"""

from __future__ import annotations

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


def compile_options(settings: Settings, footpaths_file: Path | None = None) -> CompileOptions:
    return CompileOptions(walk_radius_m=settings.walk_radius_m, walk_speed_m_s=settings.walk_speed_m_s,
                          footpaths_file=footpaths_file)


def import_feed(session: Session, *, path: Path, feed_id: str, operator_id: str | None = None,
                operator_name: str | None = None, operator_kind: str | None = None,
                actor: Principal | None = None) -> tuple[FeedRecord, FeedReport]:
    """Validate a feed and register it (creating its operator if new).

    A broken feed raises `routing.errors.FeedError` carrying the readable report; nothing is recorded.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FeedNotFound(f"no GTFS feed at {path}", details={"path": str(path)})
    if not feed_id or ":" in feed_id or len(feed_id) > 64 or not accounts.OPERATOR_ID_RE.match(feed_id):
        raise InvalidFeedId("feed ids are 1-64 letters, digits, '_', '.' or '-' (no ':')")
    operator_id = operator_id or feed_id
    source = FeedSource(feed_id=feed_id, path=path, operator_id=operator_id)
    report = validate_feed(source)
    if not report.ok:
        raise FeedError(f"feed {feed_id} was refused: {len(report.problems)} problem(s)", report=report)
    accounts.ensure_operator(session, operator_id=operator_id, name=operator_name, kind=operator_kind, actor=actor)
    record = session.get(FeedRecord, feed_id) or FeedRecord(feed_id=feed_id, operator_id=operator_id, path="",
                                                            sha256="")
    record.operator_id = operator_id
    record.path = str(path)
    record.sha256 = source_hash(source)
    record.summary = report.to_dict()
    session.add(record)
    session.flush()
    audit.record(session, action="feed.import", actor_id=actor.subject if actor else None,
                 actor_role=actor.role if actor else "system", target=feed_id, operator_id=operator_id,
                 details={"sha256": record.sha256, "counts": report.counts})
    return record, report


def list_sources(session: Session) -> list[FeedSource]:
    rows = session.exec(select(FeedRecord).order_by(FeedRecord.feed_id)).all()
    return [FeedSource(feed_id=r.feed_id, path=Path(r.path), operator_id=r.operator_id) for r in rows]


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
