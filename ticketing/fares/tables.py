"""Compile a `FareEngine` into the plain arrays of the fare-aware routing kernel (`routing.fares.FareTables`).

``fare_tables_for(engine, timetable, rider_category=..., fare_media=..., at=...)``
evaluates the engine's own rule matching (`LegRuleIndex.match`,
`_FeedPricer.product_price`, the transfer-rule and agreement selection of
`FareEngine._price`) for every (fare network, from area set, to area set) and
every pair of leg groups, so the kernel prices a journey as the engine does.

Covered:

* Fares v2 leg rules (networks from ``routes.network_id`` / ``route_networks.txt``,
  areas from ``stop_areas.txt`` with the station rule, empty-field and
  ``rule_priority`` semantics, rider category, fare medium), with the
  timeframes active at ``at`` (the query's departure) on both ends of a leg;
* ``fare_leg_join_rules.txt`` without stop conditions (network -> network);
* ``fare_transfer_rules.txt`` of ``fare_transfer_type`` 0 and 1 with
  ``duration_limit`` / ``duration_limit_type`` and ``transfer_count``;
* interoperator agreements (联程优惠) between leg groups of different feeds,
  rider categories and fare media included;
* operator fare tables of kind ``distance_bands`` (legs priced by the
  distance along the pattern, rider-category percentages applied).

Not covered (listed in ``FareTables.notes`` when the data uses them; the
displayed fare is always re-priced by the full engine, so only the *search*
can miss a cheaper journey): Fares v1 feeds and operator ``od`` tables
(their rides are unpriced for the kernel), ``fare_transfer_type`` 2,
``filter_fare_product_id``, join rules with stops, MBTA ``transfer_only``
leg rules, timeframes that change during the journey, and choosing the
fare medium per journey (the tables use one medium: by default the one most
feeds accept).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import numpy as np

from routing.fares import NET_AREAS, NET_BANDS, XFER_DISCOUNT, XFER_FEE_PLUS, XFER_REPLACE, FareTables
from routing.timetable import Timetable
from ticketing.fares.config import Agreement
from ticketing.fares.engine import DEFAULT_RIDER_CATEGORY, FareEngine, _FeedPricer
from ticketing.fares.money import scale_minor

__all__ = ["default_fare_media", "fare_tables_for"]


def default_fare_media(engine: FareEngine) -> str | None:
    """The fare medium most feeds accept; ties go to the medium more transfer discounts accept, then by name.

    ``None`` when no feed names fare media. (The engine itself tries every
    medium per journey and keeps the cheapest; the search needs one.)
    """
    counts = Counter(m for p in engine.pricers.values() for m in p.media)
    if not counts:
        return None
    perks: Counter[str] = Counter()
    for p in engine.pricers.values():
        for r in p.ff.transfer_rules:
            for row in p.ff.fare_products.get(r.fare_product_id or "", ()):
                if row.fare_media_id is not None:
                    perks[row.fare_media_id] += 1
    for ag in engine.agreements:
        for m in ag.fare_media_ids or ():
            perks[m] += 1
    return sorted(counts, key=lambda m: (-counts[m], -perks[m], m))[0]


def _raw(namespaced: str, feed_id: str) -> str:
    prefix = feed_id + ":"
    return namespaced[len(prefix):] if namespaced.startswith(prefix) else namespaced


def fare_tables_for(engine: FareEngine, tt: Timetable, *, rider_category: str = DEFAULT_RIDER_CATEGORY,
                    fare_media: str | None = None, at: datetime | None = None) -> FareTables:
    """Fare tables of ``engine`` over the routes and stops of ``tt`` (see the module docstring).

    ``fare_media``: the medium every leg is paid with (default:
    :func:`default_fare_media`). ``at``: timezone-aware instant whose active
    timeframes apply (``None``: no timeframe is active).
    """
    medium = fare_media if fare_media is not None else default_fare_media(engine)
    notes: list[str] = []
    feed_ids = tt.feed_ids.tolist()
    tf_by_feed: dict[str, frozenset[str]] = {}
    for fid in feed_ids:
        p = engine.pricers.get(fid)
        tf_by_feed[fid] = p.timeframes_at(at) if (p is not None and at is not None and p.ff.has_v2) else frozenset()

    # ---- networks per route
    net_keys: list[tuple[str, str | None, int]] = []  # (feed_id, network id | "__table__", kind)
    net_index: dict[tuple[str, str | None], int] = {}
    route_network = np.full(tt.route_ids.shape[0], -1, dtype=np.int32)
    noted: set[str] = set()
    for r, (rid, f) in enumerate(zip(tt.route_ids.tolist(), tt.route_feed.tolist())):
        fid = feed_ids[f]
        p = engine.pricers.get(fid)
        if p is None or p.source is None:
            continue
        raw = _raw(rid, fid)
        if p.source == "fares_v2":
            key: tuple[str, str | None] = (fid, p.ff.route_network.get(raw))
            kind = NET_AREAS
        elif p.source == "operator_table" and p.table is not None and p.table.kind == "distance_bands":
            if p.table.route_ids is not None and raw not in p.table.route_ids:
                continue
            key, kind = (fid, "__table__"), NET_BANDS
        else:
            if fid not in noted:
                noted.add(fid)
                notes.append(f"{fid}: {p.source} ({p.table.kind if p.table else ''}) is not in the kernel tables; "
                             "its rides count as unpriced during the search")
            continue
        if key not in net_index:
            net_index[key] = len(net_keys)
            net_keys.append((key[0], key[1], kind))
        route_network[r] = net_index[key]
    N = len(net_keys)

    # ---- area sets per stop
    set_index: dict[frozenset[str], int] = {frozenset(): 0}
    stop_area = np.zeros(tt.n_stops, dtype=np.int32)
    feed_sets: dict[str, set[int]] = {}
    for s, (sid, f) in enumerate(zip(tt.stop_ids.tolist(), tt.stop_feed.tolist())):
        fid = feed_ids[f]
        p = engine.pricers.get(fid)
        areas = p.ff.areas_of(_raw(sid, fid)) if p is not None and p.ff.has_v2 else frozenset()
        idx = set_index.setdefault(areas, len(set_index))
        stop_area[s] = idx
        feed_sets.setdefault(fid, set()).add(idx)
    sets = list(set_index)
    A = len(sets)

    # ---- leg prices and groups
    group_index: dict[str, int] = {}
    currencies: Counter[str] = Counter()
    price_cur: dict[tuple[int, int, int], tuple[int, str, str | None]] = {}
    for n, (fid, network_id, kind) in enumerate(net_keys):
        if kind != NET_AREAS:
            continue
        p = engine.pricers[fid]
        assert p.index is not None
        if any(r.transfer_only for r in p.ff.leg_rules) and f"{fid}:transfer_only" not in noted:
            noted.add(f"{fid}:transfer_only")
            notes.append(f"{fid}: transfer_only leg rules are priced as first legs")
        category = p.feed_category(rider_category)
        tf = tf_by_feed[fid]
        for fa in feed_sets.get(fid, ()):
            for ta in feed_sets.get(fid, ()):
                rules = p.index.match(network_id, sets[fa], sets[ta], tf, tf, after_transfer=False)
                best = None
                for rule in rules:
                    row = p.product_price(rule.fare_product_id, category, medium)
                    if row is not None and (best is None or row.price.amount < best[0].price.amount):
                        best = (row, rule)
                if best is None:
                    continue
                row, rule = best
                group = f"{fid}:{rule.leg_group_id}" if rule.leg_group_id else None
                price_cur[(n, fa, ta)] = (row.price.amount, row.price.currency, group)
                currencies[row.price.currency] += 1
    bands: dict[int, list[tuple[float, int]]] = {}
    for n, (fid, _nid, kind) in enumerate(net_keys):
        if kind != NET_BANDS:
            continue
        table = engine.pricers[fid].table
        assert table is not None
        currencies[table.currency] += 1
        sold = table.rider_percent is None or rider_category in table.rider_percent
        bands[n] = [(float("inf") if up is None else float(up),
                     (scale_minor(amount, table.rider_percent[rider_category]) if table.rider_percent is not None
                      else amount) if sold else -1)
                    for up, amount in table.bands]
    currency = currencies.most_common(1)[0][0] if currencies else "XXX"
    if len(currencies) > 1:
        notes.append(f"several currencies ({', '.join(sorted(currencies))}): only {currency} fares are in the tables")

    leg_price = np.full((N, A, A), -1, dtype=np.int64)
    leg_group = np.full((N, A, A), -1, dtype=np.int32)
    for (n, fa, ta), (amount, cur, group) in price_cur.items():
        if cur != currency:
            continue
        leg_price[n, fa, ta] = amount
        if group is not None:
            leg_group[n, fa, ta] = group_index.setdefault(group, len(group_index))
    network_kind = np.array([k for _f, _n, k in net_keys], dtype=np.int8)
    network_feed = np.array([feed_ids.index(f) for f, _n, _k in net_keys], dtype=np.int32)
    network_group = np.full(N, -1, dtype=np.int32)
    band_offsets = [0]
    band_up: list[float] = []
    band_price: list[int] = []
    for n in range(N):
        if n in bands and engine.pricers[net_keys[n][0]].table.currency == currency:  # type: ignore[union-attr]
            network_group[n] = group_index.setdefault(f"{net_keys[n][0]}:operator_table", len(group_index))
            for up, amount in bands[n]:
                band_up.append(up)
                band_price.append(amount)
        band_offsets.append(len(band_up))

    # ---- joins
    join = np.zeros((N, N), dtype=bool)
    for a, (fa_id, na, ka) in enumerate(net_keys):
        if ka != NET_AREAS:
            continue
        ff = engine.pricers[fa_id].ff
        for b, (fb_id, nb, kb) in enumerate(net_keys):
            if fb_id != fa_id or kb != NET_AREAS:
                continue
            for r in ff.leg_join_rules:
                if r.from_stop_id is not None:
                    if f"{fa_id}:join_stops" not in noted:
                        noted.add(f"{fa_id}:join_stops")
                        notes.append(f"{fa_id}: join rules with stops are not in the kernel tables")
                    continue
                if r.from_network_id == na and r.to_network_id == nb:
                    join[a, b] = True

    # ---- transfer rules (within a feed) and agreements (across feeds) between leg groups
    groups = list(group_index)
    G = len(groups)
    xk = np.zeros((G, G), dtype=np.int8)
    xa = np.zeros((G, G), dtype=np.int64)
    xl = np.full((G, G), -1, dtype=np.int64)
    xt = np.ones((G, G), dtype=np.int8)
    xc = np.full((G, G), -1, dtype=np.int32)
    for i, g1 in enumerate(groups):
        f1, lg1 = g1.split(":", 1)
        for j, g2 in enumerate(groups):
            f2, lg2 = g2.split(":", 1)
            if f1 == f2:
                cell = _feed_transfer(engine.pricers[f1], lg1, lg2, rider_category, medium, currency, notes)
            else:
                cell = _agreement(engine.agreements, g1, g2, rider_category, medium, currency, notes)
            if cell is not None:
                xk[i, j], xa[i, j], xl[i, j], xt[i, j], xc[i, j] = cell
    return FareTables(
        currency=currency, rider_category=rider_category, fare_media=medium, route_network=route_network,
        network_feed=network_feed, network_kind=network_kind, network_group=network_group, stop_area=stop_area,
        leg_price=leg_price, leg_group=leg_group, band_offsets=np.array(band_offsets, dtype=np.int64),
        band_up_to_m=np.array(band_up, dtype=np.float64), band_price=np.array(band_price, dtype=np.int64),
        join=join, xfer_kind=xk, xfer_amount=xa, xfer_limit_s=xl, xfer_limit_type=xt, xfer_count=xc,
        network_ids=tuple(f"{f}:{n or ''}" for f, n, _k in net_keys), group_ids=tuple(groups),
        notes=tuple(dict.fromkeys(notes)),
        meta={"timeframes": {f: sorted(v) for f, v in tf_by_feed.items() if v}, "at": at.isoformat() if at else None})


def _feed_transfer(p: _FeedPricer, g_prev: str, g_cur: str, rider_category: str, medium: str | None, currency: str,
                   notes: list[str]) -> tuple[int, int, int, int, int] | None:
    """(kind, amount, limit s, limit type, count) of the fare_transfer_rules.txt rule between two groups of a feed."""
    rules = p.ff.transfer_rules
    if not rules:
        return None
    listed_from = {r.from_leg_group_id for r in rules if r.from_leg_group_id is not None}
    listed_to = {r.to_leg_group_id for r in rules if r.to_leg_group_id is not None}
    category = p.feed_category(rider_category)
    cands = []
    for r in rules:
        if r.from_leg_group_id is None:
            if g_prev in listed_from:
                continue
        elif r.from_leg_group_id != g_prev:
            continue
        if r.to_leg_group_id is None:
            if g_cur in listed_to:
                continue
        elif r.to_leg_group_id != g_cur:
            continue
        if r.filter_fare_product_id is not None or r.fare_transfer_type == 2:
            notes.append(f"{p.feed_id}: fare_transfer_rules.txt line {r.line} (type {r.fare_transfer_type}"
                         f"{', filter_fare_product_id' if r.filter_fare_product_id else ''}) "
                         "is not in the kernel tables")
            continue
        if r.fare_product_id is None:
            cost = 0
        else:
            row = p.product_price(r.fare_product_id, category, medium)
            if row is None or row.price.currency != currency:
                continue
            cost = row.price.amount
        cands.append((r, cost))
    if not cands:
        return None
    if len(cands) > 1:
        notes.append(f"{p.feed_id}: several transfer rules from {g_prev} to {g_cur}; the kernel uses the first")
    r, cost = cands[0]
    return (XFER_REPLACE if r.fare_transfer_type == 0 else XFER_FEE_PLUS, cost,
            -1 if r.duration_limit is None else r.duration_limit,
            1 if r.duration_limit_type is None else r.duration_limit_type,
            -1 if r.transfer_count is None else r.transfer_count)


def _agreement(agreements: list[Agreement], g_prev: str, g_cur: str, rider_category: str, medium: str | None,
               currency: str, notes: list[str]) -> tuple[int, int, int, int, int] | None:
    """The interoperator discount between two groups of different feeds (the largest that applies)."""
    cands = []
    for ag in agreements:
        if not (Agreement._matches(ag.from_leg_group_ids, g_prev) and Agreement._matches(ag.to_leg_group_ids, g_cur)):
            continue
        if ag.rider_categories is not None and rider_category not in ag.rider_categories:
            continue
        if ag.fare_media_ids is not None and (medium is None or medium not in ag.fare_media_ids):
            continue
        if ag.discount.currency != currency or ag.discount.amount <= 0:
            continue
        cands.append(ag)
    if not cands:
        return None
    if len({(a.duration_limit, a.duration_limit_type) for a in cands}) > 1:
        notes.append(f"agreements {g_prev} -> {g_cur} differ in duration limits; the kernel uses the largest discount")
    ag = max(cands, key=lambda a: a.discount.amount)
    return (XFER_DISCOUNT, ag.discount.amount, -1 if ag.duration_limit is None else ag.duration_limit,
            ag.duration_limit_type, -1)


