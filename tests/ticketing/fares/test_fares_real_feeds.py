"""The fare engine on real published fare data (see /work/shared/data/README.md).

Each test derives the expected price by hand from the feed's own rows (quoted
in the docstring, with line numbers where it helps) and checks that the engine
reproduces it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ticketing.fares import FareEngine, Money


def leg(feed: str, route: str, a: str, b: str, dep: str, arr: str, *, mode: str = "BUS", via=()) -> dict:
    return {"mode": mode, "feed_id": feed, "route_id": f"{feed}:{route}", "from": {"stop_id": f"{feed}:{a}"},
            "to": {"stop_id": f"{feed}:{b}"}, "departure": dep, "arrival": arr, "distance_m": 1000,
            "intermediate_stops": [{"stop_id": f"{feed}:{s}"} for s in via]}


# --------------------------------------------------------------------------- Transcollines (zones, priority)


@pytest.fixture(scope="module")
def transcollines(shared_data: Path) -> FareEngine:
    return FareEngine.from_feeds([("tc", shared_data / "transcollines-fares-v2" / "transcollines-qc-ca-fares.zip")])


def test_transcollines_pontiac_to_gatineau_is_20_cad(transcollines):
    """Trip 20260105-Semaine-01-910-0-0517 (route 910, network REG) boards F134-01 and alights F912-51.

    stop_areas: F134-01 -> PNT, F912-51 -> GAT. timeframes GT-2026 = service FARES-GT-2026-1 (every day
    2026-01-05..2026-08-23, whole day). fare_leg_rules line 8: REG-PNT-GAT, REG, PNT, GAT, GT-2026 -> PS-2000;
    fare_products PS-2000 = 20.00 CAD = 2000 cents (no medium, no rider category: every rider).
    """
    q = transcollines.price_legs([leg("tc", "910", "F134-01", "F912-51", "2026-03-04T05:17:00-05:00",
                                      "2026-03-04T07:31:00-05:00")])
    assert q.total == Money(2000, "CAD")
    assert q.legs[0].fare_product_id == "tc:PS-2000" and q.legs[0].leg_group_id == "tc:REG-PNT-GAT"
    assert transcollines.price_legs([leg("tc", "910", "F134-01", "F912-51", "2026-03-04T05:17:00-05:00",
                                         "2026-03-04T07:31:00-05:00")], rider_category="senior").total == \
        Money(2000, "CAD")


def test_transcollines_collines_to_gatineau_is_5_cad(transcollines):
    """Same trip, F101-13 (COL) -> L910-01 (GAT): fare_leg_rules line 5 REG-COL-GAT -> PS-500 = 5.00 CAD."""
    q = transcollines.price_legs([leg("tc", "910", "F101-13", "L910-01", "2026-03-04T06:56:00-05:00",
                                      "2026-03-04T06:59:00-05:00")])
    assert q.total == Money(500, "CAD")


def test_transcollines_outside_fare_timeframe_is_unpriced(transcollines):
    """Every rule needs from_timeframe_group_id GT-2026, whose service ends 2026-08-23: on 2026-09-02 no rule
    matches, so the leg has no price and a reason (not 0)."""
    q = transcollines.price_legs([leg("tc", "910", "F134-01", "F912-51", "2026-09-02T05:17:00-04:00",
                                      "2026-09-02T07:31:00-04:00")])
    assert q.total is None and q.legs[0].price is None and "fare_leg_rules" in q.legs[0].reason


# --------------------------------------------------------------------------- Zakroczym (rider categories)


@pytest.fixture(scope="module")
def zakroczym(shared_data: Path) -> FareEngine:
    return FareEngine.from_feeds([("zk", shared_data / "zakroczym-fares-v2" / "zakroczym.zip")],
                                 category_aliases={"zk": {"adult": "0", "child": "2", "senior": "3"}})


def test_zakroczym_zone_pair_single_rides(zakroczym):
    """Route Z1 trip 10-1. stop_areas: 113 (Zakroczym Urząd Miejski) -> 1, 117-2 (Modlin) -> 2, 125 (NDM) -> 3.

    fare_leg_rules (no rule_priority column): 1->2 flr_12 -> single_ride_zones12_normal 4.00 PLN (medium 0,
    category 0); 1->3 flr_13 -> single_ride_zones13_normal 5.00; 1->1 flr_1 -> single_ride_zone1_normal 0.00
    (free inside the gmina: a real 0, not unknown).
    """
    d = "2026-03-04T04:{}:00+01:00"
    assert zakroczym.price_legs([leg("zk", "Z1", "113", "117-2", d.format(31), d.format(39))]).total == \
        Money(400, "PLN")
    assert zakroczym.price_legs([leg("zk", "Z1", "113", "125", d.format(31), d.format(56))]).total == \
        Money(500, "PLN")
    q = zakroczym.price_legs([leg("zk", "Z1", "100", "113", "2026-03-04T04:05:00+01:00", d.format(31))])
    assert q.total == Money(0, "PLN") and q.reason is None and q.legs[0].fare_media_id == "0"


def test_zakroczym_default_category_and_concession_without_single_ticket(zakroczym):
    """rider_categories: 0 'Bilet normalny' is_default_fare_category=1; 3 = seniors. Single-ride products
    exist only for category 0 (fare_products rows 2-7); seniors have only monthly_discount (not a leg fare),
    so a senior's single ride is unpriced with a reason naming the category."""
    legs = [leg("zk", "Z1", "113", "117-2", "2026-03-04T04:31:00+01:00", "2026-03-04T04:39:00+01:00")]
    adult = zakroczym.price_legs(legs)
    assert adult.total == Money(400, "PLN") and adult.legs[0].rider_category_id == "0"
    senior = zakroczym.price_legs(legs, rider_category="senior")
    assert senior.total is None and "senior" in senior.legs[0].reason


# --------------------------------------------------------------------------- MBTA (rich v2, no trips)


@pytest.fixture(scope="module")
def mbta(shared_data: Path) -> FareEngine:
    return FareEngine.from_feeds([("mbta", shared_data / "mbta-fares-v2" / "mbta_fares_v2_partial.zip")])


D = "2024-10-09T{}-04:00"


def test_mbta_local_bus_fare_by_medium(mbta):
    """Route 1 (network local_bus), stop 110 -> 101 (no stop_areas). No rule_priority column, so empty
    from/to areas match because neither stop is in a listed area. Matching rules: leg_local_bus_cash
    (local_bus,,,) -> prod_local_bus (cash 1.70 USD) and leg_local_bus_quick_subway (local_bus,,,) ->
    prod_rapid_transit_quick_subway (charlieticket 2.40). Rules naming to_area area_route_354_* do not match.
    cash -> 170; charlieticket -> 240; credit_debit has no product -> unpriced; any medium -> cheapest 170."""
    legs = [leg("mbta", "1", "110", "101", D.format("08:00:00"), D.format("08:20:00"))]
    assert mbta.price_legs(legs, fare_media="cash").total == Money(170, "USD")
    assert mbta.price_legs(legs, fare_media="charlieticket").total == Money(240, "USD")
    assert mbta.price_legs(legs, fare_media="credit_debit").total is None
    best = mbta.price_legs(legs)
    assert best.total == Money(170, "USD") and best.fare_media_id == "cash"


def test_mbta_subway_timeframe_and_area_exclusion(mbta):
    """Red Line (network rapid_transit). Harvard platform 70068 -> Park St 70075, no areas: rule
    leg_rapid_transit_quick_subway (rapid_transit,,,timeframe_regular) -> 2.40 charlieticket; the cash rules
    for rapid_transit are transfer_only=1 and do not price a first leg.
    On 2025-01-15 timeframe_regular (service fare_regular, 2024-09-20..2024-12-14) is inactive: unpriced.
    From South Station 70079 (stop_areas: area_red_south_station) the empty-area rule is excluded (its area
    is listed) and leg_ss_rapid_transit_quick_subway (no timeframe) applies, so it is 2.40 even in 2025."""
    harvard = [leg("mbta", "Red", "70068", "70075", D.format("09:00:00"), D.format("09:15:00"), mode="SUBWAY")]
    q = mbta.price_legs(harvard)
    assert q.total == Money(240, "USD") and q.legs[0].leg_group_id == "mbta:leg_rapid_transit_quick_subway"
    late = [leg("mbta", "Red", "70068", "70075", "2025-01-15T09:00:00-05:00", "2025-01-15T09:15:00-05:00",
                mode="SUBWAY")]
    assert mbta.price_legs(late).total is None
    ss = [leg("mbta", "Red", "70079", "70075", "2025-01-15T09:00:00-05:00", "2025-01-15T09:05:00-05:00",
              mode="SUBWAY")]
    q = mbta.price_legs(ss)
    assert q.total == Money(240, "USD") and q.legs[0].leg_group_id == "mbta:leg_ss_rapid_transit_quick_subway"


def test_mbta_subway_to_bus_free_transfer_within_two_hours(mbta):
    """fare_transfer_rules: leg_rapid_transit_quick_subway -> leg_local_bus_quick_subway, duration_limit 7200,
    duration_limit_type 1 (departure -> departure), fare_transfer_type 0 (A + AB), no fare_product_id (AB = 0),
    filter_fare_product_id prod_rapid_transit_quick_subway. Subway 240 + bus 0 = 240 with a CharlieTicket.
    Bus boarded 2 h 1 min after the subway departed: 240 + 240 = 480."""
    subway = leg("mbta", "Red", "70068", "70075", D.format("09:00:00"), D.format("09:15:00"), mode="SUBWAY")
    bus = leg("mbta", "1", "110", "101", D.format("09:30:00"), D.format("09:50:00"))
    q = mbta.price_legs([subway, bus], fare_media="charlieticket")
    assert q.total == Money(240, "USD") and [lf.price.amount for lf in q.legs] == [240, 0]
    (t,) = q.transfers
    assert t.kind == "fare_transfer_rule" and t.saving == Money(240, "USD")
    late_bus = leg("mbta", "1", "110", "101", D.format("11:01:00"), D.format("11:20:00"))
    assert mbta.price_legs([subway, late_bus], fare_media="charlieticket").total == Money(480, "USD")


def test_mbta_reads_every_rule_and_reports_missing_timeframe_groups(mbta):
    """677 leg rules and 37 transfer rules load; 185 rules name timeframe_systemwide_free, absent from
    timeframes.txt: kept (never matching) and reported as warnings."""
    ff = mbta.pricers["mbta"].ff
    assert len(ff.leg_rules) == 677 and len(ff.transfer_rules) == 37
    assert ff.warnings and "timeframe_systemwide_free" in ff.warnings[0]


# --------------------------------------------------------------------------- Caltrain (Fares v1 zones)


@pytest.fixture(scope="module")
def caltrain(shared_data: Path) -> FareEngine:
    return FareEngine.from_feeds([("ct", shared_data / "caltrain-rt" / "caltrain.zip")])


C = "2023-11-07T{}-08:00"


def test_caltrain_v1_zone_fares(caltrain):
    """stops.txt zone_id: 70012 San Francisco -> 71825 (Zone 1), 70172 Palo Alto -> 71824 (Zone 3),
    70062 Millbrae -> 71826 (Zone 2). fare_rules: (71825, 71824) -> 277905 = 8.25 USD;
    (71825, 71826) -> 277904 = 6.00; (71825, 71825) -> 277903 = 3.75 (fare_attributes.txt)."""
    sf_pa = caltrain.price_legs([leg("ct", "L1", "70012", "70172", C.format("08:00:00"), C.format("09:00:00"),
                                     mode="RAIL")])
    assert sf_pa.total == Money(825, "USD") and sf_pa.legs[0].source == "fares_v1"
    assert sf_pa.legs[0].fare_product_id == "ct:277905"
    assert caltrain.price_legs([leg("ct", "L1", "70012", "70062", C.format("08:00:00"), C.format("08:25:00"),
                                    mode="RAIL")]).total == Money(600, "USD")
    assert caltrain.price_legs([leg("ct", "L1", "70012", "70022", C.format("08:00:00"), C.format("08:05:00"),
                                    mode="RAIL")]).total == Money(375, "USD")


def test_caltrain_v1_transfer_within_duration_is_one_fare(caltrain):
    """SF (Z1) -> Millbrae (Z2) then Millbrae -> Palo Alto (Z3). fare_attributes: transfers empty (unlimited),
    transfer_duration 14400 s. Within 4 h the two rides can be one fare Z1->Z3 = 277905 8.25, cheaper than
    6.00 + (71826, 71824) -> 277904 6.00 = 12.00. Second ride 4 h 1 min after the first: 12.00."""
    a = leg("ct", "L1", "70012", "70062", C.format("08:00:00"), C.format("08:25:00"), mode="RAIL")
    b = leg("ct", "L5", "70061", "70172", C.format("08:40:00"), C.format("09:00:00"), mode="RAIL")
    q = caltrain.price_legs([a, b])
    assert q.total == Money(825, "USD") and q.legs[0].effective_leg == q.legs[1].effective_leg
    late = leg("ct", "L5", "70061", "70172", C.format("12:01:00"), C.format("12:20:00"), mode="RAIL")
    assert caltrain.price_legs([a, late]).total == Money(1200, "USD")
