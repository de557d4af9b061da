"""Platform-level fare configuration that plain GTFS cannot express.

Two JSON documents (or the equivalent dicts), both with integer minor units:

**Interoperator fare agreements** (联程优惠) — a transfer discount between legs of
*different feeds*. GTFS ``fare_transfer_rules.txt`` only links leg groups of
one feed, so cross-feed rules name leg groups namespaced by feed::

    {"version": 1,
     "transfer_rules": [
       {"agreement_id": "yx-bus-metro-2024",
        "from_leg_group_ids": ["yx-bus:bus_flat"],      # "<feed_id>:<leg_group_id>" or "<feed_id>:*"
        "to_leg_group_ids": ["yx-metro:metro"],
        "duration_limit": 3600,                          # seconds; null = no limit
        "duration_limit_type": 1,                        # as GTFS: 0 dep->arr, 1 dep->dep, 2 arr->dep, 3 arr->arr
        "discount": {"amount": 100, "currency": "CNY"},  # off the to-leg's price, never below zero
        "fare_media_ids": ["qr", "card"],                # optional: only when paid with these media
        "rider_categories": null}]}                      # optional: only for these platform categories

``<feed_id>:*`` matches any leg of that feed, including legs priced by Fares v1
(leg group ``fare_v1:<fare_id>``) or by an operator table (leg group
``operator_table``). At most one agreement discount applies to a leg: the
largest. The "current" leg of ``duration_limit_type`` is the pre-transfer leg.

**Operator fare tables** — fares of operators whose feeds carry no fare files::

    {"version": 1,
     "tables": [
       {"feed_id": "yx-ferry", "operator_id": "yunxi-ferry", "currency": "CNY",
        "kind": "distance_bands",                 # or "od"
        "route_ids": null,                        # optional: only these (un-namespaced) routes
        "bands": [{"up_to_m": 2000, "amount": 200}, {"up_to_m": null, "amount": 500}],
        "fares": [{"from_stop_id": "A", "to_stop_id": "B", "amount": 2800, "symmetric": true}],   # kind "od"
        "rider_categories": {"adult": {"percent": 100}, "child": {"percent": 50}}}]}

A distance band matches the first band whose ``up_to_m`` is at least the leg's
``distance_m`` (``null`` = no upper bound). OD stop ids may be station ids;
a leg's platform matches its parent station's entry. A rider category missing
from ``rider_categories`` is not sold (price ``None``); an absent
``rider_categories`` means every category pays the table amount.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketing.fares.errors import FareDataError
from ticketing.fares.money import Money

__all__ = ["Agreement", "OperatorTable", "load_agreements", "load_operator_tables"]


@dataclass(frozen=True, slots=True)
class Agreement:
    """One cross-feed transfer discount (see the module docstring)."""

    agreement_id: str
    from_leg_group_ids: frozenset[str]
    to_leg_group_ids: frozenset[str]
    duration_limit: int | None
    duration_limit_type: int
    discount: Money
    fare_media_ids: frozenset[str] | None
    rider_categories: frozenset[str] | None

    @staticmethod
    def _matches(selectors: frozenset[str], group: str) -> bool:
        feed_id = group.split(":", 1)[0]
        return group in selectors or f"{feed_id}:*" in selectors


@dataclass(frozen=True, slots=True)
class OperatorTable:
    """One operator fare table (see the module docstring). Amounts are minor units."""

    feed_id: str
    operator_id: str | None
    currency: str
    kind: str
    route_ids: frozenset[str] | None
    bands: tuple[tuple[int | None, int], ...]  # (up_to_m or None, amount)
    od: dict[tuple[str, str], int]
    rider_percent: dict[str, int] | None

    def price(self, *, route_id: str, from_stop: str, to_stop: str, from_parent: str | None,
              to_parent: str | None, distance_m: float | None, rider_category: str) -> tuple[Money | None, str | None]:
        """(price, None) or (None, reason) for one leg; ids are un-namespaced."""
        if self.route_ids is not None and route_id not in self.route_ids:
            return None, f"operator fare table of {self.feed_id} does not cover route {route_id}"
        if self.rider_percent is not None and rider_category not in self.rider_percent:
            return None, f"operator fare table of {self.feed_id} sells no fare for rider category {rider_category}"
        amount: int | None = None
        if self.kind == "distance_bands":
            if distance_m is None:
                return None, "leg has no distance_m for the distance-band fare table"
            for up_to, a in self.bands:
                if up_to is None or distance_m <= up_to:
                    amount = a
                    break
            if amount is None:
                return None, f"leg distance {distance_m} m is beyond the fare table's last band"
        else:
            for f in (from_stop, from_parent):
                for t in (to_stop, to_parent):
                    if f is not None and t is not None and (f, t) in self.od:
                        amount = self.od[(f, t)]
                        break
                if amount is not None:
                    break
            if amount is None:
                return None, f"operator fare table of {self.feed_id} has no fare from {from_stop} to {to_stop}"
        if self.rider_percent is not None:
            from ticketing.fares.money import scale_minor

            amount = scale_minor(amount, self.rider_percent[rider_category])
        return Money(amount, self.currency), None


def _load(source: str | Path | dict[str, Any] | None, what: str) -> dict[str, Any] | None:
    if source is None:
        return None
    if isinstance(source, dict):
        return source
    path = Path(source)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FareDataError(f"{what}: {path} not found", details={"path": str(path)}) from None
    except json.JSONDecodeError as e:
        raise FareDataError(f"{what}: {path} line {e.lineno}: {e.msg}", details={"path": str(path)}) from None


def _money(obj: Any, where: str) -> Money:
    if not isinstance(obj, dict) or not isinstance(obj.get("amount"), int) or isinstance(obj.get("amount"), bool) \
            or not isinstance(obj.get("currency"), str):
        raise FareDataError(f"{where}: expected {{\"amount\": <int minor units>, \"currency\": \"CNY\"}}",
                            details={"where": where})
    return Money(obj["amount"], obj["currency"].upper())


def load_agreements(source: str | Path | dict[str, Any] | None) -> list[Agreement]:
    """Parses interoperator agreements from a JSON file path or a dict; ``None`` -> ``[]``."""
    doc = _load(source, "fare agreements")
    if doc is None:
        return []
    out = []
    rules = doc.get("transfer_rules")
    if not isinstance(rules, list):
        raise FareDataError("fare agreements: 'transfer_rules' must be a list", details={})
    for i, r in enumerate(rules):
        where = f"fare agreements transfer_rules[{i}]"
        try:
            aid = str(r["agreement_id"])
            from_ids = frozenset(r["from_leg_group_ids"])
            to_ids = frozenset(r["to_leg_group_ids"])
        except (KeyError, TypeError):
            raise FareDataError(f"{where}: needs agreement_id, from_leg_group_ids, to_leg_group_ids",
                                details={"where": where}) from None
        for ref in from_ids | to_ids:
            if not isinstance(ref, str) or ":" not in ref:
                raise FareDataError(f"{where}: leg group {ref!r} must be '<feed_id>:<leg_group_id>'",
                                    details={"where": where})
        dlt = r.get("duration_limit_type", 1)
        if dlt not in (0, 1, 2, 3):
            raise FareDataError(f"{where}: duration_limit_type must be 0..3", details={"where": where})
        limit = r.get("duration_limit")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise FareDataError(f"{where}: duration_limit must be a non-negative int (s)", details={"where": where})
        media = r.get("fare_media_ids")
        cats = r.get("rider_categories")
        out.append(Agreement(aid, from_ids, to_ids, limit, dlt, _money(r.get("discount"), f"{where}.discount"),
                             frozenset(media) if media is not None else None,
                             frozenset(cats) if cats is not None else None))
    return out


def load_operator_tables(source: str | Path | dict[str, Any] | None) -> dict[str, OperatorTable]:
    """Parses operator fare tables (JSON path or dict); returns ``{feed_id: table}``."""
    doc = _load(source, "operator fare tables")
    if doc is None:
        return {}
    tables = doc.get("tables")
    if not isinstance(tables, list):
        raise FareDataError("operator fare tables: 'tables' must be a list", details={})
    out: dict[str, OperatorTable] = {}
    for i, t in enumerate(tables):
        where = f"operator fare tables[{i}]"
        kind = t.get("kind")
        feed_id = t.get("feed_id")
        currency = t.get("currency")
        if kind not in ("distance_bands", "od") or not isinstance(feed_id, str) or not isinstance(currency, str):
            raise FareDataError(f"{where}: needs feed_id, currency and kind 'distance_bands' or 'od'",
                                details={"where": where})
        bands: list[tuple[int | None, int]] = []
        od: dict[tuple[str, str], int] = {}
        if kind == "distance_bands":
            last = -1
            for j, b in enumerate(t.get("bands") or []):
                up, amount = b.get("up_to_m"), b.get("amount")
                if not isinstance(amount, int) or amount < 0 or (up is not None and (not isinstance(up, (int, float))
                                                                                   or up <= last)):
                    raise FareDataError(f"{where}.bands[{j}]: needs increasing up_to_m and int amount >= 0",
                                        details={"where": where})
                bands.append((up, amount))
                last = up if up is not None else last
            if not bands:
                raise FareDataError(f"{where}: distance_bands table without bands", details={"where": where})
        else:
            for j, f in enumerate(t.get("fares") or []):
                a, b, amount = f.get("from_stop_id"), f.get("to_stop_id"), f.get("amount")
                if not isinstance(a, str) or not isinstance(b, str) or not isinstance(amount, int) or amount < 0:
                    raise FareDataError(f"{where}.fares[{j}]: needs from_stop_id, to_stop_id, int amount >= 0",
                                        details={"where": where})
                od[(a, b)] = amount
                if f.get("symmetric", True):
                    od.setdefault((b, a), amount)
        cats = t.get("rider_categories")
        percent = None
        if cats is not None:
            percent = {}
            for c, spec in cats.items():
                p = spec.get("percent") if isinstance(spec, dict) else None
                if not isinstance(p, int) or p < 0:
                    raise FareDataError(f"{where}.rider_categories.{c}: needs int percent >= 0",
                                        details={"where": where})
                percent[c] = p
        routes = t.get("route_ids")
        out[feed_id] = OperatorTable(feed_id, t.get("operator_id"), currency.upper(), kind,
                                     frozenset(routes) if routes is not None else None, tuple(bands), od, percent)
    return out
