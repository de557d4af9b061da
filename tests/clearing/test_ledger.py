"""The ledger: balanced entries only, append-only journal, balances derived from lines."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from clearing import ledger
from clearing.errors import UnbalancedEntry
from clearing.ledger import Line, NewEntry
from tests.clearing.builders import sale

D = dt.date(2026, 3, 2)


def test_unbalanced_or_one_sided_entries_are_refused_in_code(session) -> None:  # noqa: ANN001
    with pytest.raises(UnbalancedEntry) as exc:
        ledger.post(session, NewEntry("x1", "adjustment", "CNY", D, [Line(ledger.CASH, 100, "sale"),
                                                                     Line(ledger.REFUNDS, -99, "refund")]))
    assert exc.value.code == "unbalanced_entry" and exc.value.details["sum"] == 1
    with pytest.raises(UnbalancedEntry):
        ledger.post(session, NewEntry("x2", "adjustment", "CNY", D, [Line(ledger.CASH, 0, "sale")]))
    with pytest.raises(UnbalancedEntry):
        fractional = [Line(ledger.CASH, 1.5, "sale"), Line(ledger.REFUNDS, -1.5, "refund")]  # type: ignore[arg-type]
        ledger.post(session, NewEntry("x3", "adjustment", "CNY", D, fractional))


def test_journal_rows_cannot_be_updated_or_deleted(session) -> None:  # noqa: ANN001
    sale(session, 500, [("bus", 1, 200), ("metro", 1, 300)], day=D)
    session.commit()
    for stmt in ("UPDATE clearing_journal_lines SET amount = amount + 1",
                 "DELETE FROM clearing_journal_lines",
                 "UPDATE clearing_journal_entries SET effective_date = effective_date",
                 "DELETE FROM clearing_journal_entries"):
        with pytest.raises(DBAPIError) as exc:
            session.execute(sa.text(stmt))
        assert "append-only" in str(exc.value)
        session.rollback()
    assert ledger.balance(session, ledger.CASH) == 500


def test_database_refuses_unbalanced_lines_on_postgresql(session, backend) -> None:  # noqa: ANN001
    if backend["kind"] == "embedded":
        pytest.skip("SQLite has no statement-level triggers with transition tables: the check is the service's "
                    "(test_unbalanced_or_one_sided_entries_are_refused_in_code)")
    entry_id = ledger.post(session, NewEntry("ok", "adjustment", "CNY", D, [Line(ledger.CASH, 5, "x"),
                                                                           Line(ledger.REFUNDS, -5, "x")]))
    session.commit()
    with pytest.raises(DBAPIError) as exc:
        session.execute(sa.text("INSERT INTO clearing_journal_lines (entry_id, line_no, account_id, amount, purpose) "
                                "VALUES (:e, 9, 'platform:cash', 1, 'x')"), {"e": entry_id})
    assert "does not balance" in str(exc.value)
    session.rollback()
    with pytest.raises(DBAPIError) as exc:
        session.execute(sa.text("INSERT INTO clearing_journal_lines (entry_id, line_no, account_id, amount, purpose) "
                                "VALUES (999999, 0, 'platform:cash', 1, 'x'), "
                                "(999999, 1, 'platform:refunds', -1, 'x')"))
    assert "unknown entry" in str(exc.value)
    session.rollback()


def test_balances_are_derived_and_the_trial_balance_is_zero(session) -> None:  # noqa: ANN001
    sale(session, 500, [("bus", 1, 200), ("metro", 1, 400)], day=D)
    sale(session, 300, [("metro", 1, 300)], day=D)
    bal = ledger.balances(session)
    assert bal[ledger.CASH] == 800
    assert bal[ledger.deferred("bus")] == -167 and bal[ledger.deferred("metro")] == -633
    assert sum(bal.values()) == 0 and ledger.unbalanced_entries(session) == []
