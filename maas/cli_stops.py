"""`maas stops search`: find stop ids by name and/or location in the imported feeds' timetable."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from maas.cli import CliError, app

stops_app = typer.Typer(no_args_is_help=True, help="Stops and stations of the imported feeds.")
app.add_typer(stops_app, name="stops")


def _parse_near(value: str) -> tuple[float, float]:
    lat, sep, lon = value.partition(",")
    try:
        if not sep:
            raise ValueError
        return float(lat), float(lon)
    except ValueError:
        raise CliError(f"--near takes LAT,LON in degrees, e.g. 40.7527,-73.9772 (got {value!r})") from None


@stops_app.command("search")
def stops_search(
    q: Annotated[str | None, typer.Argument(help="part of a name or id; accents, case and pinyin do not matter")]
    = None,
    near: Annotated[str | None, typer.Option("--near", help="LAT,LON: nearest first, with distances")] = None,
    radius: Annotated[float, typer.Option("--radius", help="metres around --near")] = 1000.0,
    limit: Annotated[int, typer.Option("--limit")] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stations (with their platforms) and stops matching Q and/or near --near, best or nearest first."""
    from maas.cli_domains import _load_snapshot
    from routing.stop_search import check_request, search_stops

    where = _parse_near(near) if near is not None else None
    check_request(q, near=where, radius_m=radius, limit=limit)  # before opening the database
    hits = search_stops(_load_snapshot().timetable, q, near=where, radius_m=radius, limit=limit)
    if as_json:
        typer.echo(json.dumps({"stops": [h.to_dict() for h in hits]}, ensure_ascii=False, indent=2))
        return
    if not hits:
        typer.echo("no stop found")
    for i, h in enumerate(hits, 1):
        kind = "station" if h.station else "stop"
        plats = ", ".join(p["stop_id"] + (f" ({p['platform_code']})" if "platform_code" in p else "")
                          for p in h.platforms)
        dist = f", {h.distance_m} m" if h.distance_m is not None else ""
        typer.echo(f"{i}. {h.stop_id}  {h.name}  [{kind}{dist}]" + (f"\n    platforms: {plats}" if plats else ""))
