"""Finding stops (issue 13 item 11): by name whatever the accents, case, Chinese script or pinyin, and by
proximity; stations stand for (and list) their platforms.

The constructed feed, places on the equator (0.001° of longitude ≈ 111.3 m)::

    lon 0.000      0.001        0.002     0.004       0.010            0.020   0.021  0.022
        Zoo ------ São Paulo – Sé ------ Zoó ------ Małopolska -------- 長沙南   厦门北  重慶北
                   |  platforms SP1 "Linha 1", SP2 "Linha 3"          |  platform CS1
                   |  entrance SPE "Zoo entrance" (never listed)      (traditional characters)
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from gtfs_text import stop_times, write_gtfs

from routing.compile import compile_timetable
from routing.feeds import FeedSource
from routing.stop_search import StopSearchError, fold, pinyin_syllables, search_stops, stop_index

STOPS = """
    stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
    Z,Zoo,0,0.000,0,
    SP,São Paulo – Sé,0,0.001,1,
    SP1,Linha 1,0,0.001,0,SP
    SP2,Linha 3,0,0.0011,0,SP
    SPE,Zoo entrance,0,0.0012,2,SP
    ZA,Zoó,0,0.002,0,
    M,Małopolska Straße,0,0.004,0,
    CS,長沙南,0,0.020,1,
    CS1,長沙南,0,0.020,0,CS
    XM,厦门北,0,0.021,0,
    CQ,重慶北,0,0.022,0,
"""


@pytest.fixture(scope="module")
def tt(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    feed = write_gtfs(tmp_path_factory.mktemp("stops") / "f", {
        "stops.txt": STOPS,
        "routes.txt": "route_id,route_short_name,route_type\nR1,1,3\n",
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\n",
        "stop_times.txt": stop_times({"T1": "Z 08:00  SP1 08:02  SP2 08:03  ZA 08:04  M 08:06  CS1 08:20  "
                                           "XM 08:21  CQ 08:22"}),
    })
    return compile_timetable([FeedSource("f", feed, "op")])


@pytest.fixture(scope="module")
def real(shared_data: Path):  # noqa: ANN201
    return compile_timetable([
        FeedSource("hk", shared_data / "hk-xrl" / "hk_xrl.zip", "mtr"),
        FeedSource("zk", shared_data / "zakroczym-fares-v2" / "zakroczym.zip", "zk"),
        FeedSource("tc", shared_data / "transcollines-fares-v2" / "transcollines-qc-ca-fares.zip", "tc"),
    ])


def ids(tt, q: str | None = None, **kw) -> list[str]:  # noqa: ANN001
    return [h.stop_id for h in search_stops(tt, q, **kw)]


def test_folding_drops_accents_case_and_script_differences() -> None:
    assert fold("São Paulo – Sé") == "sao paulo se"
    assert fold("MAŁOPOLSKA Straße") == "malopolska strasse"
    assert fold("Øresund") == "oresund"
    assert fold("香港西九龍") == fold("香港西九龙") == "香港西九龙"
    assert pinyin_syllables("長沙南") == "chang sha nan"  # 長 read in its phrase, from the simplified text
    assert pinyin_syllables("T2航站樓") == "t2 hang zhan lou"
    assert pinyin_syllables("Zoo") == ""


@pytest.mark.parametrize("q", ["Sao Paulo", "são paulo", "SAO PAULO SE", "paulo se", "se sao"])
def test_accents_and_case_do_not_matter(tt, q: str) -> None:  # noqa: ANN001
    assert ids(tt, q)[:1] == ["f:SP"]


def test_letters_nfkd_does_not_decompose(tt) -> None:  # noqa: ANN001
    assert ids(tt, "Malopolska") == ["f:M"]
    assert ids(tt, "malopolska strasse") == ids(tt, "Małopolska Straße") == ["f:M"]


def test_zoo_and_zoo_accent_find_each_other_exact_names_first(tt) -> None:  # noqa: ANN001
    assert ids(tt, "Zoo") == ["f:Z", "f:ZA"]  # equal names (after folding), the entrance is never listed
    assert set(ids(tt, "Zoó")) == {"f:Z", "f:ZA"}
    assert [h.match for h in search_stops(tt, "zoo")] == ["name", "name"]


def test_station_lists_its_platforms_and_a_platform_is_found_through_it(tt) -> None:  # noqa: ANN001
    [sp] = search_stops(tt, "Linha 3")  # a platform's name
    assert (sp.stop_id, sp.station, sp.match) == ("f:SP", True, "platform")
    assert sp.platforms == [{"stop_id": "f:SP1", "name": "Linha 1"}, {"stop_id": "f:SP2", "name": "Linha 3"}]
    assert ids(tt, "linha") == ["f:SP"]  # both platforms match: the station once
    assert ids(tt, "f:sp2") == ["f:SP2"]  # a platform named by its exact id is answered itself
    assert search_stops(tt, "f:SP2")[0].match == "id"
    assert ids(tt, "entrance") == []  # entrances are not places to start or end a journey
    assert search_stops(tt, "Zoo")[0].platforms == []


@pytest.mark.parametrize(("q", "want"), [
    ("changsha", "f:CS"), ("chang sha nan", "f:CS"), ("csn", "f:CS"), ("changs", "f:CS"), ("长沙", "f:CS"),
    ("長沙", "f:CS"), ("xiamen", "f:XM"), ("xmb", "f:XM"), ("廈門", "f:XM"), ("chongqing", "f:CQ"),
    ("重庆北", "f:CQ"), ("cqb", "f:CQ"),
])
def test_chinese_names_by_either_script_or_pinyin(tt, q: str, want: str) -> None:  # noqa: ANN001
    assert ids(tt, q)[:1] == [want]


def test_pinyin_needs_consecutive_syllable_prefixes(tt) -> None:  # noqa: ANN001
    assert ids(tt, "changnan") == []  # 長沙南: no syllable may be skipped
    assert ids(tt, "hangsha") == []  # ... and each letter run starts a syllable
    assert ids(tt, "shanan")[:1] == ["f:CS"]  # from a later syllable is fine, ranked after starts
    assert search_stops(tt, "shanan")[0].match == "pinyin"


def _metres(tt, stop_id: str, lat: float, lon: float) -> float:  # noqa: ANN001
    """Great-circle distance the slow way (spherical law of cosines), for comparison."""
    s = tt.stop_index[stop_id]
    p1, p2, dl = math.radians(lat), math.radians(float(tt.stop_lat[s])), math.radians(float(tt.stop_lon[s]) - lon)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6_371_008.8 * math.acos(min(1.0, max(-1.0, c)))


def test_proximity_is_nearest_first_within_the_radius(tt) -> None:  # noqa: ANN001
    hits = search_stops(tt, near=(0.0, 0.0011), radius_m=500)
    # SP 11 m (the station's own point), Zoó 100 m, Zoo 122 m, Małopolska 322 m; the entrance SPE is no place
    assert [(h.stop_id, h.distance_m) for h in hits] == [("f:SP", 11), ("f:ZA", 100), ("f:Z", 122), ("f:M", 322)]
    for h in hits:
        assert abs(h.distance_m - _metres(tt, h.stop_id, 0.0, 0.0011)) <= 1
    assert all(h.match is None for h in hits)
    assert ids(tt, near=(0.0, 0.0011), radius_m=110) == ["f:SP", "f:ZA"]
    assert ids(tt, near=(0.0, 0.0011), radius_m=100) == ["f:SP"]  # Zoó is 100.07 m away
    assert ids(tt, near=(0.0, 0.0011), radius_m=500, limit=2) == ["f:SP", "f:ZA"]


def test_proximity_combined_with_a_name(tt) -> None:  # noqa: ANN001
    hits = search_stops(tt, "zoo", near=(0.0, 0.0025), radius_m=5000)
    assert [(h.stop_id, h.distance_m) for h in hits] == [("f:ZA", 56), ("f:Z", 278)]  # nearest first
    assert ids(tt, "zoo", near=(0.0, 0.0025), radius_m=100) == ["f:ZA"]
    assert ids(tt, "f:SP2", near=(0.0, 0.0), radius_m=50) == []  # the exact id too is limited by the radius


@pytest.mark.parametrize(("kw", "parameter"), [
    ({}, "q"),
    ({"q": "zoo", "limit": 0}, "limit"),
    ({"q": "zoo", "limit": 51}, "limit"),
    ({"near": (0.0, 0.0), "radius_m": 0.5}, "radius_m"),
    ({"near": (0.0, 0.0), "radius_m": 50_001}, "radius_m"),
    ({"near": (91.0, 0.0)}, "lat"),
    ({"near": (0.0, 181.0)}, "lon"),
])
def test_bad_input_is_refused_with_the_parameter(tt, kw: dict, parameter: str) -> None:  # noqa: ANN001
    with pytest.raises(StopSearchError) as exc:
        search_stops(tt, **kw)
    assert exc.value.code == "invalid_stop_search" and exc.value.details == {"parameter": parameter}


@pytest.mark.parametrize("q", [" – ", "\0", ".*", "%", "😀", "x" * 100])
def test_punctuation_patterns_and_nul_find_nothing(tt, q: str) -> None:  # noqa: ANN001
    assert ids(tt, q) == []


def test_index_is_built_once_per_timetable(tt) -> None:  # noqa: ANN001
    assert stop_index(tt) is stop_index(tt)


# ---- real feeds ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("q", ["xijiulong", "xi jiu long", "XiJiuLong", "xjl", "xgxjl", "xianggang", "西九龙",
                               "西九龍", "xijl"])
def test_hk_west_kowloon_by_pinyin_or_either_script(real, q: str) -> None:  # noqa: ANN001
    [wek, *_] = search_stops(real, q)
    assert wek.stop_id == "hk:WEK" and wek.name == "香港西九龍" and wek.station
    assert wek.platforms == [{"stop_id": "hk:WEK_pf", "name": "香港西九龍"}]


def test_hk_stations_list_platforms_never_entrances(real) -> None:  # noqa: ANN001
    [fut] = search_stops(real, "futian")
    assert [p["stop_id"] for p in fut.platforms] == ["hk:FUT_pf56", "hk:FUT_pf78"]
    assert ids(real, "guangzhounan") == ["hk:GZN"] and ids(real, "广州南") == ["hk:GZN"]
    assert ids(real, "出口") == []  # only entrances are named so


@pytest.mark.parametrize(("lat", "lon", "radius_m"), [
    (22.537833792404445, 114.0516089275311, 20_000),  # Futian exit 9
    (22.8, 113.8, 50_000), (22.3, 114.17, 50_000), (22.7, 113.9, 1_000),
])
def test_hk_nearest_stations_agree_with_a_slow_distance(real, lat: float, lon: float, radius_m: int) -> None:  # noqa: ANN001
    hits = search_stops(real, near=(lat, lon), radius_m=radius_m, limit=50)
    stations = [str(i) for i, loc in zip(real.stop_ids, real.stop_location_type) if str(i).startswith("hk:")
                and loc == 1]
    want = sorted((round(_metres(real, s, lat, lon)), s) for s in stations if _metres(real, s, lat, lon) <= radius_m)
    assert [(h.distance_m, h.stop_id) for h in hits] == want
    assert all(h.station and h.platforms for h in hits)


@pytest.mark.parametrize(("q", "name"), [
    ("Zareby", "Zaręby-Pętla"), ("sniadowo kapliczka", "Śniadowo-Kapliczka"), ("blogoslawie", "Błogosławie-Staw"),
    ("urzad miejski 02", "Zakroczym Urząd Miejski 02"), ("batisseurs belec", "des Bâtisseurs | Henri Bélec"),
])
def test_accented_real_names(real, q: str, name: str) -> None:  # noqa: ANN001
    assert search_stops(real, q)[0].name == name


def test_every_accented_real_name_is_found_without_its_accents(real) -> None:  # noqa: ANN001
    from anyascii import anyascii

    idx = stop_index(real)
    names = {str(real.stop_names[s]) for s in idx.places.tolist() if str(real.stop_ids[s]).startswith(("zk:", "tc:"))}
    accented = sorted(n for n in names if anyascii(n) != n)
    assert len(accented) > 20
    for name in accented:
        found = [h.name for h in search_stops(real, anyascii(name).lower(), limit=50)]
        assert found[0] == name, (name, found[:3])
