"""Fares v2 semantics on tiny inline feeds: empty-field matching, priorities, transfer rules, bad rows.

The feed under test (one network per route, areas by stop)::

    A (area a) --- r1 (net n1) --- B (area b) --- r2 (net n2) --- C (no area)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ticketing.fares import FareDataError, FareEngine, Money, allocate, to_minor

BASE = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nAG,Test,https://x.invalid,Asia/Shanghai\n",
    "routes.txt": "route_id,agency_id,route_type,network_id\nr1,AG,3,n1\nr2,AG,3,n2\nr3,AG,3,\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nA,A,0,0\nB,B,0,0.01\nC,C,0,0.02\n",
    "areas.txt": "area_id\na\nb\n",
    "stop_areas.txt": "area_id,stop_id\na,A\nb,B\n",
    "fare_products.txt": "fare_product_id,amount,currency\nP1,1.00,CNY\nP2,2.00,CNY\nP3,3.00,CNY\nP5,5.00,CNY\n"
                         "T05,0.50,CNY\n",
}


def write_feed(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "feed"
    folder.mkdir(exist_ok=True)
    for name, text in {**BASE, **{k.replace("__", "."): v for k, v in files.items()}}.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def engine(tmp_path: Path, **files: str) -> FareEngine:
    return FareEngine.from_feeds([("f", write_feed(tmp_path, **files))])


def leg(route: str, a: str, b: str, dep: str, arr: str) -> dict:
    return {"mode": "BUS", "feed_id": "f", "route_id": f"f:{route}", "from": {"stop_id": f"f:{a}"},
            "to": {"stop_id": f"f:{b}"}, "departure": f"2026-01-05T{dep}:00+08:00",
            "arrival": f"2026-01-05T{arr}:00+08:00", "distance_m": 1000}


def price(e: FareEngine, *legs: dict) -> int | None:
    q = e.price_legs(list(legs))
    return q.total.amount if q.total else None


def test_empty_fields_without_priority_match_only_unlisted_values(tmp_path):
    """No rule_priority column: an empty network matches networks no rule lists (n2, none), an empty
    from_area matches stops in no listed from area."""
    e = engine(tmp_path, fare_leg_rules__txt="leg_group_id,network_id,from_area_id,to_area_id,fare_product_id\n"
                                             "g1,n1,,,P1\ng2,,,,P2\ng3,,a,,P3\n")
    assert price(e, leg("r1", "B", "C", "08:00", "08:10")) == 100  # n1 listed: only g1
    assert price(e, leg("r2", "B", "C", "08:00", "08:10")) == 200  # n2 unlisted, B not in listed from area
    assert price(e, leg("r2", "A", "C", "08:00", "08:10")) == 300  # A's area a is listed: g2 excluded
    assert price(e, leg("r3", "C", "B", "08:00", "08:10")) == 200  # route without network


def test_empty_fields_with_priority_are_wildcards_and_highest_priority_wins(tmp_path):
    e = engine(tmp_path, fare_leg_rules__txt="leg_group_id,network_id,from_area_id,to_area_id,fare_product_id,"
                                             "rule_priority\n"
                                             "g1,n1,,,P5,\ng2,,,,P2,0\ng3,n1,a,,P3,1\n")
    assert price(e, leg("r1", "A", "C", "08:00", "08:10")) == 300  # g3 outranks g1/g2 (cheaper g2 loses)
    assert price(e, leg("r1", "B", "C", "08:00", "08:10")) == 200  # g1 and g2 both priority 0: cheapest
    assert price(e, leg("r2", "A", "C", "08:00", "08:10")) == 200


def test_timeframes_use_local_time_and_service_days(tmp_path):
    """timeframes peak 07:00-09:00 on service WK (Mon-Fri). 2026-01-05 is a Monday; times in +08:00."""
    e = engine(tmp_path,
               calendar__txt="service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,"
                             "end_date\nWK,1,1,1,1,1,0,0,20260101,20261231\n",
               timeframes__txt="timeframe_group_id,start_time,end_time,service_id\npeak,07:00:00,09:00:00,WK\n",
               fare_leg_rules__txt="leg_group_id,network_id,from_timeframe_group_id,fare_product_id,rule_priority\n"
                                   "peak,n1,peak,P3,1\noff,n1,,P1,0\n")
    assert price(e, leg("r1", "A", "B", "08:59", "09:30")) == 300
    assert price(e, leg("r1", "A", "B", "09:00", "09:30")) == 100  # end_time exclusive
    sat = leg("r1", "A", "B", "08:00", "08:30")
    sat["departure"], sat["arrival"] = "2026-01-10T08:00:00+08:00", "2026-01-10T08:30:00+08:00"
    assert price(e, sat) == 100
    utc = leg("r1", "A", "B", "08:00", "08:30")  # 00:00 UTC = 08:00 in Asia/Shanghai
    utc["departure"], utc["arrival"] = "2026-01-05T00:00:00+00:00", "2026-01-05T00:30:00+00:00"
    assert price(e, utc) == 300


RULES = "leg_group_id,network_id,fare_product_id\ng1,n1,P2\ng2,n2,P3\n"


@pytest.mark.parametrize(("ftype", "expected"), [(0, 200 + 50), (1, 200 + 50 + 300), (2, 50)])
def test_fare_transfer_types(tmp_path, ftype, expected):
    """A = 2.00 (g1), B = 3.00 (g2), AB = 0.50: type 0 A+AB, type 1 A+AB+B, type 2 AB."""
    e = engine(tmp_path, fare_leg_rules__txt=RULES,
               fare_transfer_rules__txt="from_leg_group_id,to_leg_group_id,fare_transfer_type,fare_product_id\n"
                                        f"g1,g2,{ftype},T05\n")
    q = e.price_legs([leg("r1", "A", "B", "08:00", "08:10"), leg("r2", "B", "C", "08:15", "08:30")])
    assert q.total == Money(expected, "CNY")
    assert sum(lf.price.amount for lf in q.legs) == expected


@pytest.mark.parametrize(("ltype", "limit_ok"), [(0, 1800), (1, 900), (2, 300), (3, 1200)])
def test_duration_limit_types(tmp_path, ltype, limit_ok):
    """Leg 1 08:00-08:10, leg 2 08:15-08:30. Spans: 0 dep->arr 30 min, 1 dep->dep 15, 2 arr->dep 5,
    3 arr->arr 20. At the span the free transfer applies; one second less it does not."""
    for limit, expected in ((limit_ok, 200), (limit_ok - 1, 500)):
        e = engine(tmp_path, fare_leg_rules__txt=RULES,
                   fare_transfer_rules__txt="from_leg_group_id,to_leg_group_id,duration_limit,duration_limit_type,"
                                            f"fare_transfer_type\ng1,g2,{limit},{ltype},0\n")
        assert price(e, leg("r1", "A", "B", "08:00", "08:10"), leg("r2", "B", "C", "08:15", "08:30")) == \
            expected, (ltype, limit)


def test_transfer_count_limits_and_unlimited(tmp_path):
    legs = [leg("r1", "A", "B", f"08:{m:02d}", f"08:{m + 5:02d}") for m in (0, 10, 20, 30)]
    for count, expected in (("1", 200 + 0 + 200 + 0), ("2", 200 + 0 + 0 + 200), ("-1", 200)):
        e = engine(tmp_path, fare_leg_rules__txt=RULES,
                   fare_transfer_rules__txt="from_leg_group_id,to_leg_group_id,transfer_count,fare_transfer_type\n"
                                            f"g1,g1,{count},0\n")
        assert price(e, *legs) == expected, count


def test_bad_rows_name_file_and_line(tmp_path):
    with pytest.raises(FareDataError) as e:
        engine(tmp_path, fare_products__txt="fare_product_id,amount,currency\nP1,1.00,CNY\nP2,abc,CNY\n")
    assert "fare_products.txt line 3" in e.value.message and e.value.code == "invalid_fare_data"
    with pytest.raises(FareDataError) as e:
        engine(tmp_path, fare_leg_rules__txt="leg_group_id,network_id,fare_product_id\ng1,n1,NOPE\n")
    assert "fare_leg_rules.txt line 2" in e.value.message and "NOPE" in e.value.message
    with pytest.raises(FareDataError) as e:
        engine(tmp_path, fare_leg_rules__txt=RULES,
               fare_transfer_rules__txt="from_leg_group_id,to_leg_group_id,duration_limit,fare_transfer_type\n"
                                        "g1,g2,600,0\n")
    assert "fare_transfer_rules.txt line 2" in e.value.message and "duration_limit_type" in e.value.message
    with pytest.raises(FareDataError) as e:
        engine(tmp_path, fare_leg_rules__txt="leg_group_id,network_id\ng1,n1\n")
    assert "fare_leg_rules.txt" in e.value.message and "fare_product_id" in e.value.message
    with pytest.raises(FareDataError):
        engine(tmp_path, fare_products__txt="fare_product_id,amount,currency\nP1,1.005,CNY\n")


def test_money_conversion_and_allocation():
    assert to_minor("2.00", "CNY") == 200 and to_minor("20", "CAD") == 2000 and to_minor("500", "JPY") == 500
    assert to_minor("88.20", "PLN") == 8820
    with pytest.raises(FareDataError):
        to_minor("1.234", "USD")
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(7, [0, 0]) == [4, 3]
    assert sum(allocate(12345, [3, 7, 11, 0])) == 12345
    with pytest.raises(TypeError):
        Money(1.5, "CNY")  # type: ignore[arg-type]


def test_operator_od_table_agreement_wildcard_and_config_errors(tmp_path):
    """Feed 'f' has no fare files: an OD table prices it (A->B 8.00, symmetric; child 50 %). A second feed 'g'
    (flat 2.00) gives 0.50 off after any leg of 'f' ('f:*') within 30 min of its arrival (type 2)."""
    f = write_feed(tmp_path)
    g = tmp_path / "g"
    g.mkdir()
    for name, text in BASE.items():
        (g / name).write_text(text, encoding="utf-8")
    (g / "fare_leg_rules.txt").write_text("leg_group_id,network_id,fare_product_id\ngflat,,P2\n", encoding="utf-8")
    tables = {"tables": [{"feed_id": "f", "currency": "CNY", "kind": "od",
                          "fares": [{"from_stop_id": "A", "to_stop_id": "B", "amount": 800}],
                          "rider_categories": {"adult": {"percent": 100}, "child": {"percent": 50}}}]}
    agreements = {"transfer_rules": [{"agreement_id": "x", "from_leg_group_ids": ["f:*"],
                                      "to_leg_group_ids": ["g:gflat"], "duration_limit": 1800,
                                      "duration_limit_type": 2, "discount": {"amount": 50, "currency": "CNY"}}]}
    e = FareEngine.from_feeds([("f", f), ("g", g)], agreements=agreements, operator_tables=tables)
    back = leg("r1", "B", "A", "08:00", "08:10")
    on_g = {**leg("r1", "A", "C", "08:40", "08:50"), "feed_id": "g", "route_id": "g:r1",
            "from": {"stop_id": "g:A"}, "to": {"stop_id": "g:C"}}
    q = e.price_legs([back, on_g])
    assert [lf.price.amount for lf in q.legs] == [800, 150] and q.legs[0].source == "operator_table"
    late = {**on_g, "departure": "2026-01-05T08:41:00+08:00", "arrival": "2026-01-05T08:50:00+08:00"}
    assert e.price_legs([back, late]).total == Money(1000, "CNY")
    assert e.price_legs([back], rider_category="child").total == Money(400, "CNY")
    senior = e.price_legs([back], rider_category="senior")
    assert senior.total is None and "senior" in senior.reason
    with pytest.raises(FareDataError):
        FareEngine.from_feeds([("f", f)], agreements={"transfer_rules": [{"agreement_id": "x"}]})
    with pytest.raises(FareDataError):
        FareEngine.from_feeds([("f", f)], operator_tables={"tables": [{"feed_id": "f", "currency": "CNY",
                                                                       "kind": "distance_bands", "bands": []}]})
    bad_json = tmp_path / "a.json"
    bad_json.write_text("{oops", encoding="utf-8")
    with pytest.raises(FareDataError) as err:
        FareEngine.from_feeds([("f", f)], agreements=bad_json)
    assert "a.json line 1" in err.value.message


def test_fares_v1_route_and_contains_rules(tmp_path):
    """fare_attributes: base 1.00 (fare_rules: route r1), cross 3.00 (contains z1, z2, z3); no transfers.
    stops zone_id A z1, B z2, C z3. r2 A->C via B passes z1, z2, z3 = cross; r2 A->B passes only z1, z2:
    no fare (unpriced, not 0); r1 A->B = base. Two r1 rides: transfers=0, so 1.00 + 1.00."""
    e = engine(tmp_path,
               stops__txt="stop_id,stop_name,stop_lat,stop_lon,zone_id\nA,A,0,0,z1\nB,B,0,0.01,z2\nC,C,0,0.02,z3\n",
               fare_attributes__txt="fare_id,price,currency_type,payment_method,transfers\nbase,1.00,CNY,0,0\n"
                                    "cross,3.00,CNY,0,0\n",
               fare_rules__txt="fare_id,route_id,origin_id,destination_id,contains_id\nbase,r1,,,\ncross,,,,z1\n"
                               "cross,,,,z2\ncross,,,,z3\n")
    via_b = {**leg("r2", "A", "C", "08:00", "08:20"), "intermediate_stops": [{"stop_id": "f:B"}]}
    q = e.price_legs([via_b])
    assert q.total == Money(300, "CNY") and q.legs[0].fare_product_id == "f:cross"
    short = e.price_legs([leg("r2", "A", "B", "08:00", "08:10")])
    assert short.total is None and "fare_rules" in short.legs[0].reason
    assert price(e, leg("r1", "A", "B", "08:00", "08:10")) == 100
    assert price(e, leg("r1", "A", "B", "08:00", "08:10"), leg("r1", "B", "A", "08:15", "08:25")) == 200
