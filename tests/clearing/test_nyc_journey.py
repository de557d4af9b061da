"""A real multi-operator journey from the NYC feeds: MTA Bus Company + NYCT subway + LIRR, split by distance."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import zipfile

from clearing import settlement
from clearing.agreements import create_agreement
from clearing.apportionment import Agreement, Method
from clearing.interface import SaleLeg, SaleRecord, UseRecord, record_sale, record_use

NY = dt.timezone(dt.timedelta(hours=-5))
# (feed zip, operator, from stop_id, to stop_id): Jamaica Av bus -> F train to Sutphin Blvd -> LIRR to Penn Station.
JOURNEY = [("bus_mta_bus_company.zip", "mta-bus", "501939", "501930"),
           ("subway.zip", "nyct-subway", "F01", "F04"),
           ("lirr.zip", "lirr", "102", "237")]


def _stops(path) -> dict[str, tuple[float, float]]:  # noqa: ANN001
    with zipfile.ZipFile(path) as z, z.open("stops.txt") as f:
        rows = csv.DictReader(io.TextIOWrapper(f, encoding="utf-8-sig"))
        return {r["stop_id"].strip(): (float(r["stop_lat"]), float(r["stop_lon"])) for r in rows}


def _metres(a: tuple[float, float], b: tuple[float, float]) -> int:
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return round(2 * 6_371_000 * math.asin(math.sqrt(h)))


def test_nyc_through_ticket_is_split_by_real_distances(session, shared_data) -> None:  # noqa: ANN001
    day = dt.date(2026, 10, 15)  # inside all three feeds' service ranges
    legs = []
    for n, (feed, operator, a, b) in enumerate(JOURNEY):
        stops = _stops(shared_data / "nyc-mta" / feed)
        legs.append(SaleLeg(f"nyc-L{n}", operator, day, _metres(stops[a], stops[b]), None))
    assert all(leg.distance_m and leg.distance_m > 1_000 for leg in legs)
    create_agreement(session, Agreement("nyc-distance", Method.distance,
                                        operator_ids=frozenset({"mta-bus", "nyct-subway", "lirr"}),
                                        valid_from=dt.date(2026, 1, 1)))
    paid = 1_365  # USD cents
    sold = dt.datetime.combine(day, dt.time(7), tzinfo=NY)
    record_sale(session, SaleRecord("nyc-T1", "nyc-O1", "USD", paid, sold, tuple(legs)))
    for leg in legs:
        record_use(session, UseRecord(leg.leg_id, "nyc-T1", leg.operator_id, sold + dt.timedelta(minutes=30), None))
    run, _ = settlement.run_settlement(session, period_start=day, period_end=day + dt.timedelta(days=1),
                                       currency="USD")
    ops = {o.operator_id: o for o in settlement.run_operators(session, run.run_id)}
    assert run.gross == paid and run.currency == "USD"
    total_m = sum(leg.distance_m for leg in legs)
    for leg in legs:  # each operator's part is its distance share, within one cent
        assert abs(ops[leg.operator_id].gross - paid * leg.distance_m / total_m) < 1
    assert ops["lirr"].gross > ops["mta-bus"].gross  # Jamaica -> Penn is the long leg
    assert settlement.recompute_digest(session, run.run_id) == run.digest
