"""`maas feeds import`, `maas plan`, `maas bench routing`, `maas realtime load`, `maas faces calibrate`."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from maas.cli import CliError, _session_scope, _settings, _upgrade, app

feeds_app = typer.Typer(no_args_is_help=True, help="GTFS feeds.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")
realtime_app = typer.Typer(no_args_is_help=True, help="GTFS-Realtime.")
app.add_typer(feeds_app, name="feeds")
app.add_typer(bench_app, name="bench")
app.add_typer(realtime_app, name="realtime")


@feeds_app.command("import")
def feeds_import(
    path: Annotated[Path, typer.Argument(help="GTFS zip or folder")],
    feed_id: Annotated[str, typer.Option("--feed-id", help="namespace of the feed's ids")],
    operator: Annotated[str | None, typer.Option("--operator", help="operator id (default: the feed id)")] = None,
    operator_name: Annotated[str | None, typer.Option("--operator-name", help="display name of a new operator")] = None,
    agency_operator: Annotated[list[str] | None, typer.Option(
        "--agency-operator", help="AGENCY_ID=OPERATOR_ID: that agency's routes belong to that operator (repeatable; "
                                  "default for a feed with several agencies: <feed id>.<agency id>)")] = None,
    in_seat_from_blocks: Annotated[bool | None, typer.Option(
        "--in-seat-from-blocks/--no-in-seat-from-blocks",
        help="infer in-seat links (riders stay aboard) from trips.txt block_id: consecutive trips of one block "
             "and service meeting at a stop or station (default: as at the previous import, else off)")] = None,
) -> None:
    """Import a GTFS feed, compile the timetable of all imported feeds, print a validation summary."""
    from maas.feeds import build_timetable, import_feed, list_sources
    from routing.errors import FeedError

    overrides: dict[str, str] = {}
    for item in agency_operator or []:
        agency_id, sep, op_id = item.partition("=")
        if not sep or not agency_id.strip() or not op_id.strip():
            raise CliError(f"--agency-operator takes AGENCY_ID=OPERATOR_ID (got {item!r})")
        overrides[agency_id.strip()] = op_id.strip()
    _upgrade()
    try:
        with _session_scope() as session:
            record, report = import_feed(session, path=path, feed_id=feed_id, operator_id=operator,
                                         operator_name=operator_name, agency_operators=overrides,
                                         in_seat_from_blocks=in_seat_from_blocks)
            agency_lines = [f"  agency {a} -> operator {o}" for a, o in sorted(record.agency_operators.items())]
            if record.in_seat_from_blocks:
                agency_lines.append("  in-seat links from block_id: on")
    except FeedError as exc:
        report = exc.report
        typer.echo(report.to_text() if report is not None else f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo("\n".join([report.to_text(), *agency_lines]))
    with _session_scope() as session:
        sources = list_sources(session)
    tt, cached = build_timetable(_settings(), sources)
    typer.echo(f"timetable: {len(sources)} feed(s), {len(tt.stop_ids):,} stops "
               f"({'from cache' if cached else 'compiled'})")


def _parse_time(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{name} must be an ISO 8601 time with offset, e.g. 2026-10-07T08:00:00-04:00") from None
    if parsed.tzinfo is None:
        raise CliError(f"{name} needs a UTC offset, e.g. 2026-10-07T08:00:00-04:00")
    return parsed


def _load_snapshot():  # noqa: ANN202
    """The timetable and fares of the imported feeds, as the server would serve them."""
    from maas.db import get_engine
    from maas.feeds import NoFeeds
    from maas.planner import Planner

    _upgrade()
    planner = Planner(_settings(), get_engine(_settings()))
    if planner.refresh() is None:
        raise NoFeeds("no feeds are imported yet: run `maas feeds import PATH --feed-id ID` first")
    return planner.current()  # with the real-time snapshots `maas realtime load` / the API keep


def _describe(it: dict[str, Any]) -> str:
    legs = []
    for leg in it["legs"]:
        if leg["mode"] == "WALK":
            legs.append(f"walk {leg.get('distance_m', 0)} m")
        elif leg.get("frequency"):  # headway-based: no timetable to the minute, say so
            f = leg["frequency"]
            legs.append(f"{leg['mode'].lower()} {leg.get('route_name') or leg.get('route_id')} {f['text']} "
                        f"(expected wait {f['expected_wait_s'] // 60} min) {leg['from']['name']} "
                        f"~{f['expected_departure'][11:16]} (at the stop by {f['board_by'][11:16]}) -> "
                        f"{leg['to']['name']} by {leg['arrival'][11:16]}")
        else:
            legs.append(f"{leg['mode'].lower()} {leg.get('route_name') or leg.get('route_id')} "
                        f"{leg['from']['name']} {leg['departure'][11:16]} -> {leg['to']['name']} {leg['arrival'][11:16]}")
    fare = it.get("fare")
    price = f", {fare['amount'] / 100:.2f} {fare['currency']}" if fare else ""
    return (f"{it['departure'][11:16]} -> {it['arrival'][11:16]} ({it['duration_s'] // 60} min, "
            f"{it['transfers']} transfer(s), walk {it['walk_m']} m{price})" + "".join(f"\n    {leg}" for leg in legs))


@app.command("plan")
def plan_cmd(
    from_: Annotated[str | None, typer.Option("--from", help="stop id <feed>:<stop> or lat,lon")] = None,
    to: Annotated[str | None, typer.Option("--to", help="stop id <feed>:<stop> or lat,lon")] = None,
    depart: Annotated[str | None, typer.Option("--depart", help="ISO time with offset")] = None,
    arrive_by: Annotated[str | None, typer.Option("--arrive-by", help="ISO time with offset")] = None,
    window_s: Annotated[int, typer.Option("--window-s", help="range search window (s)")] = 0,
    max_transfers: Annotated[int, typer.Option("--max-transfers")] = 4,
    min_change_s: Annotated[int, typer.Option("--min-change-s")] = 0,
    walk_speed: Annotated[float, typer.Option("--walk-speed", help="m/s")] = 1.3,
    max_walk_m: Annotated[float, typer.Option("--max-walk-m")] = 1000.0,
    modes: Annotated[str | None, typer.Option("--modes", help="comma list: BUS,SUBWAY,RAIL,...")] = None,
    wheelchair: Annotated[bool, typer.Option("--wheelchair")] = False,
    batch: Annotated[Path | None, typer.Option("--batch", help='JSONL of {"from","to","depart"}')] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    optimize: Annotated[str, typer.Option("--optimize", help="time | fare (Pareto: arrival, transfers, fare)")] = "time",
    max_fare: Annotated[int | None, typer.Option("--max-fare", help="highest fare in minor units (fen)")] = None,
    rider_category: Annotated[str, typer.Option("--rider-category", help="adult, child, senior, ...")] = "adult",
    lang: Annotated[str | None, typer.Option("--lang", help="language of service alert texts, e.g. es")] = None,
    filter_: Annotated[str, typer.Option(
        "--filter", help="default | none: the itinerary filter chain of docs/planning.md, or none")] = "default",
    max_duration_factor: Annotated[float, typer.Option("--max-duration-factor")] = 2.0,
    cost_limit_factor: Annotated[float, typer.Option("--cost-limit-factor")] = 1.5,
    dominance_walk_slack_m: Annotated[float, typer.Option("--dominance-walk-slack-m")] = 100.0,
) -> None:
    """Plan journeys on the imported feeds."""
    from maas.api.plan import parse_modes
    from routing.errors import RoutingError
    from routing.search import PlanRequest

    common = dict(max_transfers=max_transfers, min_change_s=min_change_s, walk_speed_m_s=walk_speed,
                  max_walk_m=max_walk_m, modes=parse_modes(modes), wheelchair=wheelchair, optimize=optimize,
                  max_fare=max_fare, rider_category=rider_category, itinerary_filter=filter_,
                  max_duration_factor=max_duration_factor, cost_limit_factor=cost_limit_factor,
                  dominance_walk_slack_m=dominance_walk_slack_m)
    if optimize not in ("time", "fare"):
        raise CliError("--optimize must be 'time' or 'fare'")
    if batch is not None:
        if not batch.exists():
            raise CliError(f"no such file: {batch}")
        snap = _load_snapshot()
        with batch.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    q = json.loads(line)
                    req = PlanRequest(origin=str(q["from"]), destination=str(q["to"]),
                                      depart_at=_parse_time(q.get("depart"), "depart"),
                                      arrive_by=_parse_time(q.get("arrive_by"), "arrive_by"), **common)
                    ans = snap.plan_answer(req, language=q.get("lang") or lang)
                    out = {"query": q, "itineraries": ans["itineraries"]}
                    if ans["reason"] is not None:
                        out["reason"] = ans["reason"]
                except (ValueError, KeyError, TypeError, CliError, RoutingError) as exc:
                    message = getattr(exc, "message", None) or str(exc)
                    out = {"query": line.strip(), "error": {"code": getattr(exc, "code", "invalid_query_line"),
                                                            "message": f"line {lineno}: {message}"}}
                sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return
    if not from_ or not to:
        raise CliError("give --from and --to (or --batch FILE)")
    if (depart is None) == (arrive_by is None):
        raise CliError("give exactly one of --depart and --arrive-by")
    snap = _load_snapshot()
    req = PlanRequest(origin=from_, destination=to, depart_at=_parse_time(depart, "--depart"),
                      arrive_by=_parse_time(arrive_by, "--arrive-by"), window_s=window_s, **common)
    ans = snap.plan_answer(req, language=lang)
    itineraries = ans["itineraries"]
    if as_json:
        out = {"itineraries": itineraries}
        if ans["reason"] is not None:
            out["reason"] = ans["reason"]
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if not itineraries:
        reason = ans["reason"] or {"code": "no_service_in_window", "message": "no journey found"}
        feeds = "; ".join(f"{f['feed_id']} {f['start_date']}..{f['end_date']}" for f in reason.get("feeds", []))
        raise CliError(f"no journey found for this request: {reason['message']} [{reason['code']}]"
                       + (f" (feeds: {feeds})" if feeds else ""))
    for i, it in enumerate(itineraries, 1):
        typer.echo(f"{i}. [{it.get('label', '')}] {_describe(it)}")


@bench_app.command("routing")
def bench_routing(
    feed: Annotated[list[Path], typer.Option("--feed", help="GTFS zip or folder (repeatable)")],
    date: Annotated[str, typer.Option("--date", help="service date YYYY-MM-DD")],
    queries: Annotated[int, typer.Option("--queries")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    queries_file: Annotated[Path | None, typer.Option("--queries-file")] = None,
    footpaths: Annotated[Path | None, typer.Option("--footpaths")] = None,
    max_rides: Annotated[int | None, typer.Option("--max-rides")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Random stop-to-stop queries on the given feeds; prints one JSON object of figures."""
    from routing.bench import run_benchmark

    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise CliError("--date must be YYYY-MM-DD") from None
    for p in [*feed, *([queries_file] if queries_file else []), *([footpaths] if footpaths else [])]:
        if not p.exists():
            raise CliError(f"no such file: {p}")
    result = run_benchmark(feeds=list(feed), date=day, queries=queries, seed=seed, queries_file=queries_file,
                           footpaths_file=footpaths, max_rides=max_rides,
                           cache_dir=_settings().data_dir / "bench-cache")
    typer.echo(json.dumps(result) if as_json else "\n".join(f"{k}: {v}" for k, v in result.items()))


@realtime_app.command("load")
def realtime_load(
    path: Annotated[Path, typer.Argument(help="GTFS-Realtime TripUpdates protobuf")],
    feed_id: Annotated[str, typer.Option("--feed-id", help="the static feed it updates")],
    alerts: Annotated[bool, typer.Option("--alerts", help="the file holds Service Alerts")] = False,
    source: Annotated[str | None, typer.Option(
        "--source", help="one of several TripUpdates endpoints of the feed: replaces that source's only")] = None,
) -> None:
    """Apply a feed's TripUpdates snapshot to the timetable and keep it (replacing that feed's previous one
    only): running servers pick it up within a second (the same as POST /v1/realtime/{feed_id}). With
    --alerts, keep the feed's Service Alerts instead (POST /v1/realtime/{feed_id}/alerts). Prints what it
    changed: matched and unmatched updates by cause. A message of the other kind is refused."""
    from maas.db import get_engine
    from maas.planner import Planner

    if not path.exists():
        raise CliError(f"no such file: {path}")
    _upgrade()
    planner = Planner(_settings(), get_engine(_settings()))
    data = path.read_bytes()
    info = planner.apply_alerts(data, feed_id) if alerts else planner.apply_realtime(data, feed_id, source)
    typer.echo(json.dumps(info, default=str))


faces_app = typer.Typer(no_args_is_help=True, help="Face credentials.")
app.add_typer(faces_app, name="faces")


@faces_app.command("calibrate")
def faces_calibrate(
    labels: Annotated[Path, typer.Option("--labels", help="CSV with columns file, person")],
    images: Annotated[Path, typer.Option("--images", help="folder the file column is relative to")],
    start: Annotated[float, typer.Option("--from", help="lowest threshold")] = 0.35,
    stop: Annotated[float, typer.Option("--to", help="highest threshold")] = 0.65,
    step: Annotated[float, typer.Option("--step")] = 0.01,
    max_far: Annotated[float, typer.Option("--max-far", help="false-accept rate the recommendation allows")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """False-accept and false-reject rates over a labelled photo set, per threshold, and a recommended threshold."""
    from ticketing.credentials.calibration import calibrate

    for p in (labels, images):
        if not p.exists():
            raise CliError(f"no such file or folder: {p}")
    if not (0 < start <= stop) or step <= 0:
        raise CliError("thresholds need 0 < --from <= --to and --step > 0")
    n = int(round((stop - start) / step)) + 1
    thresholds = [round(start + i * step, 6) for i in range(n)]
    report = calibrate(labels, images, thresholds, max_far=max_far,
                       progress=lambda msg: typer.echo(msg, err=True))
    typer.echo(json.dumps(report.to_dict(), ensure_ascii=False) if as_json else report.to_text())
