"""``GET /v1/stops`` and ``maas stops search`` (issue 13 item 11) on real feeds: names whatever the accents,
Chinese script or pinyin, nearest places with distances, stations listing their platforms, bad input refused
with a machine-readable code. The search itself is tested in tests/routing/test_stop_search.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maas.cli import main
from tests.ticketing_support import load_feeds

FUTIAN_EXIT_9 = (22.537833792404445, 114.0516089275311)


@pytest.fixture
def feeds(app, engine, tmp_path, shared_data: Path):  # noqa: ANN001, ANN201
    load_feeds(app, engine, [(shared_data / "hk-xrl" / "hk_xrl.zip", "hk", "mtr"),
                             (shared_data / "zakroczym-fares-v2" / "zakroczym.zip", "zk", "zk")],
               tmp_path / "timetables")


def _stops(client, **params) -> list[dict]:  # noqa: ANN001
    r = client.get("/v1/stops", params=params)
    assert r.status_code == 200, r.text
    return r.json()["stops"]


def test_by_pinyin_and_accents_with_platforms(client, feeds) -> None:  # noqa: ANN001
    for q in ("xi jiu long", "xjl", "西九龙"):
        [wek] = _stops(client, q=q)
        assert wek == {"stop_id": "hk:WEK", "name": "香港西九龍", "lat": 22.3036814, "lon": 114.1649267,
                       "station": True, "platforms": [{"stop_id": "hk:WEK_pf", "name": "香港西九龍"}],
                       "match": "pinyin" if q != "西九龙" else "name"}
    assert [s["name"] for s in _stops(client, q="zareby")] == ["Zaręby-Pętla"]
    assert _stops(client, q="Zaręby")[0]["platforms"] == []
    assert _stops(client, q="hk:FUT_pf78")[0]["stop_id"] == "hk:FUT_pf78"  # a platform by its exact id
    assert _stops(client, q="nothing like it") == []


def test_nearest_first_with_distance_and_combined_with_q(client, feeds) -> None:  # noqa: ANN001
    lat, lon = FUTIAN_EXIT_9
    near = _stops(client, lat=lat, lon=lon, radius_m=20_000)
    assert [s["stop_id"] for s in near] == ["hk:FUT", "hk:SZB"]
    assert near[0]["distance_m"] < near[1]["distance_m"] and 300 < near[0]["distance_m"] < 450
    assert "match" not in near[0]
    assert [s["stop_id"] for s in _stops(client, q="shenzhen", lat=lat, lon=lon, radius_m=20_000)] == ["hk:SZB"]
    assert [s["stop_id"] for s in _stops(client, lat=lat, lon=lon)] == ["hk:FUT"]  # within the default 1 km
    assert _stops(client, lat=lat, lon=lon, radius_m=300) == []  # the station's exits are no places


@pytest.mark.parametrize(("params", "status", "code"), [
    ({}, 400, "invalid_stop_search"),
    ({"lat": 22.5}, 400, "invalid_stop_search"),
    ({"lon": 114.0, "q": "fu"}, 400, "invalid_stop_search"),
    ({"lat": 22.5, "lon": 114.0, "radius_m": 0}, 422, "validation_error"),
    ({"lat": 22.5, "lon": 114.0, "radius_m": 50_001}, 422, "validation_error"),
    ({"lat": 91, "lon": 114.0}, 422, "validation_error"),
    ({"q": "fu", "limit": 0}, 422, "validation_error"),
    ({"q": "fu", "limit": 51}, 422, "validation_error"),
    ({"q": ""}, 422, "validation_error"),
])
def test_bad_input_is_a_4xx_with_a_code(client, feeds, params: dict, status: int, code: str) -> None:  # noqa: ANN001
    r = client.get("/v1/stops", params=params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_cli_stops_search(cli_env, capsys, shared_data: Path) -> None:  # noqa: ANN001
    assert main(["feeds", "import", str(shared_data / "hk-xrl" / "hk_xrl.zip"), "--feed-id", "hk",
                 "--operator", "mtr"]) == 0
    capsys.readouterr()
    assert main(["stops", "search", "futian", "--json"]) == 0
    [fut] = json.loads(capsys.readouterr().out)["stops"]
    assert fut["stop_id"] == "hk:FUT" and [p["stop_id"] for p in fut["platforms"]] == ["hk:FUT_pf56", "hk:FUT_pf78"]
    assert main(["stops", "search", "--near", "22.5378,114.0516", "--radius", "20000", "--limit", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1. hk:FUT  福田  [station, ") and out[0].endswith(" m]")
    assert out[1] == "    platforms: hk:FUT_pf56, hk:FUT_pf78" and len(out) == 2
    assert main(["stops", "search", "no such place"]) == 0 and capsys.readouterr().out == "no stop found\n"
    for argv, fragment in [
        (["stops", "search"], "give a name (q) or a location"),
        (["stops", "search", "fu", "--near", "22.5"], "--near takes LAT,LON"),
        (["stops", "search", "--near", "22.5,114", "--radius", "0"], "radius_m must be between"),
        (["stops", "search", "fu", "--limit", "500"], "limit must be between 1 and 50"),
    ]:
        assert main(argv) != 0, argv
        err = capsys.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1, (argv, err)
