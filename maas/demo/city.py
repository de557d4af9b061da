"""The demo city 云溪市 (Yunxi): a generated, fictional prefecture-level city.

`write_demo_city(out_dir)` writes one real GTFS feed (a folder of ``.txt``
files) per operator, plus platform-level configuration that plain GTFS cannot
express::

    out_dir/
      yx-bus/      云溪公交集团  city bus: 4 routes (one night route past midnight),
                   Fares v2 flat fare + free bus->bus transfer with card/QR
      yx-metro/    云溪地铁      2 lines crossing at 人民广场 (parent station +
                   one platform per line), Fares v2 ring-zone fares, a join
                   rule so a line change inside the paid area is one fare leg
      yx-coach/    云溪客运集团  客运班线 to 3 county towns, route_type 204,
                   coach stations with stop_code, Fares v2 OD fares by area,
                   reserved seats (``seat_capacity.txt``: trip_id,seat_capacity)
      yx-ferry/    云溪轮渡      one river crossing, NO fare files: priced by the
                   operator fare table below
      platform/
        fare_agreements.json      interoperator fare agreements (联程优惠)
        operator_fare_tables.json fare tables of operators without GTFS fares

Everything is deterministic: the only input is ``today`` (default
``date.today()``); services run from ``today - 30 days`` to
``today + 180 days`` with one public holiday (see `demo_holiday`) on which
weekday services are replaced by weekend services (calendar_dates.txt).

Geometry is laid out in local metres around the city centre (人民广场,
`CENTER_LAT`, `CENTER_LON`) and converted to WGS84; bus stops that serve a
metro station sit 100-200 m from it so the router's generated footpaths link
the bus and metro feeds.

Fare amounts in the files are decimal currency units (GTFS convention:
``2.00`` CNY = 200 fen). The agreements and operator tables (JSON) use integer
minor units.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

__all__ = [
    "CENTER_LAT",
    "CENTER_LON",
    "DemoFeed",
    "demo_holiday",
    "read_seat_capacity",
    "service_window",
    "write_demo_city",
]

CENTER_LAT = 27.8100
CENTER_LON = 112.9100
TIMEZONE = "Asia/Shanghai"
CITY_NAME = "云溪市"

_M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class DemoFeed:
    """One written feed: its id (namespace of its GTFS ids), operator, folder and kind.

    ``kind`` is one of ``"bus"``, ``"metro"``, ``"coach"``, ``"ferry"``.
    """

    feed_id: str
    operator_id: str
    operator_name: str
    path: Path
    kind: str


def service_window(today: date) -> tuple[date, date]:
    """First and last service date of the demo for a given ``today`` (inclusive)."""
    return today - timedelta(days=30), today + timedelta(days=180)


def demo_holiday(today: date) -> date:
    """The demo's public holiday: the first Wednesday at least 14 days after ``today``.

    On it weekday services do not run and weekend services do (calendar_dates).
    """
    d = today + timedelta(days=14)
    return d + timedelta(days=(2 - d.weekday()) % 7)


def read_seat_capacity(feed_path: Path) -> dict[str, int]:
    """Seats per trip of a reserved-seat feed (``seat_capacity.txt``: trip_id, seat_capacity).

    Returns ``{trip_id (not namespaced): seats}``; empty when the file is absent.
    """
    path = Path(feed_path) / "seat_capacity.txt"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["trip_id"]: int(row["seat_capacity"]) for row in csv.DictReader(fh)}


# --------------------------------------------------------------------------- geometry


def _lat_lon(x_m: float, y_m: float) -> tuple[float, float]:
    """Local metres (east, north) from the centre -> (lat, lon), rounded to 6 decimals (~0.1 m)."""
    lat = CENTER_LAT + y_m / _M_PER_DEG_LAT
    lon = CENTER_LON + x_m / (_M_PER_DEG_LAT * math.cos(math.radians(CENTER_LAT)))
    return round(lat, 6), round(lon, 6)


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _hms(seconds: int) -> str:
    """Seconds after midnight of the service day -> ``HH:MM:SS`` (HH may exceed 23)."""
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _write(folder: Path, name: str, header: list[str], rows: list[list[object]]) -> None:
    with (folder / f"{name}.txt").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


# --------------------------------------------------------------------------- network data
# (stop id, Chinese name, English name, x metres east, y metres north)

_METRO_L1 = [
    ("XHGY", "西湖公园", "Xihu Park", -8000, 0),
    ("GHL", "桂花路", "Guihua Road", -5600, 0),
    ("WHG", "文化宫", "Culture Palace", -3300, 0),
    ("FQJ", "府前街", "Fuqian Street", -1300, 0),
    ("RMGC", "人民广场", "People's Square", 0, 0),
    ("WYL", "五一路", "Wuyi Road", 1500, 0),
    ("DT", "东塘", "Dongtang", 3600, 0),
    ("QCDZ", "汽车东站", "East Coach Station", 8500, 0),
]
_METRO_L2 = [
    ("BC", "北辰", "Beichen", 0, 7000),
    ("SFDX", "师范大学", "Normal University", 0, 4800),
    ("XYYY", "湘雅医院", "Xiangya Hospital", 0, 2600),
    ("ZSL", "中山路", "Zhongshan Road", 0, 1100),
    ("RMGC", "人民广场", "People's Square", 0, 0),
    ("NMK", "南门口", "Nanmenkou", 0, -1400),
    ("TYZX", "体育中心", "Sports Centre", 0, -3400),
    ("BJXC", "滨江新城", "Binjiang New Town", 0, -6000),
]
# Ring zones of the metro fare: distance of the station from 人民广场.
_METRO_ZONES = [("Z1", "一区 (市中心)", 2500.0), ("Z2", "二区", 6000.0), ("Z3", "三区", math.inf)]
_METRO_ZONE_FARE = {0: "2.00", 1: "3.00", 2: "4.00"}  # adult CNY by number of zone boundaries crossed

_BUS_STOPS = {
    # stops beside metro stations are 100-200 m away from the station point
    "RMGC": ("人民广场", "People's Square", 90, 110),
    "WYLK": ("五一路口", "Wuyi Road Junction", 1500, 130),
    "DT": ("东塘", "Dongtang", 3600, -120),
    "QCDZ": ("汽车东站", "East Coach Station", 8500, 150),
    "WHG": ("文化宫", "Culture Palace", -3300, 100),
    "XHGY": ("西湖公园", "Xihu Park", -8000, -150),
    "SFDX": ("师范大学", "Normal University", 120, 4800),
    "BC": ("北辰", "Beichen", -100, 7000),
    "NMK": ("南门口", "Nanmenkou", 130, -1400),
    "TYZX": ("体育中心", "Sports Centre", -120, -3400),
    "YXYZ": ("云溪一中", "Yunxi No.1 Middle School", -2000, 2000),
    "SZF": ("市政府", "City Hall", -1000, 3000),
    "HYXQ": ("花园小区", "Garden Estate", 2500, 2500),
    "GYY": ("工业园", "Industrial Park", 5000, -3000),
    "BJGY": ("滨江公园", "Binjiang Park", 3000, -5000),
    "LJ": ("老街", "Old Street", -4500, -2000),
    "WDGC": ("万达广场", "Wanda Plaza", 2000, 1000),
    "RMYY": ("人民医院", "People's Hospital", -1500, -1000),
}
# route id, short name, long name, stops, weekday headway min, weekend headway min, first dep, last dep (s)
_BUS_ROUTES = [
    ("1", "1路", "西湖公园—汽车东站", ["XHGY", "LJ", "WHG", "RMYY", "RMGC", "WYLK", "DT", "GYY", "QCDZ"],
     12, 15, 6 * 3600, 21 * 3600),
    ("2", "2路", "北辰—滨江公园", ["BC", "SFDX", "SZF", "YXYZ", "RMGC", "NMK", "TYZX", "BJGY"],
     10, 15, 6 * 3600, 21 * 3600 + 1800),
    ("3", "3路", "文化宫—滨江公园", ["WHG", "YXYZ", "SZF", "HYXQ", "WDGC", "WYLK", "DT", "BJGY"],
     15, 20, 6 * 3600 + 1800, 20 * 3600),
    # the night route runs past midnight: times up to 25:xx on the previous service day
    ("N1", "夜1路", "北辰—汽车东站(夜班)", ["BC", "SFDX", "RMGC", "WYLK", "DT", "QCDZ"],
     20, 20, 22 * 3600, 25 * 3600),
]

_COACH_STATIONS = {
    # id, name, English, stop_code (station code), x, y, area
    "YXZZ": ("云溪汽车客运总站", "Yunxi Central Coach Station", "430101", 8650, 260, "YX"),
    "QSX": ("青石县汽车站", "Qingshi County Coach Station", "430121", -30000, 25000, "QS"),
    "BSX": ("白沙县汽车站", "Baisha County Coach Station", "430122", 40000, -10000, "BS"),
    "MLX": ("梅岭县汽车站", "Meiling County Coach Station", "430123", 75000, -30000, "ML"),
}
_COACH_AREAS = {"YX": "云溪市区", "QS": "青石县", "BS": "白沙县", "ML": "梅岭县"}
# adult OD fares in CNY (both directions)
_COACH_FARES = {("YX", "QS"): "30.00", ("YX", "BS"): "25.00", ("YX", "ML"): "45.00", ("BS", "ML"): "22.00"}
# route id, short, long, station ids, departures from the first station (s); the reverse runs too
_COACH_ROUTES = [
    ("YX-QS", "云青线", "云溪—青石", ["YXZZ", "QSX"], [7 * 3600 + 1800, 10 * 3600, 14 * 3600, 17 * 3600 + 1800]),
    ("YX-ML", "云梅线", "云溪—白沙—梅岭", ["YXZZ", "BSX", "MLX"], [8 * 3600, 13 * 3600, 16 * 3600]),
]
COACH_SEATS = 45  # a 45-seat coach; the afternoon trips run a 33-seat vehicle
_COACH_SMALL_SEATS = 33

_FERRY_PIERS = [
    ("JBMT", "江北码头", "North Bank Pier", 2900, -5250),
    ("JNMT", "江南码头", "South Bank Pier", 3300, -7800),
]


# --------------------------------------------------------------------------- common tables


def _feed_common(folder: Path, *, agency_id: str, agency_name: str, url: str, phone: str, feed_version: str,
                 window: tuple[date, date], holiday: date, weekday_services: list[str],
                 weekend_services: list[str], daily_services: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder, "agency", ["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang",
                              "agency_phone"],
           [[agency_id, agency_name, url, TIMEZONE, "zh", phone]])
    start, end = (d.strftime("%Y%m%d") for d in window)
    rows: list[list[object]] = []
    for sid in weekday_services:
        rows.append([sid, 1, 1, 1, 1, 1, 0, 0, start, end])
    for sid in weekend_services:
        rows.append([sid, 0, 0, 0, 0, 0, 1, 1, start, end])
    for sid in daily_services:
        rows.append([sid, 1, 1, 1, 1, 1, 1, 1, start, end])
    _write(folder, "calendar", ["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                "sunday", "start_date", "end_date"], rows)
    hol = holiday.strftime("%Y%m%d")
    # 节假日: weekday timetable replaced by the weekend one on the holiday
    exc = [[sid, hol, 2] for sid in weekday_services] + [[sid, hol, 1] for sid in weekend_services]
    _write(folder, "calendar_dates", ["service_id", "date", "exception_type"], exc)
    _write(folder, "feed_info", ["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date",
                                 "feed_end_date", "feed_version", "feed_contact_email"],
           [[f"{CITY_NAME}交通运输局 (demo)", "https://example.invalid/yunxi", "zh", start, end, feed_version,
             "gtfs@example.invalid"]])


def _rider_categories(folder: Path) -> None:
    _write(folder, "rider_categories",
           ["rider_category_id", "rider_category_name", "is_default_fare_category", "eligibility_url"],
           [["adult", "成人", 1, ""],
            ["child", "儿童 (6-14岁)", 0, "https://example.invalid/yunxi/concessions#child"],
            ["senior", "老年人 (65岁及以上)", 0, "https://example.invalid/yunxi/concessions#senior"],
            ["disabled", "残疾人 (持残疾人证)", 0, "https://example.invalid/yunxi/concessions#disabled"]])


def _fare_media(folder: Path, media: list[str]) -> None:
    known = {
        "qr": ["qr", "云溪码上行 (乘车码)", 4],
        "card": ["card", "云溪通 (交通卡)", 2],
        "cash": ["cash", "现金/单程票", 0],
    }
    _write(folder, "fare_media", ["fare_media_id", "fare_media_name", "fare_media_type"], [known[m] for m in media])


def _products(product_id: str, name: str, adult: str, shares: dict[str, str], media: list[str]) -> list[list[object]]:
    """fare_products rows: one per (rider category, medium); ``shares`` = category -> fraction of adult."""
    rows: list[list[object]] = []
    for cat in ("adult", "child", "senior", "disabled"):
        amount = (Decimal(adult) * Decimal(shares.get(cat, "1"))).quantize(Decimal("0.01"), ROUND_HALF_UP)
        for m in media:
            rows.append([product_id, name, cat, m, f"{amount}", "CNY"])
    return rows


_PRODUCT_HEADER = ["fare_product_id", "fare_product_name", "rider_category_id", "fare_media_id", "amount", "currency"]


def _translations(folder: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """English translations keyed by field_value: rows of (table_name, field_name, Chinese, English)."""
    _write(folder, "translations", ["table_name", "field_name", "language", "translation", "field_value"],
           [[t, f, "en", en, zh] for t, f, zh, en in rows])


class _Trips:
    """Accumulates trips, stop_times and shapes of one feed."""

    def __init__(self) -> None:
        self.trips: list[list[object]] = []
        self.stop_times: list[list[object]] = []
        self.shapes: list[list[object]] = []
        self._shape_ids: set[str] = set()

    def shape(self, shape_id: str, points: list[tuple[float, float]]) -> list[float]:
        """Writes a shape once; returns the cumulative distance (m) at each point."""
        cum = [0.0]
        for a, b in zip(points, points[1:]):
            cum.append(cum[-1] + _dist(a, b))
        if shape_id not in self._shape_ids:
            self._shape_ids.add(shape_id)
            for seq, ((x, y), d) in enumerate(zip(points, cum)):
                lat, lon = _lat_lon(x, y)
                self.shapes.append([shape_id, lat, lon, seq, round(d, 1)])
        return cum

    def add(self, *, route_id: str, service_id: str, trip_id: str, headsign: str, direction: int, shape_id: str,
            stop_ids: list[str], times: list[int], dists: list[float], wheelchair: int, dwell: int) -> None:
        self.trips.append([route_id, service_id, trip_id, headsign, direction, shape_id, wheelchair, 1])
        for seq, (sid, t, d) in enumerate(zip(stop_ids, times, dists), start=1):
            arr = t
            dep = t if seq in (1, len(stop_ids)) else t + dwell
            self.stop_times.append([trip_id, _hms(arr), _hms(dep), sid, seq, 0, 0, round(d, 1), 1])

    def write(self, folder: Path) -> None:
        _write(folder, "trips", ["route_id", "service_id", "trip_id", "trip_headsign", "direction_id", "shape_id",
                                 "wheelchair_accessible", "bikes_allowed"], self.trips)
        _write(folder, "stop_times", ["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence",
                                      "pickup_type", "drop_off_type", "shape_dist_traveled", "timepoint"],
               self.stop_times)
        _write(folder, "shapes", ["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence",
                                  "shape_dist_traveled"], self.shapes)


def _run_times(points: list[tuple[float, float]], speed_m_s: float, dwell: int) -> tuple[list[int], list[float]]:
    """Offsets (s, rounded to 30 s) of arrival at each stop from the first departure, and distances (m)."""
    cum = [0.0]
    for a, b in zip(points, points[1:]):
        cum.append(cum[-1] + _dist(a, b))
    offsets = [0]
    for i in range(1, len(points)):
        raw = cum[i] / speed_m_s + dwell * (i - 1)
        offsets.append(max(offsets[-1] + 60, int(round(raw / 30.0)) * 30))
    return offsets, cum


# --------------------------------------------------------------------------- feeds


def _write_bus(folder: Path, window: tuple[date, date], holiday: date) -> None:
    _feed_common(folder, agency_id="YXBUS", agency_name="云溪公交集团", url="https://example.invalid/yunxi/bus",
                 phone="0731-12345678", feed_version="yx-bus-demo-1", window=window, holiday=holiday,
                 weekday_services=["WKDY"], weekend_services=["WKND"], daily_services=[])
    stops = []
    for sid, (name, _en, x, y) in _BUS_STOPS.items():
        lat, lon = _lat_lon(x, y)
        # the night route's outer stops have no kerb ramp yet: wheelchair_boarding 2 there
        wc = 2 if sid in ("GYY", "LJ") else 1
        stops.append([sid, sid, name, lat, lon, 0, "", wc])
    _write(folder, "stops", ["stop_id", "stop_code", "stop_name", "stop_lat", "stop_lon", "location_type",
                             "parent_station", "wheelchair_boarding"], stops)
    _write(folder, "networks", ["network_id", "network_name"], [["bus", "云溪公交"]])
    _write(folder, "routes", ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type",
                              "route_color", "route_text_color"],
           [[rid, "YXBUS", short, long, 3, "1F7A3A" if rid != "N1" else "333366", "FFFFFF"]
            for rid, short, long, *_ in _BUS_ROUTES])
    _write(folder, "route_networks", ["network_id", "route_id"], [["bus", r[0]] for r in _BUS_ROUTES])
    trips = _Trips()
    for rid, short, _long, seq, hw_wd, hw_we, first, last in _BUS_ROUTES:
        for direction, ids in ((0, seq), (1, list(reversed(seq)))):
            pts = [(_BUS_STOPS[s][2], _BUS_STOPS[s][3]) for s in ids]
            shape_id = f"{rid}_{direction}"
            cum = trips.shape(shape_id, pts)
            offsets, _ = _run_times(pts, speed_m_s=6.0, dwell=20)
            for sv, headway in (("WKDY", hw_wd), ("WKND", hw_we)):
                for n, t0 in enumerate(range(first, last + 1, headway * 60), start=1):
                    # every third trip of route 3 runs an older high-floor bus
                    wc = 2 if rid == "3" and n % 3 == 0 else 1
                    trips.add(route_id=rid, service_id=sv, trip_id=f"{rid}_{direction}_{sv}_{n:03d}",
                              headsign=_BUS_STOPS[ids[-1]][0], direction=direction, shape_id=shape_id,
                              stop_ids=ids, times=[t0 + o for o in offsets], dists=cum, wheelchair=wc, dwell=0)
    trips.write(folder)
    _translations(folder, [("stops", "stop_name", n, en) for n, en, _x, _y in _BUS_STOPS.values()]
                  + [("agency", "agency_name", "云溪公交集团", "Yunxi Bus Group")])
    # Fares v2: flat 2 CNY; card/QR riders change bus free within 60 min (one transfer)
    _rider_categories(folder)
    _fare_media(folder, ["qr", "card", "cash"])
    shares = {"child": "0.5", "senior": "0", "disabled": "0"}
    products = _products("bus_single", "公交单程票", "2.00", shares, ["qr", "card", "cash"])
    products += _products("bus_transfer", "公交换乘免费", "0.00", {}, ["qr", "card"])
    _write(folder, "fare_products", _PRODUCT_HEADER, products)
    _write(folder, "fare_leg_rules", ["leg_group_id", "network_id", "from_area_id", "to_area_id", "fare_product_id"],
           [["bus_flat", "bus", "", "", "bus_single"]])
    _write(folder, "fare_transfer_rules",
           ["from_leg_group_id", "to_leg_group_id", "transfer_count", "duration_limit", "duration_limit_type",
            "fare_transfer_type", "fare_product_id"],
           [["bus_flat", "bus_flat", 1, 3600, 1, 0, "bus_transfer"]])


def _metro_zone(x: float, y: float) -> int:
    r = math.hypot(x, y)
    return next(i for i, (_z, _n, limit) in enumerate(_METRO_ZONES) if r <= limit)


def _write_metro(folder: Path, window: tuple[date, date], holiday: date) -> None:
    _feed_common(folder, agency_id="YXMETRO", agency_name="云溪地铁", url="https://example.invalid/yunxi/metro",
                 phone="0731-87654321", feed_version="yx-metro-demo-1", window=window, holiday=holiday,
                 weekday_services=["WKDY"], weekend_services=["WKND"], daily_services=[])
    lines = {"L1": _METRO_L1, "L2": _METRO_L2}
    stations: dict[str, tuple[str, str, int, int]] = {}
    for seq in lines.values():
        for sid, name, en, x, y in seq:
            stations[sid] = (name, en, x, y)
    stops = []
    stop_areas = []
    for sid, (name, _en, x, y) in stations.items():
        lat, lon = _lat_lon(x, y)
        stops.append([sid, "", f"{name}站", lat, lon, 1, "", 1, ""])
        # stop_areas names the station; its platforms belong to the same area (spec)
        stop_areas.append([_METRO_ZONES[_metro_zone(x, y)][0], sid])
        for line, seq in lines.items():
            if any(s[0] == sid for s in seq):
                # platforms 30 m apart along the line so interchanges have a real walk
                dx, dy = (0, -15) if line == "L1" else (15, 0)
                plat_lat, plat_lon = _lat_lon(x + dx, y + dy)
                stops.append([f"{sid}_{line}", "", f"{name}站 ({line[1]}号线)", plat_lat, plat_lon, 0, sid, 1,
                              line[1]])
    _write(folder, "stops", ["stop_id", "stop_code", "stop_name", "stop_lat", "stop_lon", "location_type",
                             "parent_station", "wheelchair_boarding", "platform_code"], stops)
    _write(folder, "networks", ["network_id", "network_name"], [["metro", "云溪地铁"]])
    _write(folder, "routes", ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type",
                              "route_color", "route_text_color", "network_id"],
           [["L1", "YXMETRO", "1号线", "西湖公园—汽车东站", 1, "D7263D", "FFFFFF", "metro"],
            ["L2", "YXMETRO", "2号线", "北辰—滨江新城", 1, "1B65A6", "FFFFFF", "metro"]])
    # interchange: 3 min between the two lines' platforms (both directions)
    _write(folder, "transfers", ["from_stop_id", "to_stop_id", "transfer_type", "min_transfer_time"],
           [["RMGC_L1", "RMGC_L2", 2, 180], ["RMGC_L2", "RMGC_L1", 2, 180]])
    trips = _Trips()
    for line, seq in lines.items():
        for direction, ordered in ((0, seq), (1, list(reversed(seq)))):
            ids = [f"{s[0]}_{line}" for s in ordered]
            pts = [(s[3], s[4]) for s in ordered]
            shape_id = f"{line}_{direction}"
            cum = trips.shape(shape_id, pts)
            offsets, _ = _run_times(pts, speed_m_s=12.0, dwell=30)
            for sv, headway in (("WKDY", 8), ("WKND", 10)):
                deps = list(range(6 * 3600, 23 * 3600, headway * 60))
                # last train leaves at 23:40 and arrives after midnight (times > 24:00:00)
                deps.append(23 * 3600 + 40 * 60)
                for n, t0 in enumerate(deps, start=1):
                    trips.add(route_id=line, service_id=sv, trip_id=f"{line}_{direction}_{sv}_{n:03d}",
                              headsign=ordered[-1][1], direction=direction, shape_id=shape_id, stop_ids=ids,
                              times=[t0 + o for o in offsets], dists=cum, wheelchair=1, dwell=30)
    trips.write(folder)
    _translations(folder, [("stops", "stop_name", f"{n}站", en) for n, en, _x, _y in stations.values()]
                  + [("agency", "agency_name", "云溪地铁", "Yunxi Metro")])
    _rider_categories(folder)
    _fare_media(folder, ["qr", "card", "cash"])
    _write(folder, "areas", ["area_id", "area_name"], [[z, n] for z, n, _ in _METRO_ZONES])
    _write(folder, "stop_areas", ["area_id", "stop_id"], stop_areas)
    shares = {"child": "0.5", "senior": "0", "disabled": "0"}
    products = []
    for n_cross, adult in _METRO_ZONE_FARE.items():
        products += _products(f"metro_{adult[0]}yuan", f"地铁单程 {adult[0]} 元", adult, shares, ["qr", "card", "cash"])
    _write(folder, "fare_products", _PRODUCT_HEADER, products)
    leg_rules = []
    for i, (zi, _n1, _l1) in enumerate(_METRO_ZONES):
        for j, (zj, _n2, _l2) in enumerate(_METRO_ZONES):
            leg_rules.append(["metro", "metro", zi, zj, f"metro_{_METRO_ZONE_FARE[abs(i - j)][0]}yuan"])
    _write(folder, "fare_leg_rules", ["leg_group_id", "network_id", "from_area_id", "to_area_id", "fare_product_id"],
           leg_rules)
    # changing line inside the paid area is one journey: the two legs form one effective fare leg
    _write(folder, "fare_leg_join_rules", ["from_network_id", "to_network_id", "from_stop_id", "to_stop_id"],
           [["metro", "metro", "", ""]])


def _write_coach(folder: Path, window: tuple[date, date], holiday: date) -> None:
    _feed_common(folder, agency_id="YXCOACH", agency_name="云溪客运集团", url="https://example.invalid/yunxi/coach",
                 phone="0731-96520", feed_version="yx-coach-demo-1", window=window, holiday=holiday,
                 weekday_services=[], weekend_services=[], daily_services=["DAILY"])
    stops = []
    for sid, (name, _en, code, x, y, _area) in _COACH_STATIONS.items():
        lat, lon = _lat_lon(x, y)
        stops.append([sid, code, name, lat, lon, 0, "", 1])
    _write(folder, "stops", ["stop_id", "stop_code", "stop_name", "stop_lat", "stop_lon", "location_type",
                             "parent_station", "wheelchair_boarding"], stops)
    _write(folder, "routes", ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type",
                              "route_color", "route_text_color", "network_id"],
           [[rid, "YXCOACH", short, long, 204, "8A5A00", "FFFFFF", "coach"] for rid, short, long, *_ in _COACH_ROUTES])
    trips = _Trips()
    capacity = []
    for rid, _short, _long, seq, departures in _COACH_ROUTES:
        for direction, ids in ((0, seq), (1, list(reversed(seq)))):
            # roads are not straight: a waypoint bends each segment (shape) and adds ~25 % distance
            pts: list[tuple[float, float]] = []
            stop_idx = []
            for a, b in zip(ids, ids[1:]):
                pa = _COACH_STATIONS[a][3:5]
                pb = _COACH_STATIONS[b][3:5]
                if not pts:
                    stop_idx.append(0)
                    pts.append(pa)
                mid = ((pa[0] + pb[0]) / 2 + (pb[1] - pa[1]) * 0.35, (pa[1] + pb[1]) / 2 - (pb[0] - pa[0]) * 0.35)
                pts.extend([mid, pb])
                stop_idx.append(len(pts) - 1)
            shape_id = f"{rid}_{direction}"
            cum_all = trips.shape(shape_id, pts)
            cum = [cum_all[i] for i in stop_idx]
            # 60 km/h on the road; a 10 min stop at intermediate stations (arrival + dwell = departure)
            offsets = [0]
            for i in range(1, len(cum)):
                drive_s = int(round((cum[i] - cum[i - 1]) / (60 / 3.6) / 300.0)) * 300  # to 5 min
                offsets.append(offsets[-1] + drive_s + (600 if i > 1 else 0))
            for n, t0 in enumerate(departures, start=1):
                trip_id = f"{rid}_{direction}_{n:02d}"
                trips.add(route_id=rid, service_id="DAILY", trip_id=trip_id, headsign=_COACH_STATIONS[ids[-1]][0],
                          direction=direction, shape_id=shape_id, stop_ids=ids, times=[t0 + o for o in offsets],
                          dists=cum, wheelchair=1 if n % 2 else 2, dwell=600)
                capacity.append([trip_id, COACH_SEATS if t0 < 12 * 3600 else _COACH_SMALL_SEATS])
    trips.write(folder)
    _write(folder, "seat_capacity", ["trip_id", "seat_capacity"], capacity)
    _translations(folder, [("stops", "stop_name", n, en) for n, en, *_ in _COACH_STATIONS.values()]
                  + [("agency", "agency_name", "云溪客运集团", "Yunxi Coach Group")])
    _rider_categories(folder)
    _fare_media(folder, ["qr", "cash"])
    _write(folder, "areas", ["area_id", "area_name"], [[a, n] for a, n in _COACH_AREAS.items()])
    _write(folder, "stop_areas", ["area_id", "stop_id"], [[v[5], k] for k, v in _COACH_STATIONS.items()])
    # 客运班线: children and disabled passengers half fare, seniors full fare
    shares = {"child": "0.5", "disabled": "0.5"}
    products = []
    rules = []
    for (a, b), adult in _COACH_FARES.items():
        pid = f"coach_{a}_{b}".lower()
        products += _products(pid, f"{_COACH_AREAS[a]}—{_COACH_AREAS[b]} 客运票", adult, shares, ["qr", "cash"])
        rules += [["coach", "coach", a, b, pid], ["coach", "coach", b, a, pid]]
    _write(folder, "fare_products", _PRODUCT_HEADER, products)
    _write(folder, "fare_leg_rules", ["leg_group_id", "network_id", "from_area_id", "to_area_id", "fare_product_id"],
           rules)


def _write_ferry(folder: Path, window: tuple[date, date], holiday: date) -> None:
    _feed_common(folder, agency_id="YXFERRY", agency_name="云溪轮渡", url="https://example.invalid/yunxi/ferry",
                 phone="0731-55555555", feed_version="yx-ferry-demo-1", window=window, holiday=holiday,
                 weekday_services=[], weekend_services=[], daily_services=["DAILY"])
    stops = []
    for sid, name, _en, x, y in _FERRY_PIERS:
        lat, lon = _lat_lon(x, y)
        stops.append([sid, name, lat, lon, 0, 1])
    _write(folder, "stops", ["stop_id", "stop_name", "stop_lat", "stop_lon", "location_type", "wheelchair_boarding"],
           stops)
    _write(folder, "routes", ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type",
                              "route_color", "route_text_color"],
           [["F1", "YXFERRY", "轮渡1线", "江北码头—江南码头", 4, "0077AA", "FFFFFF"]])
    trips = _Trips()
    for direction, piers in ((0, _FERRY_PIERS), (1, list(reversed(_FERRY_PIERS)))):
        pts = [(p[3], p[4]) for p in piers]
        shape_id = f"F1_{direction}"
        cum = trips.shape(shape_id, pts)
        for n, t0 in enumerate(range(6 * 3600 + 1800, 21 * 3600 + 1, 1800), start=1):
            trips.add(route_id="F1", service_id="DAILY", trip_id=f"F1_{direction}_{n:02d}", headsign=piers[-1][1],
                      direction=direction, shape_id=shape_id, stop_ids=[p[0] for p in piers],
                      times=[t0, t0 + 900], dists=cum, wheelchair=1, dwell=0)
    trips.write(folder)
    _translations(folder, [("stops", "stop_name", p[1], p[2]) for p in _FERRY_PIERS])


# --------------------------------------------------------------------------- platform config

FARE_AGREEMENTS_FILE = "platform/fare_agreements.json"
OPERATOR_FARE_TABLES_FILE = "platform/operator_fare_tables.json"


def _write_platform(out_dir: Path) -> None:
    folder = out_dir / "platform"
    folder.mkdir(parents=True, exist_ok=True)
    agreements = {
        "version": 1,
        "description": "云溪市联程优惠: bus<->metro within 60 minutes of boarding the first leg, 1 CNY off the "
                       "second leg (never below zero), QR code or transit card only.",
        "transfer_rules": [
            {"agreement_id": "yx-bus-metro-2024", "from_leg_group_ids": ["yx-bus:bus_flat"],
             "to_leg_group_ids": ["yx-metro:metro"], "duration_limit": 3600, "duration_limit_type": 1,
             "discount": {"amount": 100, "currency": "CNY"}, "fare_media_ids": ["qr", "card"]},
            {"agreement_id": "yx-metro-bus-2024", "from_leg_group_ids": ["yx-metro:metro"],
             "to_leg_group_ids": ["yx-bus:bus_flat"], "duration_limit": 3600, "duration_limit_type": 1,
             "discount": {"amount": 100, "currency": "CNY"}, "fare_media_ids": ["qr", "card"]},
        ],
    }
    tables = {
        "version": 1,
        "tables": [
            {"feed_id": "yx-ferry", "operator_id": "yunxi-ferry", "kind": "distance_bands", "currency": "CNY",
             "route_ids": None,
             # integer fen by leg distance; the last band has no upper bound
             "bands": [{"up_to_m": 2000, "amount": 200}, {"up_to_m": 5000, "amount": 300},
                       {"up_to_m": None, "amount": 500}],
             "rider_categories": {"adult": {"percent": 100}, "child": {"percent": 50}, "senior": {"percent": 0},
                                  "disabled": {"percent": 0}}},
        ],
    }
    (folder / "fare_agreements.json").write_text(json.dumps(agreements, ensure_ascii=False, indent=2),
                                                 encoding="utf-8")
    (folder / "operator_fare_tables.json").write_text(json.dumps(tables, ensure_ascii=False, indent=2),
                                                      encoding="utf-8")


def write_demo_city(out_dir: Path, today: date | None = None) -> list[DemoFeed]:
    """Writes the demo city's feeds and platform configuration under ``out_dir``.

    Parameters
    ----------
    out_dir : folder to write into (created; existing demo files are overwritten).
    today : the date the service window is centred on; default ``date.today()``.

    Returns
    -------
    One `DemoFeed` per operator, in the order bus, metro, coach, ferry. The
    interoperator fare agreements are at ``out_dir / FARE_AGREEMENTS_FILE`` and
    the operator fare tables at ``out_dir / OPERATOR_FARE_TABLES_FILE``.
    """
    out_dir = Path(out_dir)
    today = today or date.today()
    window = service_window(today)
    holiday = demo_holiday(today)
    feeds = [
        DemoFeed("yx-bus", "yunxi-bus", "云溪公交集团", out_dir / "yx-bus", "bus"),
        DemoFeed("yx-metro", "yunxi-metro", "云溪地铁", out_dir / "yx-metro", "metro"),
        DemoFeed("yx-coach", "yunxi-coach", "云溪客运集团", out_dir / "yx-coach", "coach"),
        DemoFeed("yx-ferry", "yunxi-ferry", "云溪轮渡", out_dir / "yx-ferry", "ferry"),
    ]
    writers = {"bus": _write_bus, "metro": _write_metro, "coach": _write_coach, "ferry": _write_ferry}
    for feed in feeds:
        writers[feed.kind](feed.path, window, holiday)
    _write_platform(out_dir)
    return feeds
