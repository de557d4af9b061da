"""Fares of the demo city 云溪市: flat bus fare, metro zones, coach OD fares, 联程优惠, concessions.

Amounts are hand-derived from the files `maas.demo.city` writes (quoted in each
docstring); the engine must reproduce them.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maas.demo import write_demo_city
from maas.demo.city import FARE_AGREEMENTS_FILE, OPERATOR_FARE_TABLES_FILE
from ticketing.fares import FareEngine, InvalidLeg, Money

TODAY = date(2026, 11, 21)
DAY = "2026-11-23"  # a Monday inside the service window


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> FareEngine:
    out: Path = tmp_path_factory.mktemp("yunxi-fares")
    feeds = write_demo_city(out, TODAY)
    return FareEngine.from_feeds([(f.feed_id, f.path) for f in feeds], agreements=out / FARE_AGREEMENTS_FILE,
                                 operator_tables=out / OPERATOR_FARE_TABLES_FILE,
                                 operators={f.feed_id: f.operator_id for f in feeds})


def leg(feed: str, route: str, a: str, b: str, dep: str, arr: str, *, mode: str = "BUS",
        distance_m: float = 3000.0) -> dict:
    return {"mode": mode, "feed_id": feed, "route_id": f"{feed}:{route}",
            "from": {"stop_id": f"{feed}:{a}"}, "to": {"stop_id": f"{feed}:{b}"},
            "departure": f"{DAY}T{dep}:00+08:00", "arrival": f"{DAY}T{arr}:00+08:00", "distance_m": distance_m}


WALK = {"mode": "WALK", "departure": f"{DAY}T08:25:00+08:00", "arrival": f"{DAY}T08:28:00+08:00"}


def amounts(q) -> list[int | None]:
    return [lf.price.amount if lf.price else None for lf in q.legs]


def test_bus_flat_fare_for_every_medium(engine):
    """yx-bus fare_leg_rules: bus_flat -> bus_single; fare_products bus_single adult 2.00 CNY = 200 fen."""
    for medium in ("qr", "card", "cash"):
        q = engine.price_legs([leg("yx-bus", "2", "BC", "RMGC", "08:00", "08:25")], fare_media=medium)
        assert q.total == Money(200, "CNY")
        assert q.legs[0].fare_product_id == "yx-bus:bus_single" and q.legs[0].operator_id == "yunxi-bus"


def test_metro_ring_zone_fares(engine):
    """stop_areas: RMGC in Z1 (centre), BC 7 km out in Z3, DT 3.6 km in Z2.

    fare_leg_rules metro Z1->Z3 -> metro_4yuan (4.00), Z1->Z2 -> metro_3yuan (3.00), Z1->Z1 -> metro_2yuan.
    The legs board platforms (RMGC_L2); their areas come from the parent station.
    """
    cases = [("L2", "RMGC_L2", "BC_L2", 400), ("L1", "RMGC_L1", "DT_L1", 300), ("L1", "RMGC_L1", "WYL_L1", 200)]
    for route, a, b, expected in cases:
        q = engine.price_legs([leg("yx-metro", route, a, b, "09:00", "09:15", mode="SUBWAY")], fare_media="qr")
        assert q.total == Money(expected, "CNY"), (a, b)


def test_metro_line_change_is_one_fare_leg(engine):
    """fare_leg_join_rules metro->metro joins L1 XHGY(Z3)->RMGC and L2 RMGC->BJXC(Z2): one leg Z3->Z2 = 3.00.

    Separately they would be Z3->Z1 4.00 + Z1->Z2 3.00; the joined price is split by distance (equal here).
    """
    q = engine.price_legs([leg("yx-metro", "L1", "XHGY_L1", "RMGC_L1", "09:00", "09:20", mode="SUBWAY"),
                           leg("yx-metro", "L2", "RMGC_L2", "BJXC_L2", "09:24", "09:35", mode="SUBWAY")],
                          fare_media="card")
    assert q.total == Money(300, "CNY")
    assert amounts(q) == [150, 150]
    assert q.legs[0].effective_leg == q.legs[1].effective_leg
    assert [t.kind for t in q.transfers] == ["fare_leg_join"]


def test_bus_to_metro_within_60_min_gets_one_yuan_off(engine):
    """platform/fare_agreements.json yx-bus-metro-2024: yx-bus:bus_flat -> yx-metro:metro, type 1 (dep->dep)
    within 3600 s, 100 fen off the metro leg with qr/card. Bus 200 + metro RMGC(Z1)->DT(Z2) 300 - 100 = 400."""
    q = engine.price_legs([leg("yx-bus", "2", "BC", "RMGC", "08:00", "08:25"), WALK,
                           leg("yx-metro", "L1", "RMGC_L1", "DT_L1", "08:30", "08:40", mode="SUBWAY")],
                          fare_media="qr")
    assert q.total == Money(400, "CNY")
    assert amounts(q) == [200, 200]
    assert q.legs[1].leg_index == 2 and q.legs[1].standalone == Money(300, "CNY")
    (ag,) = [t for t in q.transfers if t.kind == "agreement"]
    assert ag.rule_id == "yx-bus-metro-2024" and ag.saving == Money(100, "CNY")


def test_bus_to_metro_after_60_min_pays_full(engine):
    """Same legs, metro boarded 61 min after the bus departed: outside duration_limit 3600 -> 200 + 300."""
    q = engine.price_legs([leg("yx-bus", "2", "BC", "RMGC", "08:00", "08:25"),
                           leg("yx-metro", "L1", "RMGC_L1", "DT_L1", "09:01", "09:10", mode="SUBWAY")],
                          fare_media="qr")
    assert q.total == Money(500, "CNY")
    assert not [t for t in q.transfers if t.kind == "agreement"]


def test_transfer_discount_needs_qr_or_card(engine):
    """The agreement lists fare_media_ids qr, card: paying cash gives 200 + 300 = 500; no medium given picks
    the cheapest medium (400)."""
    legs = [leg("yx-bus", "2", "BC", "RMGC", "08:00", "08:25"),
            leg("yx-metro", "L1", "RMGC_L1", "DT_L1", "08:30", "08:40", mode="SUBWAY")]
    assert engine.price_legs(legs, fare_media="cash").total == Money(500, "CNY")
    best = engine.price_legs(legs)
    assert best.total == Money(400, "CNY") and best.fare_media_id in ("qr", "card")


def test_bus_to_bus_free_within_60_min_with_card_only_once(engine):
    """yx-bus fare_transfer_rules: bus_flat->bus_flat, transfer_count 1, 3600 s type 1, type 0 (A + AB) with
    bus_transfer 0.00 (qr/card only). Three buses: 200 + 0 + 200 (transfer_count 1 used up); cash: 600."""
    legs = [leg("yx-bus", "1", "XHGY", "RMGC", "08:00", "08:20"), leg("yx-bus", "2", "RMGC", "BC", "08:25", "08:45"),
            leg("yx-bus", "N1", "BC", "QCDZ", "08:50", "09:10")]
    q = engine.price_legs(legs, fare_media="card")
    assert amounts(q) == [200, 0, 200] and q.total == Money(400, "CNY")
    assert engine.price_legs(legs, fare_media="cash").total == Money(600, "CNY")


def test_senior_and_disabled_ride_bus_and_metro_free_child_half(engine):
    """fare_products: bus_single senior 0.00, disabled 0.00, child 1.00; metro_3yuan child 1.50.
    Child with qr: bus 100 + metro 150, agreement 100 off metro -> 150. Senior/disabled: 0 (free, not unknown)."""
    legs = [leg("yx-bus", "2", "BC", "RMGC", "08:00", "08:25"),
            leg("yx-metro", "L1", "RMGC_L1", "DT_L1", "08:30", "08:40", mode="SUBWAY")]
    for cat in ("senior", "disabled"):
        q = engine.price_legs(legs, rider_category=cat, fare_media="qr")
        assert q.total == Money(0, "CNY") and amounts(q) == [0, 0] and q.reason is None
        assert q.legs[0].rider_category_id == cat
    assert engine.price_legs(legs, rider_category="child", fare_media="qr").total == Money(150, "CNY")


def test_coach_od_fare_by_area(engine):
    """yx-coach stop_areas YXZZ->YX, BSX->BS, MLX->ML; fare_leg_rules coach YX->ML -> coach_yx_ml 45.00,
    BS->ML -> coach_bs_ml 22.00; disabled 50 % (22.50), senior full (45.00); no card product."""
    yx_ml = [leg("yx-coach", "YX-ML", "YXZZ", "MLX", "08:00", "10:10", mode="COACH", distance_m=95000)]
    assert engine.price_legs(yx_ml, fare_media="qr").total == Money(4500, "CNY")
    assert engine.price_legs(yx_ml, rider_category="senior").total == Money(4500, "CNY")
    assert engine.price_legs(yx_ml, rider_category="disabled").total == Money(2250, "CNY")
    bs_ml = [leg("yx-coach", "YX-ML", "BSX", "MLX", "09:15", "10:10", mode="COACH")]
    assert engine.price_legs(bs_ml).total == Money(2200, "CNY")
    card = engine.price_legs(yx_ml, fare_media="card")
    assert card.total is None and card.legs[0].price is None and "card" in card.legs[0].reason


def test_ferry_priced_by_operator_distance_table(engine):
    """yx-ferry has no fare files; operator_fare_tables.json: <=2000 m 200, <=5000 m 300; child 50 %."""
    ferry = [leg("yx-ferry", "F1", "JBMT", "JNMT", "10:00", "10:15", mode="FERRY", distance_m=2600)]
    q = engine.price_legs(ferry)
    assert q.total == Money(300, "CNY") and q.legs[0].source == "operator_table"
    assert engine.price_legs(ferry, rider_category="child").total == Money(150, "CNY")


def test_unknown_feed_leg_is_unpriced_never_zero(engine):
    q = engine.price_legs([leg("yx-bus", "2", "BC", "RMGC", "08:00", "08:25"),
                           leg("other-feed", "X", "A", "B", "09:00", "09:30")])
    assert q.total is None and "other-feed" in q.reason
    assert q.legs[1].price is None and q.legs[1].reason and q.legs[0].price == Money(200, "CNY")


def test_price_itinerary_and_bad_legs(engine):
    itin = {"legs": [leg("yx-bus", "2", "BC", "RMGC", "08:00", "08:25")]}
    assert engine.price_itinerary(itin).total == Money(200, "CNY")
    bad = leg("yx-bus", "2", "BC", "RMGC", "08:00", "08:25")
    bad["route_id"] = "2"  # not namespaced
    with pytest.raises(InvalidLeg) as e:
        engine.price_legs([bad])
    assert e.value.code == "invalid_fare_leg" and "namespaced" in e.value.message
    naive = leg("yx-bus", "2", "BC", "RMGC", "08:00", "08:25")
    naive["departure"] = f"{DAY}T08:00:00"
    with pytest.raises(InvalidLeg):
        engine.price_legs([naive])


_BUS2 = ["BC", "SFDX", "SZF", "YXYZ", "RMGC", "NMK", "TYZX", "BJGY"]
_L1 = ["XHGY_L1", "GHL_L1", "WHG_L1", "FQJ_L1", "RMGC_L1", "WYL_L1", "DT_L1", "QCDZ_L1"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["bus", "metro"]), st.integers(0, 7), st.integers(0, 7),
                          st.integers(1, 90)), min_size=1, max_size=4),
       st.sampled_from(["adult", "child", "senior", "disabled"]), st.sampled_from([None, "qr", "card", "cash"]))
def test_quote_invariants_on_random_journeys(engine, legs_spec, category, medium):
    """Whatever the journey: the total is the sum of the leg prices, no leg is negative or above its
    standalone price, and every agreement discount is 1 CNY on a metro/bus leg boarded <= 60 min after."""
    legs, minute = [], 6 * 60
    for kind, i, j, gap in legs_spec:
        if i == j:
            j = (j + 1) % 8
        dep, arr = minute + gap, minute + gap + 15
        minute = arr
        t = [f"{m // 60:02d}:{m % 60:02d}" for m in (dep, arr)]
        if kind == "bus":
            legs.append(leg("yx-bus", "2", _BUS2[i], _BUS2[j], *t))
        else:
            legs.append(leg("yx-metro", "L1", _L1[i], _L1[j], *t, mode="SUBWAY"))
    q = engine.price_legs(legs, rider_category=category, fare_media=medium)
    assert q.total is not None, q.reason
    assert q.total.amount == sum(lf.price.amount for lf in q.legs)
    for lf in q.legs:
        assert 0 <= lf.price.amount <= lf.standalone.amount
    for t in q.transfers:
        if t.kind == "agreement":
            assert t.saving == Money(100, "CNY")
            gap_s = (datetime.fromisoformat(legs[t.to_leg_index]["departure"])
                     - datetime.fromisoformat(legs[t.from_leg_index]["departure"])).total_seconds()
            assert gap_s <= 3600 and legs[t.from_leg_index]["feed_id"] != legs[t.to_leg_index]["feed_id"]
