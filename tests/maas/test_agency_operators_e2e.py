"""One feed, many operators (issue 13 item 10), end to end: import, plan, offer, order, clearing, statements,
coverage and the CLI override.

The feed is constructed (no feed in ``../shared/data`` has several agencies with trips): agency BUS runs
A -> B, agency TRAM runs B -> C, each with a GTFS Fares v1 fare (2 and 3 CNY). A through ticket A -> C
must pay two operators, although both legs come from ONE feed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from maas.cli import main
from maas.db import session_scope
from maas.feeds import agency_operator_map, default_agency_operator_id, import_feed
from maas.models import FeedRecord, Operator
from tests.ticketing_support import SHANGHAI, Clock, buy, gate_headers, load_feeds, plan

BUS, TRAM = "city.BUS", "city.TRAM"  # the default operators of the two agencies of feed "city"


def write_two_agency_feed(folder: Path, first: dt.date) -> Path:
    """The two-agency feed, running every day from ``first`` for 60 days."""
    last = first + dt.timedelta(days=60)
    tables = {
        "agency": ["agency_id,agency_name,agency_url,agency_timezone",
                   "BUS,Bus Co,https://bus.example,Asia/Shanghai", "TRAM,Tram Co,https://tram.example,Asia/Shanghai"],
        "stops": ["stop_id,stop_name,stop_lat,stop_lon", "A,Alpha,31.200,121.400", "B,Beta,31.200,121.420",
                  "C,Gamma,31.200,121.440"],
        "routes": ["route_id,agency_id,route_short_name,route_type", "R1,BUS,1,3", "R2,TRAM,T,0"],
        "trips": ["route_id,service_id,trip_id", "R1,WK,T1", "R2,WK,T2"],
        "stop_times": ["trip_id,arrival_time,departure_time,stop_id,stop_sequence",
                       "T1,08:00:00,08:00:00,A,1", "T1,08:10:00,08:10:00,B,2",
                       "T2,08:15:00,08:15:00,B,1", "T2,08:25:00,08:25:00,C,2"],
        "calendar": ["service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date",
                     f"WK,1,1,1,1,1,1,1,{first:%Y%m%d},{last:%Y%m%d}"],
        "fare_attributes": ["fare_id,price,currency_type,payment_method,transfers,agency_id",
                            "BUSFARE,2.00,CNY,0,0,BUS", "TRAMFARE,3.00,CNY,0,0,TRAM"],
        "fare_rules": ["fare_id,route_id", "BUSFARE,R1", "TRAMFARE,R2"],
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        (folder / f"{name}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def city(app, engine, tmp_path: Path) -> Clock:  # noqa: ANN001
    """The feed imported with the default mapping; the app's clock at 07:30 tomorrow (Shanghai)."""
    day = dt.date.today() + dt.timedelta(days=1)
    feed = write_two_agency_feed(tmp_path / "city", dt.date.today() - dt.timedelta(days=7))
    load_feeds(app, engine, [(feed, "city", None)], tmp_path / "timetables")
    clock = Clock(dt.datetime.combine(day, dt.time(7, 30), SHANGHAI))
    app.state.clock = clock
    return clock


def _through_itinerary(client: Any, clock: Clock) -> dict[str, Any]:
    its = plan(client, "city:A", "city:C", clock.now + dt.timedelta(minutes=20))
    it = next(i for i in its if [leg.get("route_id") for leg in i["legs"] if leg["mode"] != "WALK"]
              == ["city:R1", "city:R2"])
    return it


def test_default_mapping_one_operator_per_agency(engine, city) -> None:  # noqa: ANN001
    with session_scope(engine) as s:
        record = s.get(FeedRecord, "city")
        assert record.operator_id == "city" and record.agency_operators == {"BUS": BUS, "TRAM": TRAM}
        names = dict(s.execute(sa.select(Operator.operator_id, Operator.name)).all())
    assert names[BUS] == "Bus Co" and names[TRAM] == "Tram Co" and "city" in names


def test_journey_over_two_agencies_of_one_feed_pays_two_operators(client, login, engine, city) -> None:  # noqa: ANN001
    from clearing.models import ClearingLeg

    it = _through_itinerary(client, city)
    legs = [leg for leg in it["legs"] if leg["mode"] != "WALK"]
    assert [(leg["feed_id"], leg["operator_id"], leg["agency"]) for leg in legs] == [
        ("city", BUS, {"agency_id": "BUS", "name": "Bus Co"}), ("city", TRAM, {"agency_id": "TRAM", "name": "Tram Co"})]

    _uid, h = login("passenger")
    offer, order = buy(client, h, it, [{"name": "张三", "id_type": "passport", "id_number": "E12345678",
                                        "rider_category": "adult"}])
    assert [(leg["operator_id"], leg["price"]["amount"]) for leg in offer["legs"]] == [(BUS, 200), (TRAM, 300)]
    assert client.post(order["payment"]["confirm_url"], headers=h).json()["status"] == "ticketed"
    with session_scope(engine) as s:
        shares = sorted(s.execute(sa.select(ClearingLeg.operator_id, ClearingLeg.share)).all())
    assert shares == [(BUS, 200), (TRAM, 300)]

    # each agency's operator validates its own leg (and not the other's) at its gates
    (ticket,) = client.get(f"/v1/orders/{order['order_id']}", headers=h).json()["tickets"]
    gates = {op: gate_headers(engine, op) for op in (BUS, TRAM)}  # roaming gates, so both may try each stop
    for op, stop, at, leg in ((BUS, "city:A", dt.time(7, 58), ticket["legs"][0]),
                              (TRAM, "city:B", dt.time(8, 12), ticket["legs"][1])):
        city.now = dt.datetime.combine(city.now.date(), at, SHANGHAI)
        payload = client.get(f"/v1/tickets/{ticket['ticket_id']}/qr", headers=h).json()["payload"]
        other = TRAM if op == BUS else BUS
        wrong = client.post("/v1/gates/validate", headers=gates[other][1],
                            json={"gate_id": gates[other][0], "stop_id": stop, "payload": payload}).json()
        assert wrong["result"] == "rejected" and wrong["leg_id"] is None, wrong  # no leg of its operator here
        ok = client.post("/v1/gates/validate", headers=gates[op][1],
                         json={"gate_id": gates[op][0], "stop_id": stop, "payload": payload}).json()
        assert (ok["result"], ok["leg_id"]) == ("accepted", leg["leg_id"]), ok

    # the period of the sale closes: one settlement run, two operators, each with its agency on the statement
    day = city.now.date()
    city.advance(days=2)
    _, admin = login("admin")
    r = client.post("/v1/settlements/runs", headers=admin,
                    json={"period_start": day.isoformat(), "period_end": (day + dt.timedelta(days=1)).isoformat(),
                          "currency": "CNY"})
    assert r.status_code == 201, r.text
    run = r.json()
    assert {o["operator_id"]: o["gross"] for o in run["operators"]} == {BUS: 200, TRAM: 300}
    st = client.get(f"/v1/settlements/runs/{run['run_id']}/statements/{TRAM}", headers=admin)
    assert st.status_code == 200, st.text
    assert st.json()["agencies"] == [{"feed_id": "city", "agency_id": "TRAM", "name": "Tram Co"}]
    assert [line["gross"] for line in st.json()["lines"]] == [300]


def test_coverage_shows_the_operator_of_each_agency(client, login, city) -> None:  # noqa: ANN001
    _, regulator = login("regulator")
    r = client.get("/v1/audit/coverage", headers=regulator, params={"date": city.now.date().isoformat()})
    assert r.status_code == 200, r.text
    body = r.json()
    ops = {o["operator_id"]: o for o in body["operators"]}
    assert set(ops) == {BUS, TRAM}  # the feed's own operator runs no route
    assert ops[TRAM]["agencies"] == [{"feed_id": "city", "agency_id": "TRAM", "name": "Tram Co"}]
    assert (ops[BUS]["trips"], ops[TRAM]["trips"]) == (1, 1)
    # B is served by both: its station belongs to the top mode's route (tram before bus)
    assert (ops[BUS]["stations"], ops[TRAM]["stations"]) == (1, 2)
    (stats,) = body["feed_stats"]
    assert stats["operator_id"] == "city"
    assert stats["agencies"] == [
        {"agency_id": "BUS", "name": "Bus Co", "operator_id": BUS, "routes": 1, "trips_on_day": 1},
        {"agency_id": "TRAM", "name": "Tram Co", "operator_id": TRAM, "routes": 1, "trips_on_day": 1}]
    # an operator's own view keeps the feed statistics of the feed its agency is in
    mine = client.get("/v1/audit/coverage", headers=regulator, params={"operator_id": TRAM}).json()
    assert [o["operator_id"] for o in mine["operators"]] == [TRAM] and len(mine["feed_stats"]) == 1


def test_cli_override_is_stored_and_kept_on_reimport(cli_env, capsys, tmp_path: Path) -> None:  # noqa: ANN001
    feed = write_two_agency_feed(tmp_path / "feed", dt.date(2025, 1, 1))
    argv = ["feeds", "import", str(feed), "--feed-id", "city", "--agency-operator", "TRAM=tramco"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"agency BUS -> operator {BUS}" in out and "agency TRAM -> operator tramco" in out
    # a new version of the feed imported without the flag keeps the override (revenue does not move silently)
    assert main(argv[:5]) == 0
    assert "agency TRAM -> operator tramco" in capsys.readouterr().out
    assert main([*argv[:5], "--agency-operator", "TRAM=tram2", "--agency-operator", "BUS=bus2"]) == 0
    out = capsys.readouterr().out
    assert "agency BUS -> operator bus2" in out and "agency TRAM -> operator tram2" in out

    assert main([*argv[:5], "--agency-operator", "NOPE=x"]) == 1
    assert "has no agency 'NOPE'" in capsys.readouterr().err
    assert main([*argv[:5], "--agency-operator", "TRAM"]) == 1
    assert "AGENCY_ID=OPERATOR_ID" in capsys.readouterr().err


def test_one_agency_feed_keeps_todays_behaviour(session, tmp_path: Path) -> None:  # noqa: ANN001
    feed = write_two_agency_feed(tmp_path / "solo", dt.date(2025, 1, 1))
    (feed / "agency.txt").write_text("agency_id,agency_name,agency_url,agency_timezone\n"
                                     "BUS,Bus Co,https://bus.example,Asia/Shanghai\n", encoding="utf-8")
    (feed / "routes.txt").write_text("route_id,agency_id,route_short_name,route_type\nR1,BUS,1,3\nR2,BUS,T,0\n",
                                     encoding="utf-8")
    record, report = import_feed(session, path=feed, feed_id="solo", operator_id="solo_op")
    assert record.operator_id == "solo_op" and record.agency_operators == {}
    assert report.agencies == [{"agency_id": "BUS", "name": "Bus Co"}]


def test_default_operator_ids_are_valid_and_distinct() -> None:
    from maas.accounts import OPERATOR_ID_RE

    ids = ["BUS", "A B", "A-B", "métro", "x" * 80, "y" * 80, ""]
    ops = [default_agency_operator_id("f" * 60, a) for a in ids] + [default_agency_operator_id("nyc", "MTA NYCT")]
    assert all(OPERATOR_ID_RE.match(o) and len(o) <= 64 for o in ops)
    assert len(set(ops)) == len(ops)
    assert default_agency_operator_id("nyc", "MTABC") == "nyc.MTABC"
    assert agency_operator_map("f", [{"agency_id": "X", "name": "x"}]) == {}
    assert agency_operator_map("f", [{"agency_id": "X", "name": "x"}, {"agency_id": "Y", "name": "y"}],
                               stored={"X": "kept", "Z": "gone"}) == {"X": "kept", "Y": "f.Y"}
