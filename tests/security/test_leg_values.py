"""Issue 12, item 2: one rule decides what a leg is worth, on the offer, the ticket, refunds and clearing.

The attack: the ticket showed the fare engine's leg prices (e.g. 200/100/0/3000) while refunds were
checked against clearing's apportioned shares (184/183/183/2750): refunding the coach leg was a 422
``refund_exceeds_paid``, the first leg of a discounted bus+metro journey could not be refunded, and a
0-priced leg's operator was still credited 183. Here, on the demo city (bus + metro with the 联程
discount, coach, free bus-bus transfer; adult, child and senior travellers), every leg of every ticket
is refunded alone and together; each refund is the leg's ticket price less its fee, and the ledger and
the settlement statements agree with the tickets to the fen.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from maas.db import session_scope
from tests.ticketing_support import SHANGHAI, buy, city, demo, journey, pick, plan, resident_id, traveler  # noqa: F401


def _travellers(clock: Any) -> list[dict[str, Any]]:
    year = clock.now.year
    return [traveler("张三"), traveler("李小明", "child", id_number=resident_id(birth=f"{year - 8}0601", seq="456")),
            traveler("王奶奶", "senior", id_number=resident_id(birth="19480302", seq="222"))]


def _bus_bus_coach(client: Any, clock: Any) -> dict[str, Any]:
    its = plan(client, "yx-bus:BC", "yx-coach:QSX", clock.now + dt.timedelta(minutes=30), window_s=3600,
               max_itineraries=10, modes="BUS,COACH")
    return pick(its, ["BUS", "BUS", "COACH"])


def _buy(client: Any, h: dict[str, str], it: dict[str, Any], travellers: list[dict[str, Any]]) -> tuple[dict, dict]:
    offer, order = buy(client, h, it, travellers)
    assert client.post(order["payment"]["confirm_url"], headers=h).json()["status"] == "ticketed"
    return offer, client.get(f"/v1/orders/{order['order_id']}", headers=h).json()


def _shares(engine: Any) -> dict[str, int]:
    from clearing.models import ClearingLeg

    with session_scope(engine) as s:
        return dict(s.execute(sa.select(ClearingLeg.leg_id, ClearingLeg.share)).all())


def _expected_fee(app: Any, leg: dict[str, Any], at: dt.datetime) -> int:
    from ticketing.fares.money import scale_minor
    from maas.journeys import runtime

    pct = runtime(app).refund_rules.fee_percent(leg["operator_id"],
                                                (dt.datetime.fromisoformat(leg["departure"]) - at).total_seconds())
    assert pct is not None
    return scale_minor(leg["price"]["amount"], pct)


@pytest.mark.parametrize("shape", ["bus_metro_coach", "bus_bus_coach"])
def test_every_leg_refunds_at_its_ticket_price_and_books_agree(client, login, engine, app, demo, shape):  # noqa: ANN001
    _uid, h = login("passenger")
    it = journey(client, demo) if shape == "bus_metro_coach" else _bus_bus_coach(client, demo)
    travellers = _travellers(demo)
    offers_orders = [_buy(client, h, it, travellers) for _ in range(3)]
    shares = _shares(engine)

    # order 0: each leg alone; order 1: every leg of every ticket together; order 2: first and last together
    requests = [(0, [[leg] for t in offers_orders[0][1]["tickets"] for leg in t["legs"]]),
                (1, [[leg for t in offers_orders[1][1]["tickets"] for leg in t["legs"]]]),
                (2, [[t["legs"][0], t["legs"][-1]] for t in offers_orders[2][1]["tickets"]])]
    refunded: dict[str, tuple[str, int, int]] = {}  # leg_id -> (operator, price, fee)
    refund_total = 0
    for k, groups in requests:
        order = offers_orders[k][1]
        for legs in groups:
            r = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h,
                            json={"leg_ids": [x["leg_id"] for x in legs]})
            assert r.status_code == 201, r.text
            fees = [_expected_fee(app, x, demo.now) for x in legs]
            prices = [x["price"]["amount"] for x in legs]
            assert r.json()["fee"]["amount"] == sum(fees)
            assert r.json()["amount"]["amount"] == sum(prices) - sum(fees)
            refund_total += r.json()["amount"]["amount"]
            refunded.update({x["leg_id"]: (x["operator_id"], x["price"]["amount"], f) for x, f in zip(legs, fees)})
    assert client.get(f"/v1/orders/{offers_orders[1][1]['order_id']}", headers=h).json()["status"] == "refunded"

    # offer, ticket and clearing agree on every leg of every traveller
    for offer, order in offers_orders:
        for q, ticket in zip(offer["travelers"], order["tickets"], strict=True):
            offered = [x["price"]["amount"] for x in q["legs"]]
            assert offered == [x["price"]["amount"] for x in ticket["legs"]]
            assert offered == [shares[x["leg_id"]] for x in ticket["legs"]]
            assert sum(offered) == q["total"]["amount"]
    adult = offers_orders[0][0]["travelers"][0]["legs"]
    if shape == "bus_metro_coach":
        # the 联程 discount (100 fen) stays on the leg the fare rules put it on (the metro), not spread around
        metro = next(x for x in it["legs"] if x["mode"] == "SUBWAY")
        alone = app.state.planner.snapshot.fares.price_legs([metro], rider_category="adult").total.amount
        assert adult[1]["price"]["amount"] == alone - 100
    else:
        assert adult[1]["price"]["amount"] == 0  # the free bus-bus transfer: a 0-priced leg
    assert any(x["price"]["amount"] < y["price"]["amount"]
               for x, y in zip(offers_orders[0][0]["travelers"][1]["legs"], adult))  # the child's concession
    totals = [q["total"]["amount"] for q in offers_orders[0][0]["travelers"]]
    assert totals[2] < totals[0]  # the senior's concession

    from clearing.models import JournalLine

    with session_scope(engine) as s:
        ledger_refunds = -s.execute(sa.select(sa.func.sum(JournalLine.amount))
                                    .where(JournalLine.account_id == "platform:refunds")).scalar_one()
    assert ledger_refunds == refund_total

    # the day's settlement: every refunded leg's line is its ticket price, what went back, and the fee kept
    demo.now = dt.datetime.combine(demo.now.date() + dt.timedelta(days=1), dt.time(0, 30), SHANGHAI)
    _, admin = login("admin")
    day = (demo.now.date() - dt.timedelta(days=1)).isoformat()
    run = client.post("/v1/settlements/runs", headers=admin,
                      json={"period_start": day, "period_end": demo.now.date().isoformat()})
    assert run.status_code == 201, run.text
    assert run.json()["totals"]["refunds"] == refund_total
    for op in {v[0] for v in refunded.values()}:
        st = client.get(f"/v1/settlements/runs/{run.json()['run_id']}/statements/{op}", headers=admin).json()
        mine = {leg_id: v for leg_id, v in refunded.items() if v[0] == op}
        assert {x["leg_id"]: (x["gross"], x["refunds"], x["net"]) for x in st["lines"]} \
            == {leg_id: (price, price - fee, fee) for leg_id, (_, price, fee) in mine.items()}
        assert st["totals"]["gross"] == sum(p for _, p, _ in mine.values())
        assert st["totals"]["refunds"] == sum(p - f for _, p, f in mine.values())
        assert st["totals"]["net_payable"] == sum(f for _, _, f in mine.values())


def test_a_stored_agreement_values_the_legs_everywhere(client, login, engine, app, demo):  # noqa: ANN001
    """With an apportionment agreement in force (here: by distance), the passenger sees its split, the refund
    pays it back less the fee, and clearing books exactly that."""
    from clearing.apportionment import largest_remainder

    _, admin = login("admin")
    r = client.post("/v1/clearing/agreements", headers=admin, json={
        "agreement_id": "yx-by-distance", "method": "distance",
        "operator_ids": ["yunxi-bus", "yunxi-metro", "yunxi-coach"],
        "valid_from": (demo.now.date() - dt.timedelta(days=1)).isoformat()})
    assert r.status_code == 201, r.text
    _uid, h = login("passenger")
    it = journey(client, demo)
    offer, order = _buy(client, h, it, [traveler("张三")])
    legs = order["tickets"][0]["legs"]
    distances = [x["distance_m"] for x in it["legs"] if x["mode"] != "WALK"]
    values = largest_remainder(offer["total"]["amount"], distances)
    assert [x["price"]["amount"] for x in offer["travelers"][0]["legs"]] == values
    assert [x["price"]["amount"] for x in legs] == values
    shares = _shares(engine)
    assert [shares[x["leg_id"]] for x in legs] == values
    for leg in legs:  # each leg alone: never more than its value, never refused
        r = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=h, json={"leg_ids": [leg["leg_id"]]})
        assert r.status_code == 201, r.text
        fee = _expected_fee(app, leg, demo.now)
        assert (r.json()["amount"]["amount"], r.json()["fee"]["amount"]) == (leg["price"]["amount"] - fee, fee)
    from clearing.models import ClearingLeg

    with session_scope(engine) as s:
        assert {s.get(ClearingLeg, x["leg_id"]).agreement_id for x in legs} == {"yx-by-distance"}
