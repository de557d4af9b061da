"""Station metadata for regulators: the grade and type of a stop (configurable, seeded in the demo).

GTFS knows stops, not the administrative grade of a coach station (客运站等级,
一级 highest … 五级) nor whether a stop is a coach station, a metro station
or a bus stop. Regulators' coverage targets are stated in those terms
("≥ 99 % of grade-2-and-above coach stations"), so the platform keeps them
here, keyed by the namespaced stop id (``<feed_id>:<stop_id>``, a parent
station or a stop without one).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, select

from maas.db import utcnow
from maas.errors import MaasError


class StationType(StrEnum):
    coach_station = "coach_station"
    metro_station = "metro_station"
    rail_station = "rail_station"
    bus_stop = "bus_stop"
    ferry_pier = "ferry_pier"
    tram_stop = "tram_stop"


#: Mode of the routes serving a stop (routing.timetable.MODES) -> the type a stop gets when none is configured.
TYPE_BY_MODE = {"COACH": StationType.coach_station, "SUBWAY": StationType.metro_station,
                "RAIL": StationType.rail_station, "BUS": StationType.bus_stop, "FERRY": StationType.ferry_pier,
                "TRAM": StationType.tram_stop}


class InvalidStationMeta(MaasError):
    code = "invalid_station_meta"
    status = 422


class StationMeta(SQLModel, table=True):
    """Grade (1 = 一级, the highest, … 5) and type of one station; null grade = not graded."""

    __tablename__ = "station_meta"

    stop_id: str = Field(primary_key=True, max_length=200)
    station_type: str = Field(max_length=24, index=True)
    grade: int | None = Field(default=None)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


def set_station_meta(session: Session, *, stop_id: str, station_type: str, grade: int | None = None) -> StationMeta:
    """Create or replace the metadata of one station; raises InvalidStationMeta on a bad type or grade."""
    if station_type not in StationType.__members__:
        raise InvalidStationMeta(f"unknown station type {station_type!r}",
                                 details={"allowed": sorted(StationType.__members__)})
    if grade is not None and not 1 <= grade <= 5:
        raise InvalidStationMeta("a station grade is 1 (highest) to 5", details={"grade": grade})
    if ":" not in stop_id:
        raise InvalidStationMeta("stop ids are namespaced '<feed_id>:<stop_id>'", details={"stop_id": stop_id})
    row = session.get(StationMeta, stop_id) or StationMeta(stop_id=stop_id, station_type=station_type)
    row.station_type = station_type
    row.grade = grade
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def list_station_meta(session: Session) -> dict[str, StationMeta]:
    """Every configured station by namespaced stop id."""
    return {r.stop_id: r for r in session.exec(select(StationMeta)).all()}


#: Grades of the demo city's coach stations (云溪汽车客运总站 is 一级; the county stations 二级/三级).
DEMO_COACH_GRADES = {"YXZZ": 1, "QSX": 2, "BSX": 2, "MLX": 3}
_DEMO_TYPES = {"bus": StationType.bus_stop, "metro": StationType.metro_station, "coach": StationType.coach_station,
               "ferry": StationType.ferry_pier}


def seed_demo_stations(session: Session, feeds: list) -> int:  # list[maas.demo.DemoFeed]
    """Types every station of the demo feeds (stops without a parent) and grades the coach stations."""
    import csv
    from pathlib import Path

    n = 0
    for feed in feeds:
        with (Path(feed.path) / "stops.txt").open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("parent_station") or row.get("location_type", "0") not in ("", "0", "1"):
                    continue
                grade = DEMO_COACH_GRADES.get(row["stop_id"]) if feed.kind == "coach" else None
                set_station_meta(session, stop_id=f"{feed.feed_id}:{row['stop_id']}",
                                 station_type=_DEMO_TYPES[feed.kind].value, grade=grade)
                n += 1
    return n
