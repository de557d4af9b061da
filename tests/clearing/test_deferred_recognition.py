"""Used legs recognised off the gate's path: the validation row is the durable fact, a job posts the money.

A gate admission only writes the use (`queue_use`, one statement); `recognise_pending_uses` (the job
``clearing.recognise_uses``, and every settlement run, refund and expiry before it reads a leg's state)
posts the recognition entries in batches. Injected faults: the job crashes after some batches were
committed, or inside a batch after its entries were posted; rerunning it leaves the ledger exact to the
fen, each leg recognised once.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from clearing import interface, ledger, settlement, tasks
from clearing.agreements import commission_amount, set_commission
from clearing.errors import InvalidRecord, LegClosed, UnknownLeg
from clearing.interface import UseRecord, queue_use, record_expiry, record_use, recognise_pending_uses
from clearing.models import ClearingLeg, JournalEntry, JournalLine, Validation
from tests.clearing.builders import at, refund, sale

D = dt.date(2026, 3, 2)
D2 = D + dt.timedelta(days=1)


class Crash(RuntimeError):
    pass


def _terms(session) -> None:  # noqa: ANN001
    set_commission(session, term_id="c-bus", operator_id="bus", rate_bp=500, valid_from=dt.date(2026, 1, 1))
    set_commission(session, term_id="c-metro", operator_id="metro", rate_bp=300, fixed_per_leg=2,
                   valid_from=dt.date(2026, 1, 1))


def _queue(session, record, index: int) -> UseRecord:  # noqa: ANN001
    leg = record.legs[index]
    u = UseRecord(leg.leg_id, record.ticket_id, leg.operator_id, at(leg.service_date, 8), "gate1")
    queue_use(session, u)
    return u


def _expected(session, leg_ids: list[str]) -> dict[str, int]:  # noqa: ANN001
    """What recognising ``leg_ids`` must post, computed independently: payable and commission per operator."""
    rates = {"bus": (500, 0), "metro": (300, 2)}
    out: dict[str, int] = {}
    for leg in session.query(ClearingLeg).filter(ClearingLeg.leg_id.in_(leg_ids)):
        fee = commission_amount(leg.share, *rates.get(leg.operator_id, (0, 0)))
        out[ledger.payable(leg.operator_id)] = out.get(ledger.payable(leg.operator_id), 0) - (leg.share - fee)
        out[ledger.COMMISSION] = out.get(ledger.COMMISSION, 0) - fee
        out[ledger.deferred(leg.operator_id)] = out.get(ledger.deferred(leg.operator_id), 0) + leg.share
    return out


def _close_counts(session) -> dict[str, int]:  # noqa: ANN001
    rows = session.execute(sa.select(JournalLine.leg_id, sa.func.count()).where(JournalLine.purpose == "close")
                           .group_by(JournalLine.leg_id)).all()
    return {leg: n for leg, n in rows}


def _recognition_balances(session) -> dict[str, int]:  # noqa: ANN001
    stmt = (sa.select(JournalLine.account_id, sa.func.sum(JournalLine.amount))
            .join(JournalEntry, JournalEntry.entry_id == JournalLine.entry_id)
            .where(JournalEntry.kind == "recognition").group_by(JournalLine.account_id))
    return {a: int(v) for a, v in session.execute(stmt).all() if v}


def test_a_queued_use_moves_no_money_until_recognised_then_exactly_once(session) -> None:  # noqa: ANN001
    _terms(session)
    t = sale(session, 500, [("bus", 1, 200), ("metro", 1, 400)], day=D)       # shares 167 / 333
    _queue(session, t, 0)
    _queue(session, t, 0)                                                     # a retried admission: nothing more
    session.commit()
    assert session.get(Validation, t.legs[0].leg_id).pending is True
    assert _close_counts(session) == {}
    assert recognise_pending_uses(session) == 1
    session.commit()
    assert recognise_pending_uses(session) == 0
    assert _recognition_balances(session) == _expected(session, [t.legs[0].leg_id])
    assert session.get(Validation, t.legs[0].leg_id).pending is False
    assert ledger.unbalanced_entries(session) == []


def test_deferred_and_immediate_recognition_post_the_same_lines(session) -> None:  # noqa: ANN001
    _terms(session)
    a = sale(session, 500, [("bus", 1, 200), ("metro", 1, 400)], day=D)
    b = sale(session, 500, [("bus", 1, 200), ("metro", 1, 400)], day=D)
    for i in (0, 1):
        record_use(session, UseRecord(a.legs[i].leg_id, a.ticket_id, a.legs[i].operator_id, at(D, 8), "g"))
        _queue(session, b, i)
    recognise_pending_uses(session)
    session.commit()

    def lines(ticket_id: str) -> list[tuple]:
        return sorted(session.execute(
            sa.select(JournalEntry.kind, JournalEntry.effective_date, JournalEntry.memo, JournalLine.line_no,
                      JournalLine.account_id, JournalLine.amount, JournalLine.purpose, JournalLine.operator_id)
            .join(JournalEntry, JournalEntry.entry_id == JournalLine.entry_id)
            .where(JournalLine.ticket_id == ticket_id, JournalEntry.kind == "recognition")).all())

    assert lines(a.ticket_id) == lines(b.ticket_id) and len(lines(a.ticket_id)) == 6


def test_queue_use_refuses_what_record_use_refuses(session) -> None:  # noqa: ANN001
    t = sale(session, 300, [("bus", 1, 300)], day=D)
    with pytest.raises(UnknownLeg):
        queue_use(session, UseRecord("nope", t.ticket_id, "bus", at(D), None))
    with pytest.raises(InvalidRecord):
        queue_use(session, UseRecord(t.legs[0].leg_id, t.ticket_id, "metro", at(D), None))
    with pytest.raises(InvalidRecord):
        queue_use(session, UseRecord(t.legs[0].leg_id, "tkt-other", "bus", at(D), None))
    with pytest.raises(InvalidRecord):
        queue_use(session, UseRecord(t.legs[0].leg_id, t.ticket_id, "bus", dt.datetime(2026, 3, 2, 9), None))


def test_job_crash_after_some_batches_then_rerun_is_exact_to_the_fen(session, monkeypatch) -> None:  # noqa: ANN001
    _terms(session)
    records = [sale(session, 500 + 7 * i, [("bus", 1, 200 + i), ("metro", 1, 400)], day=D) for i in range(7)]
    used = []
    for r in records:
        for i in (0, 1):
            used.append(_queue(session, r, i).leg_id)
    session.commit()
    want = _expected(session, used)

    real = ledger.post_many
    calls = {"n": 0}

    def crashing(s, entries):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash("the job's process dies while posting its third batch")
        return real(s, entries)

    monkeypatch.setattr(ledger, "post_many", crashing)
    with pytest.raises(Crash):
        tasks.recognise_uses(session, batch=4)
    session.rollback()
    # the two committed batches stand, the third left nothing behind
    assert sum(_close_counts(session).values()) == 8
    pending = session.execute(sa.select(sa.func.count()).select_from(Validation).where(Validation.pending)).scalar()
    assert pending == 6
    assert ledger.unbalanced_entries(session) == []

    monkeypatch.setattr(ledger, "post_many", real)
    assert "14" not in tasks.recognise_uses(session, batch=4)  # the rerun recognises the 6 left
    assert tasks.recognise_uses(session, batch=4).startswith("0 ")
    counts = _close_counts(session)
    assert sorted(counts) == sorted(used) and set(counts.values()) == {1}
    assert _recognition_balances(session) == want
    assert ledger.unbalanced_entries(session) == []


def test_job_crash_inside_a_batch_after_posting_leaves_nothing_of_it(session, monkeypatch) -> None:  # noqa: ANN001
    _terms(session)
    records = [sale(session, 500, [("bus", 1, 200), ("metro", 1, 400)], day=D) for _ in range(3)]
    used = [_queue(session, r, i).leg_id for r in records for i in (0, 1)]
    session.commit()
    want = _expected(session, used)

    def crash(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise Crash("dies after the entries were posted, before the uses are marked recognised")

    monkeypatch.setattr(interface, "_mark_recognised", crash)
    with pytest.raises(Crash):
        tasks.recognise_uses(session, batch=100)
    session.rollback()
    assert _close_counts(session) == {}
    monkeypatch.undo()
    tasks.recognise_uses(session, batch=100)
    assert _recognition_balances(session) == want and set(_close_counts(session).values()) == {1}


def test_settlement_includes_uses_not_yet_recognised(session) -> None:  # noqa: ANN001
    _terms(session)
    t = sale(session, 500, [("bus", 1, 200), ("metro", 1, 400)], day=D)
    _queue(session, t, 0)
    _queue(session, t, 1)
    session.commit()
    run, _ = settlement.run_settlement(session, period_start=D, period_end=D2, now=at(D2, 12))
    session.commit()
    want = _expected(session, [x.leg_id for x in t.legs])
    assert run.gross == 500
    assert run.commission == -want[ledger.COMMISSION]
    assert recognise_pending_uses(session) == 0


def test_a_pending_use_closes_the_leg_for_refunds_and_expiry(session) -> None:  # noqa: ANN001
    t = sale(session, 400, [("bus", 1, 400)], day=D)
    _queue(session, t, 0)
    with pytest.raises(LegClosed):
        refund(session, t, [0], 100, when=at(D, 23))
    record_expiry(session, leg_id=t.legs[0].leg_id, expired_at=at(D, 23))    # expiry job after the use
    session.commit()
    assert _close_counts(session) == {t.legs[0].leg_id: 1}
    assert ledger.balance(session, ledger.payable("bus")) == -400
    assert recognise_pending_uses(session) == 0


def test_a_use_after_a_refund_is_kept_and_moves_no_money(session) -> None:  # noqa: ANN001
    t = sale(session, 400, [("bus", 1, 400)], day=D)
    refund(session, t, [0], 300, when=at(D, 7))
    _queue(session, t, 0)                                                     # a late offline tap
    assert recognise_pending_uses(session) == 0
    session.commit()
    assert session.get(Validation, t.legs[0].leg_id).pending is False
    assert _close_counts(session) == {t.legs[0].leg_id: 1}
    assert ledger.balance(session, ledger.REFUNDS) == -300


def test_concurrent_jobs_and_a_settlement_recognise_each_use_once(engine, session) -> None:  # noqa: ANN001
    """Two job runs and a settlement run at once (PostgreSQL: SKIP LOCKED for the jobs, the settlement waits)."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlmodel import Session

    _terms(session)
    records = [sale(session, 500 + i, [("bus", 1, 200), ("metro", 1, 400)], day=D) for i in range(12)]
    used = [_queue(session, r, i).leg_id for r in records for i in (0, 1)]
    session.commit()
    want = _expected(session, used)
    session.commit()  # SQLite: every transaction takes the write lock (BEGIN IMMEDIATE); let the others in

    def job(_i: int) -> str:
        with Session(engine, expire_on_commit=False) as s:
            return tasks.recognise_uses(s, batch=3)

    def settle() -> int:
        with Session(engine, expire_on_commit=False) as s:
            run, _ = settlement.run_settlement(s, period_start=D, period_end=D2, now=at(D2, 12))
            s.commit()
            return run.gross

    with ThreadPoolExecutor(max_workers=3) as pool:
        jobs = [pool.submit(job, i) for i in range(2)]
        gross = pool.submit(settle)
        for f in jobs:
            f.result()
        gross_paid = gross.result()
    session.expire_all()
    counts = _close_counts(session)
    assert sorted(counts) == sorted(used) and set(counts.values()) == {1}
    assert _recognition_balances(session) == want
    # the run settled every use of its period, whoever recognised it
    assert gross_paid == sum(500 + i for i in range(12))
    assert ledger.unbalanced_entries(session) == []
