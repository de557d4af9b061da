"""The fare engine: prices itinerary legs from GTFS Fares v2, Fares v1, operator tables and agreements.

Pipeline of `FareEngine.price_legs` for one rider category and one fare medium:

1. legs are normalised (namespaced ids split, ISO times parsed; WALK legs
   skipped) and cut into *runs* of consecutive transit legs of one feed;
2. per run, by the feed's data:
   - **Fares v2**: legs joined into effective fare legs by
     fare_leg_join_rules.txt; each effective leg matched against
     fare_leg_rules.txt (`LegRuleIndex`); the cheapest product of the matched
     rules for the rider category and medium is its standalone price; then
     fare_transfer_rules.txt is applied between consecutive effective legs;
   - **Fares v1** (only when the feed has no v2): the run is partitioned into
     fares by dynamic programming over fare_attributes/fare_rules, honouring
     ``transfers`` and ``transfer_duration``;
   - **operator table** (only when the feed has no fare files);
3. interoperator agreements (联程优惠) discount legs that follow a leg of
   another feed;
4. effective-leg amounts are split back over the legs they cover
   (largest remainder by distance).

When ``fare_media`` is not given every medium the feeds know is tried as the
single medium of the whole journey, and the cheapest fully priced journey
wins. A leg no data covers gets ``price=None`` and a ``reason``, never 0, and
then the quote's ``total`` is ``None`` with a reason.

Rule matching is a pure function of (network, from areas, to areas, active
timeframe groups) and is memoised per key, so a multi-criteria search can
precompute it per (route network, from area, to area) into arrays later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ticketing.fares.config import Agreement, OperatorTable, load_agreements, load_operator_tables
from ticketing.fares.errors import InvalidLeg
from ticketing.fares.gtfs_fares import FareLegRule, FareProductRow, FareTransferRule, FeedFares, read_feed_fares
from ticketing.fares.money import Money, allocate

__all__ = ["AppliedTransfer", "FareEngine", "FareQuote", "LegFare", "LegRuleIndex", "DEFAULT_RIDER_CATEGORY"]

DEFAULT_RIDER_CATEGORY = "adult"
_TRANSIT_MODES = {"BUS", "TRAM", "SUBWAY", "RAIL", "COACH", "FERRY", "CABLE_CAR", "GONDOLA", "FUNICULAR",
                  "TROLLEYBUS", "MONORAIL"}


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class LegFare:
    """The fare of one transit leg of the itinerary.

    ``leg_index`` points into the legs given to `FareEngine.price_legs`.
    ``price`` is what the leg costs within this journey (after transfer rules
    and agreements); ``standalone`` what it would cost alone. Both are ``None``
    when no data covers the leg, and ``reason`` says why. Ids are namespaced
    ``<feed_id>:<id>``.
    """

    leg_index: int
    feed_id: str
    operator_id: str | None
    route_id: str
    price: Money | None
    standalone: Money | None
    reason: str | None = None
    source: str | None = None  # "fares_v2" | "fares_v1" | "operator_table"
    fare_product_id: str | None = None
    fare_product_name: str | None = None
    leg_group_id: str | None = None
    rider_category_id: str | None = None
    fare_media_id: str | None = None
    effective_leg: int = 0  # legs sharing this number were priced as one fare leg

    def to_dict(self) -> dict[str, Any]:
        return {
            "leg_index": self.leg_index, "feed_id": self.feed_id, "operator_id": self.operator_id,
            "route_id": self.route_id, "price": self.price.to_dict() if self.price else None,
            "standalone": self.standalone.to_dict() if self.standalone else None, "reason": self.reason,
            "source": self.source, "fare_product_id": self.fare_product_id,
            "fare_product_name": self.fare_product_name, "leg_group_id": self.leg_group_id,
            "rider_category_id": self.rider_category_id, "fare_media_id": self.fare_media_id,
            "effective_leg": self.effective_leg,
        }


@dataclass(frozen=True, slots=True)
class AppliedTransfer:
    """A transfer rule, join or agreement that changed the price between two legs.

    ``kind``: ``fare_transfer_rule`` (GTFS v2, one feed), ``agreement``
    (interoperator, across feeds), ``fare_leg_join`` (legs priced as one
    effective leg) or ``fares_v1`` (legs under one v1 fare). ``saving`` is
    the standalone prices minus the price paid for the to-leg (negative when
    the rule adds a fee).
    """

    kind: str
    rule_id: str
    from_leg_index: int
    to_leg_index: int
    saving: Money | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rule_id": self.rule_id, "from_leg_index": self.from_leg_index,
                "to_leg_index": self.to_leg_index, "saving": self.saving.to_dict() if self.saving else None}


@dataclass(slots=True)
class FareQuote:
    """The price of a journey for one rider category and one fare medium.

    ``total`` is ``None`` (with ``reason``) when a leg is unpriced or the legs
    are in different currencies.
    """

    legs: list[LegFare]
    total: Money | None
    reason: str | None
    transfers: list[AppliedTransfer]
    rider_category: str
    fare_media_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total.to_dict() if self.total else None, "reason": self.reason,
                "rider_category": self.rider_category, "fare_media_id": self.fare_media_id,
                "legs": [lf.to_dict() for lf in self.legs], "transfers": [t.to_dict() for t in self.transfers]}


# --------------------------------------------------------------------------- leg rule matching


class LegRuleIndex:
    """fare_leg_rules.txt of one feed, matched with the spec's semantics.

    Without a ``rule_priority`` column an empty ``network_id`` / ``from_area_id``
    / ``to_area_id`` matches only values that no rule lists; with it an empty
    field matches anything and only the highest-priority matches survive. An
    empty timeframe group never restricts. Results are memoised per key.
    """

    def __init__(self, ff: FeedFares) -> None:
        self.rules = ff.leg_rules
        self.priority = ff.has_rule_priority
        self.listed_networks = {r.network_id for r in self.rules if r.network_id is not None}
        self.listed_from = {r.from_area_id for r in self.rules if r.from_area_id is not None}
        self.listed_to = {r.to_area_id for r in self.rules if r.to_area_id is not None}
        self._cache: dict[tuple, tuple[FareLegRule, ...]] = {}

    def match(self, network_id: str | None, from_areas: frozenset[str], to_areas: frozenset[str],
              from_timeframes: frozenset[str], to_timeframes: frozenset[str],
              after_transfer: bool) -> tuple[FareLegRule, ...]:
        """Rules matching an effective leg, in file order (all of the top priority when prioritised)."""
        key = (network_id, from_areas, to_areas, from_timeframes, to_timeframes, after_transfer)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        exclusive = not self.priority
        out: list[FareLegRule] = []
        for r in self.rules:
            if r.transfer_only and not after_transfer:
                continue
            if r.network_id is None:
                if exclusive and network_id in self.listed_networks:
                    continue
            elif r.network_id != network_id:
                continue
            if r.from_area_id is None:
                if exclusive and not from_areas.isdisjoint(self.listed_from):
                    continue
            elif r.from_area_id not in from_areas:
                continue
            if r.to_area_id is None:
                if exclusive and not to_areas.isdisjoint(self.listed_to):
                    continue
            elif r.to_area_id not in to_areas:
                continue
            if r.from_timeframe_group_id is not None and r.from_timeframe_group_id not in from_timeframes:
                continue
            if r.to_timeframe_group_id is not None and r.to_timeframe_group_id not in to_timeframes:
                continue
            out.append(r)
        if self.priority and out:
            top = max(r.rule_priority for r in out)
            out = [r for r in out if r.rule_priority == top]
        res = tuple(out)
        self._cache[key] = res
        return res


# --------------------------------------------------------------------------- internal leg model


@dataclass(slots=True)
class _Leg:
    index: int
    feed_id: str
    operator_id: str | None
    route_id: str  # un-namespaced
    from_stop: str
    to_stop: str
    via_stops: list[str]
    departure: datetime
    arrival: datetime
    distance_m: float | None


@dataclass(slots=True)
class _Eff:
    """An effective fare leg: one or more consecutive legs priced together."""

    legs: list[_Leg]
    feed_id: str
    standalone: Money | None = None
    charged: Money | None = None
    reason: str | None = None
    source: str | None = None
    product: FareProductRow | None = None
    leg_group_id: str | None = None  # namespaced
    rider_category_id: str | None = None
    fare_media_id: str | None = None

    @property
    def departure(self) -> datetime:
        return self.legs[0].departure

    @property
    def arrival(self) -> datetime:
        return self.legs[-1].arrival


def _strip_ns(value: Any, feed_id: str, what: str, index: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidLeg(f"leg {index}: {what} is missing", details={"leg_index": index, "field": what})
    prefix = feed_id + ":"
    if not value.startswith(prefix):
        raise InvalidLeg(f"leg {index}: {what} {value!r} is not namespaced '{feed_id}:<id>'",
                         details={"leg_index": index, "field": what})
    return value[len(prefix):]


def _parse_time(value: Any, index: int, what: str) -> datetime:
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidLeg(f"leg {index}: {what} {value!r} is not an ISO 8601 time",
                             details={"leg_index": index, "field": what}) from None
    if dt.tzinfo is None:
        raise InvalidLeg(f"leg {index}: {what} {value!r} has no UTC offset", details={"leg_index": index,
                                                                                      "field": what})
    return dt


def _normalise(legs: Sequence[dict[str, Any]]) -> list[_Leg]:
    out = []
    for i, leg in enumerate(legs):
        if not isinstance(leg, dict):
            raise InvalidLeg(f"leg {i} is not an object", details={"leg_index": i})
        mode = str(leg.get("mode", "")).upper()
        if mode == "WALK":
            continue
        if mode and mode not in _TRANSIT_MODES:
            raise InvalidLeg(f"leg {i}: unknown mode {mode!r}", details={"leg_index": i, "field": "mode"})
        feed_id = leg.get("feed_id")
        if not isinstance(feed_id, str) or not feed_id:
            raise InvalidLeg(f"leg {i}: feed_id is missing", details={"leg_index": i, "field": "feed_id"})
        frm, to = leg.get("from") or {}, leg.get("to") or {}
        via = []
        for s in leg.get("intermediate_stops") or []:
            sid = s.get("stop_id") if isinstance(s, dict) else s
            if isinstance(sid, str) and sid.startswith(feed_id + ":"):
                via.append(sid[len(feed_id) + 1:])
        dist = leg.get("distance_m")
        if dist is not None and (not isinstance(dist, (int, float)) or isinstance(dist, bool) or dist < 0):
            raise InvalidLeg(f"leg {i}: distance_m must be a number >= 0", details={"leg_index": i,
                                                                                   "field": "distance_m"})
        dep = _parse_time(leg.get("departure"), i, "departure")
        arr = _parse_time(leg.get("arrival"), i, "arrival")
        if arr < dep:
            raise InvalidLeg(f"leg {i}: arrival is before departure", details={"leg_index": i})
        out.append(_Leg(i, feed_id, leg.get("operator_id"), _strip_ns(leg.get("route_id"), feed_id, "route_id", i),
                        _strip_ns(frm.get("stop_id"), feed_id, "from.stop_id", i),
                        _strip_ns(to.get("stop_id"), feed_id, "to.stop_id", i), via, dep, arr, dist))
    return out


def _within(limit: int | None, limit_type: int | None, prev: _Eff, nxt: _Eff) -> bool:
    """GTFS duration_limit_type: 0 dep->arr, 1 dep->dep, 2 arr->dep, 3 arr->arr (prev = the 'current' leg)."""
    if limit is None:
        return True
    start = prev.departure if limit_type in (0, 1, None) else prev.arrival
    end = nxt.arrival if limit_type in (0, 3) else nxt.departure
    return (end - start).total_seconds() <= limit


# --------------------------------------------------------------------------- per-feed pricing


class _FeedPricer:
    """Everything the engine needs about one feed, precomputed once."""

    def __init__(self, ff: FeedFares, operator_id: str | None, table: OperatorTable | None,
                 category_aliases: dict[str, str]) -> None:
        self.ff = ff
        self.feed_id = ff.feed_id
        self.operator_id = operator_id
        self.table = table
        self.index = LegRuleIndex(ff) if ff.has_v2 else None
        self.aliases = category_aliases
        self.default_category = next((c for c, (_n, d) in ff.rider_categories.items() if d), None)
        self.media = sorted(ff.fare_media) if ff.has_v2 else []
        self._tf_cache: dict[tuple[str, date, int], frozenset[str]] = {}

    @property
    def source(self) -> str | None:
        if self.ff.has_v2:
            return "fares_v2"
        if self.ff.has_v1:
            return "fares_v1"
        if self.table is not None:
            return "operator_table"
        return None

    def feed_category(self, platform_category: str) -> str | None:
        """The feed's rider_category_id for a platform category, or None if the feed has none for it."""
        if platform_category in self.aliases:
            return self.aliases[platform_category]
        if platform_category in self.ff.rider_categories:
            return platform_category
        if platform_category == DEFAULT_RIDER_CATEGORY:
            return self.default_category
        return None

    # -- v2 ---------------------------------------------------------------
    def timeframes_at(self, t: datetime) -> frozenset[str]:
        """Timeframe groups active at ``t``: local time of day in the feed's timezone, and the service
        active on the local calendar date (a 00:30 leg of Friday's service is matched on Saturday)."""
        if not self.ff.timeframes:
            return frozenset()
        local = t.astimezone(self.ff.timezone) if self.ff.timezone else t
        secs = local.hour * 3600 + local.minute * 60 + local.second
        key = (local.tzname() or "", local.date(), secs)
        hit = self._tf_cache.get(key)
        if hit is None:
            d = local.date()
            hit = frozenset(g for g, tfs in self.ff.timeframes.items()
                            if any(tf.start_s <= secs < tf.end_s and self.ff.service_active(tf.service_id, d)
                                   for tf in tfs))
            if len(self._tf_cache) < 100_000:
                self._tf_cache[key] = hit
        return hit

    def product_price(self, product_id: str, category: str | None, medium: str | None) -> FareProductRow | None:
        """Cheapest product row for the rider and medium (empty category/medium fields match any)."""
        best = None
        for row in self.ff.fare_products.get(product_id, ()):
            if row.rider_category_id is not None and row.rider_category_id != category:
                continue
            if medium is not None and row.fare_media_id is not None and row.fare_media_id != medium:
                continue
            if best is None or row.price.amount < best.price.amount:
                best = row
        return best

    def join(self, legs: list[_Leg]) -> list[_Eff]:
        """Effective fare legs by fare_leg_join_rules.txt (consecutive legs, stops or their stations)."""
        effs: list[_Eff] = []
        for leg in legs:
            if effs and self._joins(effs[-1].legs[-1], leg):
                effs[-1].legs.append(leg)
            else:
                effs.append(_Eff([leg], self.feed_id))
        return effs

    def _joins(self, a: _Leg, b: _Leg) -> bool:
        rules = self.ff.leg_join_rules
        if not rules:
            return False
        na, nb = self.ff.route_network.get(a.route_id), self.ff.route_network.get(b.route_id)
        a_stops = {a.to_stop, self.ff.stop_parent.get(a.to_stop)}
        b_stops = {b.from_stop, self.ff.stop_parent.get(b.from_stop)}
        for r in rules:
            if r.from_network_id == na and r.to_network_id == nb and \
                    (r.from_stop_id is None or (r.from_stop_id in a_stops and r.to_stop_id in b_stops)):
                return True
        return False

    def price_v2(self, eff: _Eff, after_transfer: bool, platform_category: str, medium: str | None) -> None:
        assert self.index is not None
        first, last = eff.legs[0], eff.legs[-1]
        network = self.ff.route_network.get(first.route_id)
        rules = self.index.match(network, self.ff.areas_of(first.from_stop), self.ff.areas_of(last.to_stop),
                                 self.timeframes_at(first.departure), self.timeframes_at(last.arrival),
                                 after_transfer)
        eff.source = "fares_v2"
        if not rules:
            eff.reason = (f"no fare_leg_rules.txt row of {self.feed_id} matches route {first.route_id} "
                          f"from {first.from_stop} to {last.to_stop}")
            return
        category = self.feed_category(platform_category)
        eff.rider_category_id = category
        best: tuple[FareProductRow, FareLegRule] | None = None
        for r in rules:
            row = self.product_price(r.fare_product_id, category, medium)
            if row is not None and (best is None or row.price.amount < best[0].price.amount):
                best = (row, r)
        if best is None:
            eff.reason = (f"{self.feed_id} has no fare product for rider category {platform_category!r}"
                          + (f" with fare medium {medium!r}" if medium else "")
                          + f" (rules matched: {', '.join(sorted({r.fare_product_id for r in rules}))})")
            return
        row, rule = best
        eff.product, eff.standalone, eff.charged = row, row.price, row.price
        eff.leg_group_id = f"{self.feed_id}:{rule.leg_group_id}" if rule.leg_group_id else None
        eff.fare_media_id = row.fare_media_id

    def apply_transfers(self, effs: list[_Eff], platform_category: str, medium: str | None,
                        applied: list[AppliedTransfer]) -> None:
        """fare_transfer_rules.txt between consecutive effective legs of this feed (greedy, cheapest rule)."""
        rules = self.ff.transfer_rules
        if not rules or len(effs) < 2:
            return
        listed_from = {r.from_leg_group_id for r in rules if r.from_leg_group_id is not None}
        listed_to = {r.to_leg_group_id for r in rules if r.to_leg_group_id is not None}
        category = self.feed_category(platform_category)
        prefix = self.feed_id + ":"
        sub_start, n_transfers = 0, 0
        for i in range(1, len(effs)):
            prev, cur = effs[i - 1], effs[i]
            if prev.charged is None or cur.standalone is None:
                sub_start, n_transfers = i, 0
                continue
            g_prev = prev.leg_group_id[len(prefix):] if prev.leg_group_id else None
            g_cur = cur.leg_group_id[len(prefix):] if cur.leg_group_id else None
            candidates: list[tuple[FareTransferRule, int]] = []
            for r in rules:
                if r.from_leg_group_id is None:
                    if g_prev in listed_from or g_prev is None:
                        continue
                elif r.from_leg_group_id != g_prev:
                    continue
                if r.to_leg_group_id is None:
                    if g_cur in listed_to or g_cur is None:
                        continue
                elif r.to_leg_group_id != g_cur:
                    continue
                if r.transfer_count is not None and r.transfer_count != -1 and n_transfers + 1 > r.transfer_count:
                    continue
                if not _within(r.duration_limit, r.duration_limit_type, prev, cur):
                    continue
                if r.filter_fare_product_id is not None and (
                        prev.product is None or prev.product.fare_product_id != r.filter_fare_product_id):
                    continue
                if r.fare_product_id is None:
                    cost = 0
                else:
                    row = self.product_price(r.fare_product_id, category, medium)
                    if row is None:
                        continue
                    if row.price.currency != cur.standalone.currency:
                        continue
                    cost = row.price.amount
                candidates.append((r, cost))
            if not candidates:
                sub_start, n_transfers = i, 0
                continue
            # spec: of rules differing only in transfer_count, the smallest count that still fits wins
            counts = [c.transfer_count for c, _ in candidates if c.transfer_count not in (None, -1)]
            if counts:
                lowest = min(counts)
                candidates = [(c, k) for c, k in candidates if c.transfer_count in (None, -1, lowest)]
            currency = cur.standalone.currency

            def journey_cost(rule: FareTransferRule, t_cost: int) -> int:
                if rule.fare_transfer_type == 0:
                    return t_cost
                if rule.fare_transfer_type == 1:
                    return t_cost + cur.standalone.amount  # type: ignore[union-attr]
                # type 2: the whole sub-journey costs AB
                return t_cost - sum(e.charged.amount for e in effs[sub_start:i])  # type: ignore[union-attr]

            rule, t_cost = min(candidates, key=lambda rc: (journey_cost(*rc), rc[0].line))
            if rule.fare_transfer_type == 2:
                weights = [e.standalone.amount for e in effs[sub_start:i + 1]]  # type: ignore[union-attr]
                for e, part in zip(effs[sub_start:i + 1], allocate(t_cost, weights)):
                    e.charged = Money(part, currency)
            else:
                cur.charged = Money(journey_cost(rule, t_cost), currency)
            n_transfers += 1
            applied.append(AppliedTransfer("fare_transfer_rule", f"{self.feed_id}:fare_transfer_rules.txt:{rule.line}",
                                           prev.legs[-1].index, cur.legs[0].index,
                                           Money(cur.standalone.amount - cur.charged.amount, currency)))

    # -- v1 ---------------------------------------------------------------
    def _zone(self, stop: str) -> str | None:
        z = self.ff.stop_zone.get(stop)
        if z is None and stop in self.ff.stop_parent:
            z = self.ff.stop_zone.get(self.ff.stop_parent[stop])
        return z

    def _v1_fares_for(self, legs: list[_Leg]) -> list[tuple[int, str]]:
        """(price minor, fare_id) of every v1 fare covering these legs as one fare, cheapest first."""
        routes = {leg.route_id for leg in legs}
        origin, dest = self._zone(legs[0].from_stop), self._zone(legs[-1].to_stop)
        zones = {z for leg in legs for s in (leg.from_stop, *leg.via_stops, leg.to_stop)
                 if (z := self._zone(s)) is not None}
        agencies = {self.ff.route_agency.get(r) for r in routes}
        by_fare: dict[str, list] = {}
        for fr in self.ff.fare_rules_v1:
            by_fare.setdefault(fr.fare_id, []).append(fr)
        out = []
        for fid, fa in self.ff.fare_attributes.items():
            if fa.agency_id is not None and agencies - {fa.agency_id, None}:
                continue
            rows = by_fare.get(fid, [])
            if not rows:
                out.append((fa.price.amount, fid))
                continue
            f_routes = {r.route_id for r in rows if r.route_id}
            f_od = [(r.origin_id, r.destination_id) for r in rows if r.origin_id or r.destination_id]
            f_contains = {r.contains_id for r in rows if r.contains_id}
            if f_routes and not routes <= f_routes:
                continue
            if f_od and not any((o is None or o == origin) and (d is None or d == dest) for o, d in f_od):
                continue
            if f_contains and zones != f_contains:
                continue
            out.append((fa.price.amount, fid))
        return sorted(out)

    def price_v1(self, legs: list[_Leg], applied: list[AppliedTransfer]) -> list[_Eff]:
        """Cheapest partition of a run into v1 fares (DP); each part becomes one effective leg."""
        n = len(legs)
        best: list[tuple[int, list[tuple[int, int, str]]] | None] = [(0, [])] + [None] * n
        for j in range(1, n + 1):
            for i in range(j):
                if best[i] is None:
                    continue
                part = legs[i:j]
                for amount, fid in self._v1_fares_for(part):
                    fa = self.ff.fare_attributes[fid]
                    k = len(part) - 1
                    if k and fa.transfers is not None and k > fa.transfers:
                        continue
                    if k and fa.transfer_duration is not None and \
                            (part[-1].departure - part[0].departure).total_seconds() > fa.transfer_duration:
                        continue
                    total = best[i][0] + amount  # type: ignore[index]
                    if best[j] is None or total < best[j][0]:  # type: ignore[index]
                        best[j] = (total, best[i][1] + [(i, j, fid)])  # type: ignore[index]
                    break  # cheapest fare for this part found
        if best[n] is None:
            # price what can be priced leg by leg, mark the rest
            effs = []
            for leg in legs:
                fares = self._v1_fares_for([leg])
                e = _Eff([leg], self.feed_id, source="fares_v1")
                if fares:
                    self._fill_v1(e, fares[0][1])
                else:
                    e.reason = (f"no fare_rules.txt row of {self.feed_id} covers route {leg.route_id} "
                                f"from zone {self._zone(leg.from_stop)} to zone {self._zone(leg.to_stop)}")
                effs.append(e)
            return effs
        effs = []
        for i, j, fid in best[n][1]:  # type: ignore[index]
            e = _Eff(legs[i:j], self.feed_id, source="fares_v1")
            self._fill_v1(e, fid)
            for a, b in zip(legs[i:j], legs[i + 1:j]):
                applied.append(AppliedTransfer("fares_v1", f"{self.feed_id}:fare_attributes.txt:{fid}", a.index,
                                               b.index, None))
            effs.append(e)
        return effs

    def _fill_v1(self, e: _Eff, fid: str) -> None:
        fa = self.ff.fare_attributes[fid]
        e.standalone = e.charged = fa.price
        e.leg_group_id = f"{self.feed_id}:fare_v1:{fid}"
        e.product = FareProductRow(fid, f"fare {fid}", None, None, fa.price, fa.line)

    # -- operator table ------------------------------------------------------
    def price_table(self, leg: _Leg, platform_category: str) -> _Eff:
        assert self.table is not None
        e = _Eff([leg], self.feed_id, source="operator_table")
        price, reason = self.table.price(route_id=leg.route_id, from_stop=leg.from_stop, to_stop=leg.to_stop,
                                         from_parent=self.ff.stop_parent.get(leg.from_stop),
                                         to_parent=self.ff.stop_parent.get(leg.to_stop),
                                         distance_m=leg.distance_m, rider_category=platform_category)
        e.standalone = e.charged = price
        e.reason = reason
        e.leg_group_id = f"{self.feed_id}:operator_table"
        e.rider_category_id = platform_category
        return e


# --------------------------------------------------------------------------- engine


class FareEngine:
    """Prices itineraries over several feeds; build it once with `from_feeds` and reuse it (thread-safe reads)."""

    def __init__(self, feeds: Iterable[FeedFares], *, agreements: list[Agreement] | None = None,
                 operator_tables: dict[str, OperatorTable] | None = None,
                 operators: dict[str, str] | None = None,
                 category_aliases: dict[str, dict[str, str]] | None = None) -> None:
        tables = operator_tables or {}
        aliases = category_aliases or {}
        self.pricers: dict[str, _FeedPricer] = {}
        for ff in feeds:
            self.pricers[ff.feed_id] = _FeedPricer(ff, (operators or {}).get(ff.feed_id), tables.get(ff.feed_id),
                                                   aliases.get(ff.feed_id, {}))
        self.agreements = list(agreements or [])
        self.operator_tables = tables
        for feed_id in tables:
            if feed_id not in self.pricers:
                # a table may price a feed whose GTFS we did not read (no stops/parents known)
                self.pricers[feed_id] = _FeedPricer(FeedFares(feed_id=feed_id, timezone=None), None, tables[feed_id],
                                                    aliases.get(feed_id, {}))

    @classmethod
    def from_feeds(cls, feeds: Iterable[tuple[str, str | Path]], *,
                   agreements: str | Path | dict[str, Any] | list[Agreement] | None = None,
                   operator_tables: str | Path | dict[str, Any] | None = None,
                   operators: dict[str, str] | None = None,
                   category_aliases: dict[str, dict[str, str]] | None = None) -> FareEngine:
        """Reads each ``(feed_id, path)`` (GTFS zip or folder) and the platform configuration.

        ``agreements`` / ``operator_tables``: JSON path or dict (see `ticketing.fares.config`).
        ``category_aliases``: ``{feed_id: {platform category: feed rider_category_id}}`` for feeds
        whose categories have other ids (e.g. Zakroczym's ``"3"`` for seniors).
        """
        loaded = [read_feed_fares(fid, Path(p)) for fid, p in feeds]
        ags = agreements if isinstance(agreements, list) else load_agreements(agreements)
        return cls(loaded, agreements=ags, operator_tables=load_operator_tables(operator_tables),
                   operators=operators, category_aliases=category_aliases)

    # -- public -----------------------------------------------------------
    def rider_categories(self) -> dict[str, dict[str, str]]:
        """``{feed_id: {rider_category_id: name}}`` of every loaded feed."""
        return {fid: {c: n for c, (n, _d) in p.ff.rider_categories.items()} for fid, p in self.pricers.items()}

    def price_itinerary(self, itinerary: dict[str, Any], rider_category: str = DEFAULT_RIDER_CATEGORY,
                        fare_media: str | None = None) -> FareQuote:
        """Prices an API itinerary object (``{"legs": [...], ...}``)."""
        legs = itinerary.get("legs") if isinstance(itinerary, dict) else None
        if not isinstance(legs, list):
            raise InvalidLeg("itinerary has no 'legs' list", details={})
        return self.price_legs(legs, rider_category=rider_category, fare_media=fare_media)

    def price_legs(self, legs: Sequence[dict[str, Any]], rider_category: str = DEFAULT_RIDER_CATEGORY,
                   fare_media: str | None = None) -> FareQuote:
        """Prices API-shaped legs (see API.md, Itinerary) for one rider category.

        ``fare_media``: a fare_media_id used on every leg (e.g. ``"qr"``); ``None``
        tries each medium the feeds define and keeps the cheapest fully priced
        journey. Raises `InvalidLeg` for malformed legs.
        """
        norm = _normalise(legs)
        if fare_media is not None:
            return self._price(norm, rider_category, fare_media)
        media = sorted({m for leg in norm if leg.feed_id in self.pricers for m in self.pricers[leg.feed_id].media})
        if not media:
            return self._price(norm, rider_category, None)
        best: FareQuote | None = None
        for m in media:
            q = self._price(norm, rider_category, m)
            if best is None or _better(q, best):
                best = q
        return best  # type: ignore[return-value]

    # -- internals ----------------------------------------------------------
    def _price(self, legs: list[_Leg], category: str, medium: str | None) -> FareQuote:
        applied: list[AppliedTransfer] = []
        effs: list[_Eff] = []
        i = 0
        while i < len(legs):
            j = i
            while j + 1 < len(legs) and legs[j + 1].feed_id == legs[i].feed_id:
                j += 1
            run = legs[i:j + 1]
            effs.extend(self._price_run(run, category, medium, applied, first_in_journey=(i == 0)))
            i = j + 1
        self._apply_agreements(effs, category, medium, applied)
        return self._quote(effs, category, medium, applied)

    def _price_run(self, run: list[_Leg], category: str, medium: str | None, applied: list[AppliedTransfer],
                   first_in_journey: bool) -> list[_Eff]:
        p = self.pricers.get(run[0].feed_id)
        if p is None or p.source is None:
            reason = f"no fare data for feed {run[0].feed_id}"
            return [_Eff([leg], run[0].feed_id, reason=reason) for leg in run]
        if p.source == "fares_v2":
            effs = p.join(run)
            for k, e in enumerate(effs):
                for a, b in zip(e.legs, e.legs[1:]):
                    applied.append(AppliedTransfer("fare_leg_join", f"{p.feed_id}:fare_leg_join_rules.txt",
                                                   a.index, b.index, None))
                p.price_v2(e, after_transfer=not (first_in_journey and k == 0), platform_category=category,
                           medium=medium)
            p.apply_transfers(effs, category, medium, applied)
            return effs
        if p.source == "fares_v1":
            return p.price_v1(run, applied)
        return [p.price_table(leg, category) for leg in run]

    def _apply_agreements(self, effs: list[_Eff], category: str, medium: str | None,
                          applied: list[AppliedTransfer]) -> None:
        if not self.agreements:
            return
        for prev, cur in zip(effs, effs[1:]):
            if prev.feed_id == cur.feed_id or prev.leg_group_id is None or cur.leg_group_id is None:
                continue
            if prev.charged is None or cur.charged is None:
                continue
            best: tuple[int, Agreement] | None = None
            for ag in self.agreements:
                if not (Agreement._matches(ag.from_leg_group_ids, prev.leg_group_id)
                        and Agreement._matches(ag.to_leg_group_ids, cur.leg_group_id)):
                    continue
                if ag.rider_categories is not None and category not in ag.rider_categories:
                    continue
                if ag.fare_media_ids is not None:
                    used = {prev.fare_media_id or medium, cur.fare_media_id or medium}
                    if None in used or not used <= ag.fare_media_ids:
                        continue
                if ag.discount.currency != cur.charged.currency or not _within(ag.duration_limit,
                                                                               ag.duration_limit_type, prev, cur):
                    continue
                off = min(ag.discount.amount, cur.charged.amount)
                if off > 0 and (best is None or off > best[0]):
                    best = (off, ag)
            if best is not None:
                off, ag = best
                cur.charged = Money(cur.charged.amount - off, cur.charged.currency)
                applied.append(AppliedTransfer("agreement", ag.agreement_id, prev.legs[-1].index, cur.legs[0].index,
                                               Money(off, cur.charged.currency)))

    def _quote(self, effs: list[_Eff], category: str, medium: str | None,
               applied: list[AppliedTransfer]) -> FareQuote:
        out: list[LegFare] = []
        for n, e in enumerate(effs):
            charged_parts: list[int | None]
            standalone_parts: list[int | None]
            if e.charged is not None and len(e.legs) > 1:
                w = [int(round(leg.distance_m or 0)) for leg in e.legs]
                charged_parts = list(allocate(e.charged.amount, w))
                standalone_parts = list(allocate(e.standalone.amount, w))  # type: ignore[union-attr]
            else:
                charged_parts = [e.charged.amount if e.charged else None] * len(e.legs)
                standalone_parts = [e.standalone.amount if e.standalone else None] * len(e.legs)
            currency = e.charged.currency if e.charged else None
            p = self.pricers.get(e.feed_id)
            for leg, c, s in zip(e.legs, charged_parts, standalone_parts):
                out.append(LegFare(
                    leg_index=leg.index, feed_id=e.feed_id,
                    operator_id=leg.operator_id or (p.operator_id if p else None),
                    route_id=f"{e.feed_id}:{leg.route_id}",
                    price=Money(c, currency) if c is not None and currency else None,
                    standalone=Money(s, currency) if s is not None and currency else None,
                    reason=e.reason if e.charged is None else None, source=e.source,
                    fare_product_id=f"{e.feed_id}:{e.product.fare_product_id}" if e.product else None,
                    fare_product_name=e.product.name if e.product else None,
                    leg_group_id=e.leg_group_id, rider_category_id=e.rider_category_id,
                    fare_media_id=e.fare_media_id if e.fare_media_id is not None else (medium if e.product else None),
                    effective_leg=n))
        total: Money | None = None
        reason: str | None = None
        if not out:
            reason = "the itinerary has no transit legs"
            total = None
        elif any(lf.price is None for lf in out):
            first = next(lf for lf in out if lf.price is None)
            reason = f"leg {first.leg_index} is not priced: {first.reason}"
        else:
            currencies = {lf.price.currency for lf in out}  # type: ignore[union-attr]
            if len(currencies) > 1:
                reason = f"legs are priced in different currencies: {', '.join(sorted(currencies))}"
            else:
                total = Money(sum(lf.price.amount for lf in out), currencies.pop())  # type: ignore[union-attr]
        if not out:
            total = None
        return FareQuote(out, total, reason, applied, category, medium)


def _better(a: FareQuote, b: FareQuote) -> bool:
    """Is quote ``a`` preferable to ``b``: fully priced first, then cheaper, then more legs priced."""
    if (a.total is None) != (b.total is None):
        return a.total is not None
    if a.total is not None and b.total is not None:
        return a.total.amount < b.total.amount
    return sum(lf.price is not None for lf in a.legs) > sum(lf.price is not None for lf in b.legs)
