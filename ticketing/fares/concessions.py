"""Concession eligibility (优惠票资格) for the platform's rider categories.

Platform categories: ``adult`` (everyone), ``child`` (younger than
``child_max_age``), ``senior`` 老年人 (at least ``senior_min_age``) and
``disabled`` 残疾人 (holds a disability certificate, 残疾人证, checked by the
order layer and passed as ``has_disability_document``). Ages come from the
Chinese resident ID number's birth date or, for other documents, from a given
``birth_date``. Feeds may name their categories differently; the fare engine's
``category_aliases`` map platform categories onto them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ticketing.fares.errors import NotEligible, UnknownRiderCategory
from ticketing.identity import age_on, cn_resident_id_birth_date

__all__ = ["ConcessionRules", "Eligibility", "PLATFORM_CATEGORIES", "check_eligibility", "require_eligibility"]

PLATFORM_CATEGORIES = ("adult", "child", "senior", "disabled")


@dataclass(frozen=True, slots=True)
class ConcessionRules:
    """Age limits in completed years (defaults: common Chinese city practice)."""

    senior_min_age: int = 65
    child_max_age: int = 14  # child fare while younger than this


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Outcome of a check: ``eligible`` and, when not, a snake_case ``code`` and a human ``reason``."""

    category: str
    eligible: bool
    code: str | None = None
    reason: str | None = None
    age: int | None = None


def check_eligibility(category: str, id_type: str, id_number: str, on_date: date, *,
                      birth_date: date | None = None, has_disability_document: bool = False,
                      rules: ConcessionRules = ConcessionRules()) -> Eligibility:
    """Whether a traveller may ride on ``category`` on ``on_date`` (the travel date).

    ``id_type`` ``"cn_resident_id"`` gives the birth date (and must pass its
    check digit); other documents need ``birth_date`` for age-based
    categories. Raises `UnknownRiderCategory` for a category not in
    `PLATFORM_CATEGORIES`; an invalid ID number is ``eligible=False`` with
    code ``invalid_id_number``.
    """
    if category not in PLATFORM_CATEGORIES:
        raise UnknownRiderCategory(f"unknown rider category {category!r}",
                                   details={"rider_category": category, "known": list(PLATFORM_CATEGORIES)})
    if category == "adult":
        return Eligibility(category, True)
    if category == "disabled":
        if has_disability_document:
            return Eligibility(category, True)
        return Eligibility(category, False, "disability_document_required",
                           "the disabled concession needs a disability certificate (残疾人证)")
    born = birth_date
    if id_type == "cn_resident_id":
        from ticketing.identity import validate_cn_resident_id

        if not validate_cn_resident_id(id_number, today=on_date):
            return Eligibility(category, False, "invalid_id_number", "the resident ID number fails its check")
        born = cn_resident_id_birth_date(id_number)
    if born is None:
        return Eligibility(category, False, "birth_date_required",
                           f"the {category} concession needs a birth date for ID type {id_type!r}")
    age = age_on(born, on_date)
    if category == "senior":
        if age >= rules.senior_min_age:
            return Eligibility(category, True, age=age)
        return Eligibility(category, False, "too_young",
                           f"the senior concession starts at {rules.senior_min_age}; traveller is {age}", age)
    if age < rules.child_max_age:
        return Eligibility(category, True, age=age)
    return Eligibility(category, False, "too_old",
                       f"the child fare ends at {rules.child_max_age}; traveller is {age}", age)


def require_eligibility(category: str, id_type: str, id_number: str, on_date: date, **kwargs) -> Eligibility:
    """`check_eligibility`, raising `NotEligible` (with the outcome's code in ``details``) when not eligible."""
    res = check_eligibility(category, id_type, id_number, on_date, **kwargs)
    if not res.eligible:
        raise NotEligible(res.reason or "not eligible", details={"rider_category": category, "reason_code": res.code})
    return res
