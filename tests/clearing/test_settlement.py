"""Settlement runs over the ledger: recognition, refunds, commission, late events, idempotency, atomicity."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from clearing import ledger, settlement
from clearing.agreements import create_agreement, set_commission
from clearing.apportionment import Agreement, Method
from clearing.errors import InvalidPeriod, PeriodOverlaps
from clearing.interface import record_expiry
from clearing.models import ClearingLeg, RunEntry, SettlementLine, SettlementRun, SettleQueue
from tests.clearing.builders import at, refund, sale, use

D1 = dt.date(2026, 3, 2)
D2 = dt.date(2026, 3, 3)
D3 = dt.date(2026, 3, 4)


def _setup_terms(session) -> None:  # noqa: ANN001
    set_commission(session, term_id="c-bus", operator_id="bus", rate_bp=500, valid_from=dt.date(2026, 1, 1))
    set_commission(session, term_id="c-metro", operator_id="metro", rate_bp=300, fixed_per_leg=2,
                   valid_from=dt.date(2026, 1, 1))


def _by_op(session, run_id):  # noqa: ANN001, ANN202
    return {o.operator_id: o for o in settlement.run_operators(session, run_id)}


def test_run_recognises_used_and_expired_legs_and_refunds_on_their_dates(session) -> None:  # noqa: ANN001
    _setup_terms(session)
    t1 = sale(session, 500, [("bus", 3_000, 200), ("metro", 9_000, 400)], day=D1)  # shares 167 / 333
    use(session, t1, 0)
    record_expiry(session, leg_id=t1.legs[1].leg_id, expired_at=at(D2, 0))
    t2 = sale(session, 300, [("metro", 5_000, 300)], day=D1)
    refund(session, t2, [0], 250, when=at(D1, 12))
    t3 = sale(session, 200, [("bus", 1_000, 200)], day=D2)  # next period: not in this run
    use(session, t3, 0)
    session.commit()

    run, created = settlement.run_settlement(session, period_start=D1, period_end=D2)
    session.commit()
    assert created and run.status == "closed" and len(run.digest) == 64
    ops = _by_op(session, run.run_id)
    assert (ops["bus"].gross, ops["bus"].commission, ops["bus"].refunds) == (167, 8, 0)
    assert (ops["metro"].gross, ops["metro"].commission, ops["metro"].refunds) == (633, 12, 250)
    for o in ops.values():
        assert o.net_payable == o.gross - o.refunds - o.commission + o.adjustments
    assert run.gross == 800 and run.lines == 3
    # What passengers paid for the settled tickets is exactly nets + commission + refunds.
    assert run.net_payable + run.commission + run.refunds == 500 + 300
    # The payout cleared what was settled; t3 (next period, 200 less 5 % commission) is still owed.
    assert ledger.balance(session, ledger.payable("bus")) == -190
    assert ledger.balance(session, ledger.payable("metro")) == 0
    assert ledger.unbalanced_entries(session) == []
    assert sum(ledger.balances(session).values()) == 0
    assert settlement.recompute_digest(session, run.run_id) == run.digest


def test_same_period_returns_the_same_run_and_overlaps_are_refused(session) -> None:  # noqa: ANN001
    t = sale(session, 400, [("bus", 1, 1)], day=D1)
    use(session, t, 0)
    session.commit()
    run, _ = settlement.run_settlement(session, period_start=D1, period_end=D2)
    session.commit()
    again, created = settlement.run_settlement(session, period_start=D1, period_end=D2)
    assert not created and again.run_id == run.run_id and again.digest == run.digest
    with pytest.raises(PeriodOverlaps):
        settlement.run_settlement(session, period_start=D1, period_end=D3)
    with pytest.raises(InvalidPeriod):
        settlement.run_settlement(session, period_start=D2, period_end=D2)


def test_late_events_land_as_adjustments_in_the_next_run(session) -> None:  # noqa: ANN001
    t = sale(session, 600, [("bus", 1, 300), ("metro", 1, 300)], day=D1)
    use(session, t, 0)
    session.commit()
    first, _ = settlement.run_settlement(session, period_start=D1, period_end=D2)
    session.commit()
    # After D1 closed: the metro leg's use and a refund dated D1 arrive.
    use(session, t, 1, when=at(D1, 20))
    t2 = sale(session, 100, [("bus", 1, 100)], day=D1)
    refund(session, t2, [0], 100, when=at(D1, 21))
    session.commit()
    assert _by_op(session, first.run_id)["bus"].gross == 300  # the closed run did not change
    # Only the unsettled entries wait in the queue: the metro use and the refund.
    assert session.exec(select(sa.func.count()).select_from(SettleQueue)).one() == 2
    second, _ = settlement.run_settlement(session, period_start=D2, period_end=D3)
    session.commit()
    ops = _by_op(session, second.run_id)
    assert ops["metro"].gross == 0 and ops["metro"].adjustments == 300
    assert ops["bus"].refunds == 0 and ops["bus"].adjustments == 0  # gross 100 - refund 100, as an adjustment
    lines = session.exec(select(SettlementLine).where(SettlementLine.run_id == second.run_id)).all()
    assert {line.kind for line in lines} == {"adjustment"}
    assert settlement.recompute_digest(session, second.run_id) == second.digest
    assert session.exec(select(sa.func.count()).select_from(SettleQueue)).one() == 0


def test_a_failure_partway_leaves_nothing_written(session, monkeypatch) -> None:  # noqa: ANN001
    t = sale(session, 400, [("bus", 1, 1)], day=D1)
    use(session, t, 0)
    session.commit()

    def boom(stage: str) -> None:
        if stage == "lines":
            raise RuntimeError("crash in the middle of the run")

    monkeypatch.setattr(settlement, "_checkpoint", boom)
    with pytest.raises(RuntimeError):
        settlement.run_settlement(session, period_start=D1, period_end=D2)
    session.rollback()
    for model in (SettlementRun, RunEntry, SettlementLine):
        assert session.exec(select(sa.func.count()).select_from(model)).one() == 0
    assert session.exec(select(sa.func.count()).select_from(SettleQueue)).one() == 1  # still due
    monkeypatch.setattr(settlement, "_checkpoint", lambda stage: None)
    run, created = settlement.run_settlement(session, period_start=D1, period_end=D2)
    assert created and run.gross == 400


def test_agreement_in_force_decides_the_split(session) -> None:  # noqa: ANN001
    create_agreement(session, Agreement("bm-pct", Method.percentage, operator_ids=frozenset({"bus", "metro"}),
                                        shares_bp={"bus": 3_000, "metro": 7_000}, valid_from=dt.date(2026, 3, 1),
                                        valid_until=dt.date(2026, 3, 3)))
    t1 = sale(session, 1_000, [("bus", 1, 500), ("metro", 1, 500)], day=D1)   # in force: 30/70
    t2 = sale(session, 1_000, [("bus", 1, 500), ("metro", 1, 500)], day=D3)   # expired: default by fare 50/50
    for t in (t1, t2):
        use(session, t, 0)
        use(session, t, 1)
    session.commit()
    run, _ = settlement.run_settlement(session, period_start=D1, period_end=dt.date(2026, 3, 5))
    ops = _by_op(session, run.run_id)
    assert ops["bus"].gross == 300 + 500 and ops["metro"].gross == 700 + 500


def test_server_side_digest_equals_the_python_reference(session) -> None:  # noqa: ANN001
    for n in range(6):
        t = sale(session, 1_000 + n, [("bus", 1, 300), ("metro", 2, 700), ("ferry", 1, 1)], day=D1)
        use(session, t, 0)
        use(session, t, 1)
        refund(session, t, [2], 1, when=at(D1, 11))
    session.commit()
    run, _ = settlement.run_settlement(session, period_start=D1, period_end=D2)
    assert run.lines == 18
    assert settlement.stored_digest(session, run.run_id) == settlement.stored_digest(
        session, run.run_id, server=False) == run.digest


_example = iter(range(10_000))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(
    st.integers(0, 5_000),                                                     # paid
    st.lists(st.tuples(st.sampled_from(["bus", "metro", "coach"]), st.integers(0, 3_000), st.sampled_from("uer")),
             min_size=1, max_size=4),                                          # legs: operator, fare, outcome
    st.integers(0, 100)), min_size=1, max_size=6))                            # refund percentage
def test_random_tickets_settle_to_what_passengers_paid(session, tickets) -> None:  # noqa: ANN001
    """Conservation over random tickets: nets + commission + refunds = paid; each line and operator adds up."""
    day = dt.date(2027, 1, 1) + dt.timedelta(days=2 * next(_example))
    terms = {"bus": (500, 1), "metro": (0, 3), "coach": (1_250, 0)}
    for op, (bp, fixed) in terms.items():
        set_commission(session, term_id=f"{op}-{day}", operator_id=op, rate_bp=bp, fixed_per_leg=fixed, valid_from=day,
                       valid_until=day + dt.timedelta(days=1))
    paid_total = refunded_total = 0
    for paid, legs, pct in tickets:
        t = sale(session, paid, [(op, 1, fare) for op, fare, _ in legs], day=day)
        paid_total += paid
        refunded = [i for i, (_, _, o) in enumerate(legs) if o == "r"]
        for i, (_, _, outcome) in enumerate(legs):
            if outcome == "u":
                use(session, t, i)
            elif outcome == "e":
                record_expiry(session, leg_id=t.legs[i].leg_id, expired_at=at(day, 23))
        if refunded:
            shares = sum(session.get(ClearingLeg, t.legs[i].leg_id).share for i in refunded)
            amount = shares * pct // 100
            refund(session, t, refunded, amount, when=at(day, 12))
            refunded_total += amount
    run, _ = settlement.run_settlement(session, period_start=day, period_end=day + dt.timedelta(days=1),
                                       now=at(day + dt.timedelta(days=1), 3))  # the day has ended
    assert run.refunds == refunded_total
    assert run.net_payable + run.commission + run.refunds == paid_total
    for line in session.exec(select(SettlementLine).where(SettlementLine.run_id == run.run_id)):
        assert line.net == line.gross - line.refunds - line.commission + line.adjustments
        assert 0 <= line.commission <= line.gross and 0 <= line.refunds <= line.gross
    assert settlement.recompute_digest(session, run.run_id) == run.digest
    assert ledger.unbalanced_entries(session) == []
    session.rollback()


def test_daily_task_closes_yesterday_once(session) -> None:  # noqa: ANN001
    from clearing.tasks import settle_previous_day

    t = sale(session, 250, [("bus", 1, 250)], day=D1)
    use(session, t, 0)
    now = at(D2, 3)
    first = settle_previous_day(session, now=now)
    again = settle_previous_day(session, now=now)
    assert " closed:" in first and "already closed" in again and "net 250" in first
