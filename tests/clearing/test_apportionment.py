"""Apportionment: conservation, determinism, non-negativity and monotonicity over random tickets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.apportionment import (
    Agreement, Leg, Method, apportion, largest_remainder, largest_remainder_batch,
)
from clearing.errors import ApportionmentError, InvalidAgreement

OPS = ["bus", "metro", "coach", "ferry"]
amounts = st.integers(min_value=0, max_value=10_000_000)
weight_lists = st.lists(st.integers(min_value=0, max_value=1_000_000), min_size=1, max_size=8)
legs_st = st.lists(st.builds(Leg, st.sampled_from(OPS), st.integers(0, 500_000), st.integers(0, 50_000)),
                   min_size=1, max_size=6)


@st.composite
def agreements(draw):  # noqa: ANN001, ANN201
    method = draw(st.sampled_from(list(Method)))
    if method is Method.distance:
        return Agreement("a", method)
    if method is Method.standalone_fare:
        return Agreement("a", method, discount_borne_by=draw(st.none() | st.sampled_from(OPS)))
    if method is Method.fixed:
        carrier = draw(st.none() | st.sampled_from(OPS))
        fixed = {op: draw(st.integers(0, 5_000)) for op in OPS if op != carrier}
        return Agreement("a", method, operator_ids=frozenset(OPS), fixed_amounts=fixed, remainder_operator=carrier)
    cuts = sorted(draw(st.lists(st.integers(0, 10_000), min_size=3, max_size=3)))
    bps = [cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], 10_000 - cuts[2]]
    return Agreement("a", method, operator_ids=frozenset(OPS), shares_bp=dict(zip(OPS, bps, strict=True)))


@settings(max_examples=300, deadline=None)
@given(amounts, legs_st, agreements())
def test_parts_conserve_the_amount_and_are_never_negative(amount, legs, agreement) -> None:  # noqa: ANN001
    parts = apportion(amount, legs, agreement)
    assert len(parts) == len(legs)
    assert sum(parts) == amount
    assert all(isinstance(p, int) and p >= 0 for p in parts)
    assert apportion(amount, list(legs), agreement) == parts  # deterministic


@settings(max_examples=300, deadline=None)
@given(amounts, weight_lists)
def test_largest_remainder_is_within_one_unit_and_monotone_in_weight(amount, weights) -> None:  # noqa: ANN001
    parts = largest_remainder(amount, weights)
    assert sum(parts) == amount
    total = sum(weights) or len(weights)
    ws = weights if sum(weights) else [1] * len(weights)
    for p, w in zip(parts, ws, strict=True):
        exact = amount * w / total
        assert exact - 1 < p < exact + 1
    for i in range(len(ws)):
        for j in range(len(ws)):
            if ws[i] > ws[j]:
                assert parts[i] >= parts[j]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(amounts, weight_lists), min_size=1, max_size=30))
def test_vectorised_batch_equals_the_scalar_split(tickets) -> None:  # noqa: ANN001
    counts = [len(w) for _, w in tickets]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    batch = largest_remainder_batch(np.array([a for a, _ in tickets]), offsets,
                                    np.concatenate([np.array(w) for _, w in tickets]))
    expected = [p for a, w in tickets for p in largest_remainder(a, w)]
    assert batch.tolist() == expected


def test_ties_go_to_the_earlier_leg() -> None:
    assert largest_remainder(100, [1, 1, 1]) == [34, 33, 33]
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]
    assert largest_remainder(5, [0, 0]) == [3, 2]


def test_distance_split_follows_leg_lengths() -> None:
    legs = [Leg("bus", 3_000, None), Leg("metro", 9_000, None)]
    assert apportion(400, legs, Agreement("d", Method.distance)) == [100, 300]


def test_standalone_fare_discount_borne_proportionally_by_default() -> None:
    # 2 CNY bus + 4 CNY metro, 1 CNY transfer discount: paid 5 CNY.
    legs = [Leg("bus", None, 200), Leg("metro", None, 400)]
    assert apportion(500, legs, Agreement("s", Method.standalone_fare)) == [167, 333]


def test_standalone_fare_discount_borne_by_a_named_operator() -> None:
    legs = [Leg("bus", None, 200), Leg("metro", None, 400)]
    assert apportion(500, legs, Agreement("s", Method.standalone_fare, discount_borne_by="metro")) == [200, 300]
    # The bearer cannot absorb it: proportional again.
    assert apportion(100, legs, Agreement("s", Method.standalone_fare, discount_borne_by="bus")) == [33, 67]


def test_fixed_amounts_with_remainder_to_the_carrier() -> None:
    a = Agreement("f", Method.fixed, operator_ids=frozenset({"bus", "coach"}), fixed_amounts={"bus": 150},
                  remainder_operator="coach")
    assert apportion(3_000, [Leg("bus"), Leg("coach"), Leg("bus")], a) == [150, 2_700, 150]
    # Less paid than the fixed amounts (a concession): split in proportion to them, the carrier gets nothing.
    assert apportion(200, [Leg("bus"), Leg("coach"), Leg("bus")], a) == [100, 0, 100]


def test_percentage_shares_renormalise_over_operators_present() -> None:
    a = Agreement("p", Method.percentage, operator_ids=frozenset({"bus", "metro", "ferry"}),
                  shares_bp={"bus": 2_000, "metro": 6_000, "ferry": 2_000})
    assert apportion(1_000, [Leg("bus"), Leg("metro"), Leg("metro")], a) == [250, 375, 375]


def test_invalid_agreements_and_inputs_are_refused() -> None:
    with pytest.raises(InvalidAgreement):
        Agreement("p", Method.percentage, operator_ids=frozenset({"a", "b"}), shares_bp={"a": 5_000, "b": 4_000})
    with pytest.raises(InvalidAgreement):
        Agreement("f", Method.fixed, operator_ids=frozenset({"a", "b"}), fixed_amounts={"a": 1})
    with pytest.raises(ApportionmentError) as exc:
        apportion(100, [Leg("a", None, None)], Agreement("d", Method.distance))
    assert exc.value.code == "apportionment_failed"
    with pytest.raises(ApportionmentError):
        apportion(100, [Leg("z")], Agreement("p", Method.percentage, operator_ids=frozenset({"a"}),
                                             shares_bp={"a": 10_000}))
    with pytest.raises(ApportionmentError):
        largest_remainder(-1, [1])


def test_default_agreement_falls_back_to_distance_then_equal_shares() -> None:
    from clearing.apportionment import DEFAULT_AGREEMENT

    assert apportion(600, [Leg("bus", 1_000, 100), Leg("metro", 5_000, 200)], DEFAULT_AGREEMENT) == [200, 400]
    assert apportion(600, [Leg("bus", 1_000, None), Leg("metro", 5_000, 200)], DEFAULT_AGREEMENT) == [100, 500]
    assert apportion(601, [Leg("bus", None, None), Leg("metro", 5_000, 200)], DEFAULT_AGREEMENT) == [301, 300]


@settings(max_examples=200, deadline=None)
@given(amounts, st.lists(st.builds(Leg, st.sampled_from(OPS), st.none() | st.integers(0, 500_000),
                                   st.none() | st.integers(0, 50_000)), min_size=1, max_size=6))
def test_default_agreement_conserves_whatever_the_legs_carry(amount, legs) -> None:  # noqa: ANN001
    from clearing.apportionment import DEFAULT_AGREEMENT

    parts = apportion(amount, legs, DEFAULT_AGREEMENT)
    assert sum(parts) == amount and min(parts) >= 0 and parts == apportion(amount, legs, DEFAULT_AGREEMENT)
