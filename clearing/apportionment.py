"""Revenue apportionment: split a ticket's paid amount among its legs' operators.

Pure functions over plain data; no database. An `Agreement` (data, stored in
``clearing_agreements``) names the method:

``distance``
    parts proportional to each leg's ``distance_m``.
``standalone_fare``
    parts proportional to what each leg would cost alone. The transfer
    discount (sum of standalone fares minus the amount paid) is borne
    proportionally, or wholly by ``discount_borne_by`` when that operator
    is on the ticket and its legs can absorb it.
``fixed``
    each listed operator's leg gets its fixed amount; the remainder goes to
    the ``remainder_operator`` (its legs share it equally). When the
    remainder would be negative (a discounted ticket) or the remainder
    carrier is not on the ticket, the amount is split in proportion to the
    fixed amounts instead.
``percentage``
    operators present get ``shares_bp`` (basis points, renormalised over
    the operators on the ticket); an operator's part is split equally
    among its legs.

With no stored agreement covering a ticket, `DEFAULT_AGREEMENT` splits by
standalone fare, else by distance, else equally (whatever the legs carry).

Rounding is by largest remainder on integer minor units: every part is the
floor of its exact share, and the units left over go to the largest
fractional remainders, ties to the earlier leg. The parts always sum to the
amount, are never negative, and the same input always gives the same parts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from clearing.errors import ApportionmentError, InvalidAgreement

__all__ = [
    "DEFAULT_AGREEMENT", "Agreement", "Leg", "Method", "apportion", "largest_remainder",
    "largest_remainder_batch",
]


class Method(StrEnum):
    distance = "distance"
    standalone_fare = "standalone_fare"
    fixed = "fixed"
    percentage = "percentage"


@dataclass(frozen=True)
class Leg:
    """What apportionment needs of a ticket leg. Money in minor units, distance in metres."""

    operator_id: str
    distance_m: int | None = None
    standalone_fare: int | None = None


@dataclass(frozen=True)
class Agreement:
    """An apportionment agreement between operators (or network-wide when ``operator_ids`` is None).

    Valid on dates ``valid_from <= d < valid_until`` (``valid_until`` None: open-ended).
    ``fixed_amounts`` are minor units per leg; ``shares_bp`` basis points (sum 10 000).
    """

    agreement_id: str
    method: Method
    operator_ids: frozenset[str] | None = None
    fixed_amounts: Mapping[str, int] = field(default_factory=dict)
    remainder_operator: str | None = None
    shares_bp: Mapping[str, int] = field(default_factory=dict)
    discount_borne_by: str | None = None
    valid_from: dt.date = dt.date(1970, 1, 1)
    valid_until: dt.date | None = None
    priority: int = 0
    #: When the method's input is missing on some leg: split by standalone fare, else distance, else equally
    #: (instead of raising). Only the built-in default does this; a stored agreement is applied as written.
    fallback: bool = False

    def __post_init__(self) -> None:
        method = Method(self.method)
        object.__setattr__(self, "method", method)
        if self.operator_ids is not None:
            object.__setattr__(self, "operator_ids", frozenset(self.operator_ids))
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise InvalidAgreement("valid_until must be after valid_from",
                                   details={"agreement_id": self.agreement_id})
        if method is Method.fixed:
            if not self.operator_ids:
                raise InvalidAgreement("a fixed-amount agreement names its operators",
                                       details={"agreement_id": self.agreement_id})
            if any(not _is_int(v) or v < 0 for v in self.fixed_amounts.values()):
                raise InvalidAgreement("fixed amounts are non-negative integers (minor units)",
                                       details={"agreement_id": self.agreement_id})
            if self.remainder_operator is not None and self.remainder_operator not in self.operator_ids:
                raise InvalidAgreement("the remainder carrier must be one of the agreement's operators",
                                       details={"agreement_id": self.agreement_id})
            uncovered = set(self.operator_ids) - set(self.fixed_amounts) - {self.remainder_operator}
            if uncovered:
                raise InvalidAgreement("every operator needs a fixed amount or to be the remainder carrier",
                                       details={"agreement_id": self.agreement_id, "operators": sorted(uncovered)})
        if method is Method.percentage:
            if not self.operator_ids or set(self.shares_bp) != set(self.operator_ids):
                raise InvalidAgreement("a percentage agreement gives a share to exactly its operators",
                                       details={"agreement_id": self.agreement_id})
            if any(not _is_int(v) or v < 0 for v in self.shares_bp.values()) or sum(self.shares_bp.values()) != 10_000:
                raise InvalidAgreement("shares are non-negative basis points summing to 10000",
                                       details={"agreement_id": self.agreement_id})

    def covers(self, operator_ids: set[str] | frozenset[str]) -> bool:
        return self.operator_ids is None or set(operator_ids) <= self.operator_ids

    def in_force(self, on: dt.date) -> bool:
        return self.valid_from <= on and (self.valid_until is None or on < self.valid_until)


#: Used when no stored agreement covers a ticket: split by standalone fare (discount borne proportionally);
#: where a fare is unknown, by distance; where that is unknown too, equally.
DEFAULT_AGREEMENT = Agreement(agreement_id="default", method=Method.standalone_fare, fallback=True)


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def largest_remainder(amount: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount`` (int >= 0) in proportion to integer ``weights`` (>= 0).

    All-zero weights split equally. Ties in the fractional remainder go to
    the earlier position. Returns one int per weight; they sum to ``amount``.
    """
    if not _is_int(amount) or amount < 0:
        raise ApportionmentError("the amount to split is a non-negative integer", details={"amount": str(amount)})
    if not weights:
        raise ApportionmentError("nothing to split the amount among")
    if any(not _is_int(w) or w < 0 for w in weights):
        raise ApportionmentError("weights are non-negative integers", details={"weights": [str(w) for w in weights]})
    ws = [int(w) for w in weights]
    total = sum(ws)
    if total == 0:
        ws = [1] * len(ws)
        total = len(ws)
    floors = [amount * w // total for w in ws]
    rems = [amount * w % total for w in ws]
    left = amount - sum(floors)
    # Python ints: exact for any size, so the batch version's int64 limits do not apply here.
    for i in sorted(range(len(ws)), key=lambda i: (-rems[i], i))[:left]:
        floors[i] += 1
    return floors


def largest_remainder_batch(amounts: np.ndarray, offsets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Vectorised `largest_remainder` over many tickets at once.

    Parameters
    ----------
    amounts : int64 (n_tickets,), minor units >= 0.
    offsets : int64 (n_tickets + 1,), CSR offsets: ticket t owns weights[offsets[t]:offsets[t+1]],
        every ticket at least one leg.
    weights : int64 (n_legs,), >= 0; a ticket whose weights are all zero splits equally.
        ``amount * weight`` must fit in int64 (e.g. 10^7 fen x 10^9 m).

    Returns
    -------
    int64 (n_legs,): the parts, identical to `largest_remainder` per ticket.
    """
    amounts = np.asarray(amounts, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    n_tickets = amounts.shape[0]
    if offsets.shape != (n_tickets + 1,) or offsets[0] != 0 or offsets[-1] != weights.shape[0]:
        raise ApportionmentError("offsets must be CSR offsets over the weights")
    counts = np.diff(offsets)
    if n_tickets and counts.min() < 1:
        raise ApportionmentError("every ticket needs at least one leg")
    if (amounts < 0).any() or (weights < 0).any():
        raise ApportionmentError("amounts and weights are non-negative")
    if n_tickets == 0:
        return np.zeros(0, dtype=np.int64)
    ticket = np.repeat(np.arange(n_tickets), counts)
    totals = np.add.reduceat(weights, offsets[:-1])
    zero = totals == 0
    if zero.any():
        weights = np.where(zero[ticket], 1, weights)
        totals = np.where(zero, counts, totals)
    num = amounts[ticket] * weights
    floors = num // totals[ticket]
    rems = num % totals[ticket]
    left = amounts - np.add.reduceat(floors, offsets[:-1])
    position = np.arange(weights.shape[0]) - offsets[ticket]
    order = np.lexsort((position, -rems, ticket))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0]) - offsets[ticket[order]]
    return floors + (rank < left[ticket]).astype(np.int64)


def apportion(amount: int, legs: Sequence[Leg], agreement: Agreement = DEFAULT_AGREEMENT) -> list[int]:
    """Split ``amount`` (minor units) among ``legs`` by ``agreement``; one part per leg, in leg order."""
    if not legs:
        raise ApportionmentError("a ticket has at least one leg")
    operators = {leg.operator_id for leg in legs}
    if not agreement.covers(operators):
        raise ApportionmentError("the agreement does not cover every operator on the ticket",
                                 details={"agreement_id": agreement.agreement_id,
                                          "operators": sorted(operators - set(agreement.operator_ids or ()))})
    method = agreement.method
    if agreement.fallback:
        if all(leg.standalone_fare is not None for leg in legs):
            return _by_standalone_fare(amount, legs, agreement)
        if all(leg.distance_m is not None for leg in legs):
            return largest_remainder(amount, [int(leg.distance_m or 0) for leg in legs])
        return largest_remainder(amount, [1] * len(legs))
    if method is Method.distance:
        return largest_remainder(amount, _required(legs, "distance_m", agreement))
    if method is Method.standalone_fare:
        return _by_standalone_fare(amount, legs, agreement)
    if method is Method.fixed:
        return _by_fixed_amounts(amount, legs, agreement)
    return _by_percentage(amount, legs, agreement)


def _required(legs: Sequence[Leg], attr: str, agreement: Agreement) -> list[int]:
    values = [getattr(leg, attr) for leg in legs]
    missing = [i for i, v in enumerate(values) if v is None]
    if missing:
        raise ApportionmentError(f"the agreement splits by {attr} but some legs have none",
                                 details={"agreement_id": agreement.agreement_id, "legs": missing})
    return values


def _by_standalone_fare(amount: int, legs: Sequence[Leg], agreement: Agreement) -> list[int]:
    fares = _required(legs, "standalone_fare", agreement)
    bearer = agreement.discount_borne_by
    discount = sum(fares) - amount
    if bearer is None or discount <= 0:
        return largest_remainder(amount, fares)
    bearing = [i for i, leg in enumerate(legs) if leg.operator_id == bearer]
    absorbable = sum(fares[i] for i in bearing)
    if not bearing or absorbable < discount:
        # The named bearer is absent or too small to absorb it: fall back to the proportional default.
        return largest_remainder(amount, fares)
    parts = list(fares)
    for i, part in zip(bearing, largest_remainder(absorbable - discount, [fares[i] for i in bearing]), strict=True):
        parts[i] = part
    return parts


def _by_fixed_amounts(amount: int, legs: Sequence[Leg], agreement: Agreement) -> list[int]:
    carrier = agreement.remainder_operator
    fixed = [0 if leg.operator_id == carrier else int(agreement.fixed_amounts[leg.operator_id]) for leg in legs]
    carrier_legs = [i for i, leg in enumerate(legs) if leg.operator_id == carrier]
    remainder = amount - sum(fixed)
    if not carrier_legs or remainder < 0:
        weights = [int(agreement.fixed_amounts.get(leg.operator_id, 0)) for leg in legs]
        return largest_remainder(amount, weights)
    parts = list(fixed)
    for i, part in zip(carrier_legs, largest_remainder(remainder, [1] * len(carrier_legs)), strict=True):
        parts[i] = part
    return parts


def _by_percentage(amount: int, legs: Sequence[Leg], agreement: Agreement) -> list[int]:
    present: list[str] = []
    for leg in legs:
        if leg.operator_id not in present:
            present.append(leg.operator_id)
    operator_parts = largest_remainder(amount, [int(agreement.shares_bp[op]) for op in present])
    parts = [0] * len(legs)
    for op, op_part in zip(present, operator_parts, strict=True):
        idx = [i for i, leg in enumerate(legs) if leg.operator_id == op]
        for i, part in zip(idx, largest_remainder(op_part, [1] * len(idx)), strict=True):
            parts[i] = part
    return parts
