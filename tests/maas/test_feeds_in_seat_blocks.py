"""`maas feeds import --in-seat-from-blocks`: stored on the feed, kept on re-import, compiled into the timetable."""

from __future__ import annotations

from pathlib import Path

from maas.cli import _session_scope, _settings, main
from maas.feeds import build_timetable, list_sources
from maas.models import FeedRecord


def _block_feed(folder: Path) -> Path:
    """T1 A -> X 08:10, W1 X 08:10 -> B, one block: linked only when the option is on."""
    tables = {
        "agency": ["agency_id,agency_name,agency_url,agency_timezone", "AG,Bus Co,https://bus.example,Asia/Shanghai"],
        "stops": ["stop_id,stop_name,stop_lat,stop_lon", "A,Alpha,31.20,121.40", "X,Xi,31.20,121.42",
                  "B,Beta,31.20,121.44"],
        "routes": ["route_id,route_short_name,route_type", "R1,1,3", "R2,2,3"],
        "trips": ["route_id,service_id,trip_id,block_id", "R1,WK,T1,K", "R2,WK,W1,K"],
        "stop_times": ["trip_id,arrival_time,departure_time,stop_id,stop_sequence",
                       "T1,08:00:00,08:00:00,A,1", "T1,08:10:00,08:10:00,X,2",
                       "W1,08:10:00,08:10:00,X,1", "W1,08:25:00,08:25:00,B,2"],
        "calendar": ["service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date",
                     "WK,1,1,1,1,1,1,1,20250101,20251231"],
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        (folder / f"{name}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def _state() -> tuple[bool, bool, dict]:
    with _session_scope() as s:
        stored = s.get(FeedRecord, "blk").in_seat_from_blocks
        sources = list_sources(s)
    tt, _cached = build_timetable(_settings(), sources)
    return stored, sources[0].in_seat_from_blocks, tt.meta["feeds"][0]["counts"]


def test_cli_flag_is_stored_kept_and_compiled(cli_env, capsys, tmp_path: Path) -> None:  # noqa: ANN001
    argv = ["feeds", "import", str(_block_feed(tmp_path / "feed")), "--feed-id", "blk"]
    assert main(argv) == 0  # default: off
    assert "in-seat links from block_id" not in capsys.readouterr().out
    stored, source_flag, counts = _state()
    assert (stored, source_flag) == (False, False) and "combined_trips" not in counts

    assert main([*argv, "--in-seat-from-blocks"]) == 0
    assert "in-seat links from block_id: on" in capsys.readouterr().out
    stored, source_flag, counts = _state()
    assert (stored, source_flag) == (True, True)
    assert counts["in_seat_links_from_blocks"] == 1 and counts["combined_trips"] == 1

    assert main(argv) == 0  # a re-import without the flag keeps it
    assert "in-seat links from block_id: on" in capsys.readouterr().out
    assert _state()[:2] == (True, True)

    assert main([*argv, "--no-in-seat-from-blocks"]) == 0
    capsys.readouterr()
    stored, source_flag, counts = _state()
    assert (stored, source_flag) == (False, False) and "combined_trips" not in counts
