"""Agreements as data: apportionment agreements and commission terms, and which one is in force.

Selection of the apportionment agreement for a ticket sold on day ``d`` whose
legs run on operators ``O``: among the stored agreements in force on ``d``
that cover ``O`` (name every operator in ``O``, or are network-wide), the most
specific wins (fewest operators; network-wide last), then the highest
``priority``, then the latest ``valid_from``, then the smallest id. With none,
`clearing.apportionment.DEFAULT_AGREEMENT` (standalone fare, proportional).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa
from sqlmodel import Session, select

from clearing.apportionment import DEFAULT_AGREEMENT, Agreement, Method
from clearing.errors import InvalidAgreement
from clearing.models import AgreementRow, CommissionTerm


def to_agreement(row: AgreementRow) -> Agreement:
    return Agreement(
        agreement_id=row.agreement_id, method=Method(row.method),
        operator_ids=frozenset(row.operator_ids) if row.operator_ids is not None else None,
        fixed_amounts=dict(row.fixed_amounts or {}), remainder_operator=row.remainder_operator,
        shares_bp=dict(row.shares_bp or {}), discount_borne_by=row.discount_borne_by,
        valid_from=row.valid_from, valid_until=row.valid_until, priority=row.priority,
    )


def create_agreement(session: Session, agreement: Agreement) -> AgreementRow:
    """Store an agreement (validated by the `Agreement` constructor). Ids are unique."""
    if session.get(AgreementRow, agreement.agreement_id) is not None:
        raise InvalidAgreement("an agreement with this id exists", details={"agreement_id": agreement.agreement_id},
                               status=409, code="agreement_exists")
    row = AgreementRow(
        agreement_id=agreement.agreement_id, method=agreement.method.value,
        operator_ids=sorted(agreement.operator_ids) if agreement.operator_ids is not None else None,
        fixed_amounts={k: int(v) for k, v in agreement.fixed_amounts.items()},
        remainder_operator=agreement.remainder_operator,
        shares_bp={k: int(v) for k, v in agreement.shares_bp.items()},
        discount_borne_by=agreement.discount_borne_by, valid_from=agreement.valid_from,
        valid_until=agreement.valid_until, priority=agreement.priority,
    )
    session.add(row)
    session.flush()
    return row


def list_agreements(session: Session) -> list[Agreement]:
    return [to_agreement(r) for r in session.exec(select(AgreementRow).order_by(AgreementRow.agreement_id)).all()]


def choose_agreement(candidates: list[Agreement], operator_ids: set[str], on: dt.date) -> Agreement:
    """The agreement in force on ``on`` for these operators (pure; see the module docstring)."""
    usable = [a for a in candidates if a.in_force(on) and a.covers(operator_ids)]
    if not usable:
        return DEFAULT_AGREEMENT

    def rank(a: Agreement) -> tuple:
        size = len(a.operator_ids) if a.operator_ids is not None else 10**9
        return (size, -a.priority, -a.valid_from.toordinal(), a.agreement_id)

    return min(usable, key=rank)


def find_agreement(session: Session, operator_ids: set[str], on: dt.date) -> Agreement:
    rows = session.exec(select(AgreementRow).where(
        AgreementRow.valid_from <= on,
        sa.or_(AgreementRow.valid_until.is_(None), AgreementRow.valid_until > on),  # type: ignore[union-attr]
    )).all()
    return choose_agreement([to_agreement(r) for r in rows], operator_ids, on)


def set_commission(session: Session, *, term_id: str, operator_id: str, rate_bp: int = 0, fixed_per_leg: int = 0,
                   valid_from: dt.date, valid_until: dt.date | None = None) -> CommissionTerm:
    """Store a commission term: ``rate_bp`` basis points of the leg's share plus ``fixed_per_leg`` minor units."""
    if session.get(CommissionTerm, term_id) is not None:
        raise InvalidAgreement("a commission term with this id exists", details={"term_id": term_id}, status=409,
                               code="commission_term_exists")
    if not 0 <= rate_bp <= 10_000 or fixed_per_leg < 0:
        raise InvalidAgreement("commission is 0..10000 basis points and a non-negative fixed fee",
                               details={"rate_bp": rate_bp, "fixed_per_leg": fixed_per_leg})
    if valid_until is not None and valid_until <= valid_from:
        raise InvalidAgreement("valid_until must be after valid_from")
    term = CommissionTerm(term_id=term_id, operator_id=operator_id, rate_bp=rate_bp, fixed_per_leg=fixed_per_leg,
                          valid_from=valid_from, valid_until=valid_until)
    session.add(term)
    session.flush()
    return term


def list_commission_terms(session: Session) -> list[CommissionTerm]:
    return list(session.exec(select(CommissionTerm).order_by(CommissionTerm.operator_id, CommissionTerm.valid_from,
                                                             CommissionTerm.term_id)).all())


def commission_amount(share: int, rate_bp: int, fixed_per_leg: int) -> int:
    """Commission on one leg: ``rate_bp`` of ``share`` rounded half up, plus the fixed fee, never above the share."""
    if share <= 0:
        return 0
    return min(share, (share * rate_bp + 5_000) // 10_000 + fixed_per_leg)


def commission_terms_on(session: Session, on: dt.date) -> Mapping[str, tuple[int, int]]:
    """``{operator_id: (rate_bp, fixed_per_leg)}`` in force on ``on`` (latest ``valid_from`` wins)."""
    rows = session.exec(select(CommissionTerm).where(
        CommissionTerm.valid_from <= on,
        sa.or_(CommissionTerm.valid_until.is_(None), CommissionTerm.valid_until > on),  # type: ignore[union-attr]
    ).order_by(CommissionTerm.valid_from, CommissionTerm.term_id)).all()
    return {r.operator_id: (r.rate_bp, r.fixed_per_leg) for r in rows}
