"""Write tiny GTFS feeds from inline CSV text, for tests.

Import it as ``from gtfs_text import write_gtfs, stop_times`` (``tests/routing`` has no
``__init__.py``, so pytest puts it on ``sys.path``).

Usage::

    feed = write_gtfs(tmp_path / "f", {
        "stops.txt": '''
            stop_id,stop_name,stop_lat,stop_lon
            A,Alpha,0.000,0.000
            B,Beta,0.000,0.010
        ''',
        "routes.txt": '''
            route_id,route_short_name,route_type
            R1,1,3
        ''',
        "trips.txt": '''
            route_id,service_id,trip_id
            R1,WK,T1
        ''',
        "stop_times.txt": stop_times({"T1": "A 08:00  B 08:05"}),
    })

The text is dedented and blank lines dropped; cells are written verbatim (so a
test can put whitespace padding in a field on purpose). Unless
``defaults=False``, a missing ``agency.txt`` gets one agency in ``timezone``, and
a missing ``calendar.txt`` *and* ``calendar_dates.txt`` gets service ``WK``
running every day of 2025.
"""

from __future__ import annotations

import textwrap
import zipfile
from pathlib import Path

DEFAULT_AGENCY = "agency_id,agency_name,agency_url,agency_timezone\nAG,Test Agency,https://example.org,{tz}\n"
DEFAULT_CALENDAR = (
    "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
    "WK,1,1,1,1,1,1,1,20250101,20251231\n"
)


def _clean(text: str) -> str:
    lines = [ln.rstrip("\r") for ln in textwrap.dedent(text).splitlines()]
    lines = [ln.strip() for ln in lines if ln.strip()]
    return "\n".join(lines) + "\n"


def write_gtfs(
    path: Path,
    files: dict[str, str],
    *,
    defaults: bool = True,
    timezone: str = "Europe/Berlin",
    as_zip: bool = False,
) -> Path:
    """Write ``files`` (name -> CSV text) as a GTFS folder (or ``path.zip`` when ``as_zip``).

    Returns the folder or zip path.
    """
    tables = {name if name.endswith(".txt") else f"{name}.txt": _clean(text) for name, text in files.items()}
    if defaults:
        tables.setdefault("agency.txt", DEFAULT_AGENCY.format(tz=timezone))
        if "calendar.txt" not in tables and "calendar_dates.txt" not in tables:
            tables["calendar.txt"] = DEFAULT_CALENDAR
    path = Path(path)
    if as_zip:
        zpath = path.with_suffix(".zip")
        zpath.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(zpath, "w") as zf:
            for name, text in tables.items():
                zf.writestr(name, text)
        return zpath
    path.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (path / name).write_text(text, encoding="utf-8")
    return path


def stop_times(trips: dict[str, str]) -> str:
    """stop_times.txt text from compact per-trip specs.

    Each spec is a whitespace-separated list of ``STOP TIME`` pairs; TIME is
    ``HH:MM`` or ``HH:MM:SS`` (arrival = departure), ``ARR/DEP`` for a dwell,
    or ``-`` for a blank (to-be-interpolated) time. Example::

        stop_times({"T1": "A 08:00  B 08:05/08:06  C -  D 08:20"})

    Only the five basic columns: write the CSV by hand for pickup/drop-off or
    shape_dist_traveled columns.
    """

    def norm(t: str) -> str:
        if t == "-":
            return ""
        return t if t.count(":") == 2 else t + ":00"

    rows = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    for trip_id, spec in trips.items():
        tokens = spec.split()
        if len(tokens) % 2:
            raise ValueError(f"odd stop/time spec for {trip_id}: {spec!r}")
        for seq, (stop, tm) in enumerate(zip(tokens[0::2], tokens[1::2]), start=1):
            arr, _, dep = tm.partition("/")
            dep = dep or arr
            rows.append(f"{trip_id},{norm(arr)},{norm(dep)},{stop},{seq}")
    return "\n".join(rows) + "\n"
