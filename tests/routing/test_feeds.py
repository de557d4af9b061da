"""Reading and validating GTFS feeds: real feeds pass, broken ones are refused readably."""

from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from gtfs_text import stop_times, write_gtfs

from routing.compile import compile_timetable
from routing.errors import FeedError
from routing.feeds import FeedSource, parse_time_strings, route_type_to_mode, validate_feed
from routing.timetable import MODES

SMALL_FEEDS = [
    ("caltrain-rt/caltrain.zip", 176),
    ("hk-xrl/hk_xrl.zip", 82),
    ("zakroczym-fares-v2/zakroczym.zip", 48),
    ("transcollines-fares-v2/transcollines-qc-ca-fares.zip", 58),
    ("nyc-mta/lirr.zip", 2081),
]
BIG_FEEDS = [
    ("wmata-rail/wmata_rail.zip", 16514),
    ("nyc-mta/subway.zip", 20621),
    ("nyc-mta/metro_north.zip", 49131),
    ("nyc-mta/bus_brooklyn.zip", 58357),
    ("nyc-mta/bus_bronx.zip", 41156),
    ("nyc-mta/bus_manhattan.zip", 37872),
    ("nyc-mta/bus_queens.zip", 31199),
    ("nyc-mta/bus_staten_island.zip", 16524),
    ("nyc-mta/bus_mta_bus_company.zip", 45424),
]


def _check_ok(shared_data: Path, rel: str, trips: int) -> None:
    report = validate_feed(FeedSource("f", shared_data / rel))
    assert report.ok, report.to_text()
    assert report.counts["trips"] == trips
    assert report.start_date is not None and report.end_date >= report.start_date
    assert "OK" in report.to_text()


@pytest.mark.parametrize(("rel", "trips"), SMALL_FEEDS)
def test_real_small_feed_validates(shared_data: Path, rel: str, trips: int) -> None:
    _check_ok(shared_data, rel, trips)


@pytest.mark.slow
@pytest.mark.parametrize(("rel", "trips"), BIG_FEEDS)
def test_real_big_feed_validates(shared_data: Path, rel: str, trips: int) -> None:
    _check_ok(shared_data, rel, trips)


def test_real_feed_counts_and_dates(shared_data: Path) -> None:
    r = validate_feed(FeedSource("ct", shared_data / "caltrain-rt/caltrain.zip"))
    assert r.counts["stop_times"] == 3498 and r.counts["stops"] == 109
    assert r.start_date == date(2023, 9, 23) and r.end_date == date(2024, 6, 1)
    assert r.timezone == "America/Los_Angeles"


def test_feed_without_timetable_is_refused(shared_data: Path) -> None:
    r = validate_feed(FeedSource("mbta", shared_data / "mbta-fares-v2/mbta_fares_v2_partial.zip"))
    assert not r.ok
    assert any("stop_times.txt" in p for p in r.problems)
    assert any("trips.txt" in p for p in r.problems)
    assert "REFUSED" in r.to_text()


# ---- deliberately broken copies of a real feed -------------------------------------------


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy a zip feed, passing each table's text through ``edit(name, text) -> text | None``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            text = zin.read(info).decode("utf-8-sig")
            out = edit(Path(info.filename).name, text)
            if out is not None:
                zout.writestr(info.filename, out)
    return dst


def _edit_csv(text: str, fn) -> str:
    lines = text.splitlines()
    header = lines[0].split(",")
    rows = [ln.split(",") for ln in lines[1:] if ln]
    header, rows = fn(header, rows)
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


@pytest.fixture()
def caltrain(shared_data: Path) -> Path:
    return shared_data / "caltrain-rt/caltrain.zip"


def test_missing_stop_times_is_refused(caltrain: Path, tmp_path: Path) -> None:
    bad = _rewrite(caltrain, tmp_path / "bad.zip", lambda n, t: None if n == "stop_times.txt" else t)
    r = validate_feed(FeedSource("ct", bad))
    assert not r.ok
    assert r.problems == ["missing required file stop_times.txt (absent or empty)"]


def test_missing_column_is_refused(caltrain: Path, tmp_path: Path) -> None:
    def drop_service(name: str, text: str) -> str:
        if name != "trips.txt":
            return text

        def fn(h, rows):
            i = h.index("service_id")
            return h[:i] + h[i + 1:], [r[:i] + r[i + 1:] for r in rows]

        return _edit_csv(text, fn)

    r = validate_feed(FeedSource("ct", _rewrite(caltrain, tmp_path / "bad.zip", drop_service)))
    assert not r.ok
    assert any("trips.txt lacks required column(s) service_id" in p for p in r.problems)


def test_dangling_trip_route_is_refused(caltrain: Path, tmp_path: Path) -> None:
    def dangle(name: str, text: str) -> str:
        if name != "trips.txt":
            return text

        def fn(h, rows):
            i = h.index("route_id")
            rows[0][i] = "NO_SUCH_ROUTE"
            return h, rows

        return _edit_csv(text, fn)

    r = validate_feed(FeedSource("ct", _rewrite(caltrain, tmp_path / "bad.zip", dangle)))
    assert not r.ok
    assert any("unknown route_id" in p and "NO_SUCH_ROUTE" in p for p in r.problems), r.problems


def test_times_out_of_order_are_refused(caltrain: Path, tmp_path: Path) -> None:
    victim = {}

    def swap(name: str, text: str) -> str:
        if name != "stop_times.txt":
            return text

        def fn(h, rows):
            ia, idp = h.index("arrival_time"), h.index("departure_time")
            # the 3rd stop of the first trip now happens at 00:00:01
            victim["trip"] = rows[2][h.index("trip_id")]
            rows[2][ia] = rows[2][idp] = "00:00:01"
            return h, rows

        return _edit_csv(text, fn)

    r = validate_feed(FeedSource("ct", _rewrite(caltrain, tmp_path / "bad.zip", swap)))
    assert not r.ok
    assert any("out of order" in p and victim["trip"] in p for p in r.problems), r.problems
    with pytest.raises(FeedError) as ei:
        compile_timetable([FeedSource("ct", tmp_path / "bad.zip")])
    assert ei.value.report.problems == r.problems
    assert ei.value.code == "invalid_feed" and ei.value.status == 422
    assert "out of order" in ei.value.message


# ---- inline feeds ------------------------------------------------------------------------

STOPS = """
    stop_id,stop_name,stop_lat,stop_lon
    A,Alpha,52.5000,13.4000
    B,Beta,52.5000,13.4100
    C,Gamma,52.5000,13.4200
"""
ROUTES = """
    route_id,route_short_name,route_long_name,route_type
    R1,1,,3
"""
TRIPS = """
    route_id,service_id,trip_id
    R1,WK,T1
"""


def test_whitespace_padding_and_short_hours_accepted(tmp_path: Path) -> None:
    feed = write_gtfs(tmp_path / "f", {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon
             A ,Alpha, 52.5 ,13.4
            B,Beta,52.5,13.41
        """,
        "routes.txt": ROUTES,
        "trips.txt": """
            route_id,service_id,trip_id
            R1 , WK ,T1
        """,
        "stop_times.txt": """
            trip_id,arrival_time,departure_time,stop_id,stop_sequence
            T1 ,8:00:00, 8:00:00 ,A, 1
             T1,25:10:00,25:10:00, B ,2
        """,
    })
    r = validate_feed(FeedSource("f", feed))
    assert r.ok, r.to_text()
    tt = compile_timetable([FeedSource("f", feed)])
    assert tt.stop_ids.tolist() == ["f:A", "f:B"]
    assert tt.pattern_arr.tolist() == [8 * 3600, 25 * 3600 + 600]


def test_unparsable_time_is_refused(tmp_path: Path) -> None:
    feed = write_gtfs(tmp_path / "f", {
        "stops.txt": STOPS, "routes.txt": ROUTES, "trips.txt": TRIPS,
        "stop_times.txt": stop_times({"T1": "A 08:00 B 8h05 C 08:10"}),
    })
    r = validate_feed(FeedSource("f", feed))
    assert not r.ok
    assert any("unparsable time" in p and "8h05" in p for p in r.problems)


def test_dangling_references_are_listed(tmp_path: Path) -> None:
    feed = write_gtfs(tmp_path / "f", {
        "stops.txt": """
            stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
            A,Alpha,52.5,13.4,0,NOWHERE
            B,Beta,52.5,13.41,0,
        """,
        "routes.txt": ROUTES,
        "trips.txt": """
            route_id,service_id,trip_id
            R1,NOSERVICE,T1
        """,
        "stop_times.txt": stop_times({"T1": "A 08:00 B 08:05 Z 08:10", "GHOST": "A 09:00 B 09:05"}),
    })
    r = validate_feed(FeedSource("f", feed))
    text = " | ".join(r.problems)
    assert "parent_station" in text and "NOWHERE" in text
    assert "NOSERVICE" in text
    assert "unknown or blank trip_id" in text and "GHOST" in text
    assert "unknown or blank stop_id" in text and "'Z'" in text


def test_non_numeric_field_is_located(tmp_path: Path) -> None:
    feed = write_gtfs(tmp_path / "f", {
        "stops.txt": STOPS, "routes.txt": ROUTES, "trips.txt": TRIPS,
        "stop_times.txt": """
            trip_id,arrival_time,departure_time,stop_id,stop_sequence
            T1,08:00:00,08:00:00,A,first
            T1,08:05:00,08:05:00,B,2
        """,
    })
    r = validate_feed(FeedSource("f", feed))
    assert not r.ok
    assert "stop_times.txt column stop_sequence" in r.problems[0] and "'first'" in r.problems[0]


def test_missing_path_and_bad_feed_id() -> None:
    assert not validate_feed(FeedSource("x", Path("/nonexistent/feed.zip"))).ok
    assert not validate_feed(FeedSource("a:b", Path("/nonexistent"))).ok


def test_blank_first_time_is_refused(tmp_path: Path) -> None:
    feed = write_gtfs(tmp_path / "f", {
        "stops.txt": STOPS, "routes.txt": ROUTES, "trips.txt": TRIPS,
        "stop_times.txt": stop_times({"T1": "A - B 08:05 C 08:10"}),
    })
    r = validate_feed(FeedSource("f", feed))
    assert any("first or last stop" in p for p in r.problems)


def test_route_types_map_to_modes() -> None:
    types = [0, 1, 2, 3, 4, 5, 7, 11, 12, 100, 109, 200, 202, 400, 401, 700, 711, 715, 900, 1000, 1200, 1700, 800]
    modes = [MODES[m] for m in route_type_to_mode(np.array(types))]
    assert modes == ["TRAM", "SUBWAY", "RAIL", "BUS", "FERRY", "TRAM", "TRAM", "BUS", "RAIL", "RAIL", "RAIL",
                     "COACH", "COACH", "SUBWAY", "SUBWAY", "BUS", "BUS", "BUS", "TRAM", "FERRY", "FERRY", "BUS", "BUS"]


def test_time_strings_parse() -> None:
    got = parse_time_strings(np.array(["8:00:00", "08:00:00", " 25:59:59 ", "", "24:60:00", "x", "100:00:00"],
                                      dtype=object))
    assert got.tolist() == [28800, 28800, 93599, -1, -2, -2, 360000]


def test_report_is_readable(tmp_path: Path) -> None:
    feed = write_gtfs(tmp_path / "f", {
        "stops.txt": STOPS, "routes.txt": ROUTES, "trips.txt": TRIPS,
        "stop_times.txt": stop_times({"T1": "A 08:00 B - C 08:10"}),
    })
    r = validate_feed(FeedSource("f", feed))
    assert r.ok
    text = r.to_text()
    assert text.splitlines()[0].endswith("OK")
    assert "stop_times 3" in text and "interpolated" in text
    assert r.to_dict()["start_date"] == "2025-01-01"


FUZZ_BASE = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nAG,X,http://x,Europe/Berlin\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
                 "S,Stn,1,1,1,\nA,A,1,1,0,S\nB,B,1,1.01,0,\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_type\nR,AG,1,3\n",
    "trips.txt": "route_id,service_id,trip_id,shape_id\nR,WK,T,SH\nR,WK,U,\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n"
                      "T,08:00:00,08:00:00,A,1,0\nT,,,B,2,1\nT,08:10:00,08:10:00,A,3,2\n"
                      "U,09:00:00,09:00:00,B,1,\nU,09:05:00,09:05:00,A,2,\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                    "WK,1,1,1,1,1,1,1,20250101,20250131\n",
    "calendar_dates.txt": "service_id,date,exception_type\nWK,20250105,2\n",
    "frequencies.txt": "trip_id,start_time,end_time,headway_secs,exact_times\nT,06:00:00,07:00:00,600,0\n",
    "transfers.txt": "from_stop_id,to_stop_id,transfer_type,min_transfer_time,from_trip_id,to_trip_id\n"
                     "S,B,2,60,,\nA,B,1,,T,U\n",
    "shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\nSH,1,1,1\nSH,1,1.01,2\n",
}
FUZZ_JUNK = ["", " ", "x", "-1", "99999999", "1e9", "25:61:00", "NaN", '"', "A", "S", "R", "T", "U", "WK", "0", "3"]


def test_corrupted_feeds_are_refused_or_compiled_never_crash(tmp_path: Path) -> None:
    """Random cell edits, dropped / duplicated rows and missing files: validate_feed returns a
    report and compile_timetable either compiles or raises FeedError — nothing else."""
    import random

    rng = random.Random(20261121)
    outcomes = {"ok": 0, "refused": 0}
    for i in range(40):
        files = dict(FUZZ_BASE)
        for _ in range(rng.choice([1, 1, 2, 3])):
            name = rng.choice(list(files))
            lines = files[name].strip("\n").split("\n")
            r = rng.randrange(len(lines))
            op = rng.random()
            if op < 0.7:
                cells = lines[r].split(",")
                cells[rng.randrange(len(cells))] = rng.choice(FUZZ_JUNK)
                lines[r] = ",".join(cells)
            elif op < 0.8:
                del lines[r]
            elif op < 0.9:
                lines.append(lines[r])
            else:
                files.pop(name)
                continue
            files[name] = "\n".join(lines) + "\n"
        src = FeedSource("f", write_gtfs(tmp_path / f"f{i}", files, defaults=False))
        report = validate_feed(src)
        assert isinstance(report.to_text(), str)
        if report.ok:
            compile_timetable([src])
            outcomes["ok"] += 1
        else:
            with pytest.raises(FeedError):
                compile_timetable([src])
            outcomes["refused"] += 1
    assert outcomes["ok"] >= 5 and outcomes["refused"] >= 5
