"""Concession eligibility and Chinese resident ID numbers (GB 11643)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketing.fares import NotEligible, UnknownRiderCategory, check_eligibility, require_eligibility
from ticketing.identity import InvalidIdNumber, age_on, cn_resident_id_birth_date, validate_cn_resident_id

# The standard's worked example (GB 11643-1999 appendix): check character X.
EXAMPLE = "11010519491231002X"


def make_id(prefix17: str) -> str:
    """Appends the ISO 7064 MOD 11-2 check character, computed independently of the code under test."""
    total = sum(int(c) * (2 ** (17 - i) % 11) for i, c in enumerate(prefix17))
    return prefix17 + "10X98765432"[total % 11]


def test_standard_example_and_tampering():
    assert validate_cn_resident_id(EXAMPLE) and validate_cn_resident_id(EXAMPLE.lower())
    assert not validate_cn_resident_id("110105194912310021")  # wrong check character
    assert not validate_cn_resident_id("11010519491231002")  # 17 characters
    assert not validate_cn_resident_id("110105194902300026")  # 30 February
    assert not validate_cn_resident_id(make_id("11010530000101001"))  # born in the future
    assert cn_resident_id_birth_date(EXAMPLE) == date(1949, 12, 31)
    with pytest.raises(InvalidIdNumber):
        cn_resident_id_birth_date("110105194912310021")


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31)), st.integers(0, 999),
       st.integers(0, 16))
def test_any_single_digit_change_is_caught(born, seq, pos):
    number = make_id(f"430102{born:%Y%m%d}{seq:03d}")
    assert validate_cn_resident_id(number)
    digit = number[pos]
    changed = number[:pos] + str((int(digit) + 1) % 10) + number[pos + 1:]
    assert not validate_cn_resident_id(changed)


def test_ages_and_categories():
    senior_id = make_id("43010219600315001")  # born 1960-03-15
    assert age_on(date(1960, 3, 15), date(2025, 3, 14)) == 64
    assert not check_eligibility("senior", "cn_resident_id", senior_id, date(2025, 3, 14)).eligible
    ok = check_eligibility("senior", "cn_resident_id", senior_id, date(2025, 3, 15))
    assert ok.eligible and ok.age == 65
    child_id = make_id("43010220150601002")  # born 2015-06-01
    assert check_eligibility("child", "cn_resident_id", child_id, date(2029, 5, 31)).eligible
    too_old = check_eligibility("child", "cn_resident_id", child_id, date(2029, 6, 1))
    assert not too_old.eligible and too_old.code == "too_old"
    assert check_eligibility("adult", "passport", "E12345678", date(2025, 1, 1)).eligible


def test_disabled_needs_document_and_bad_input_is_a_domain_error():
    res = check_eligibility("disabled", "cn_resident_id", EXAMPLE, date(2025, 1, 1))
    assert not res.eligible and res.code == "disability_document_required"
    assert check_eligibility("disabled", "cn_resident_id", EXAMPLE, date(2025, 1, 1),
                             has_disability_document=True).eligible
    bad = check_eligibility("senior", "cn_resident_id", "110105194912310021", date(2025, 1, 1))
    assert not bad.eligible and bad.code == "invalid_id_number"
    passport = check_eligibility("senior", "passport", "E1", date(2025, 1, 1))
    assert passport.code == "birth_date_required"
    assert check_eligibility("senior", "passport", "E1", date(2025, 1, 1), birth_date=date(1950, 1, 1)).eligible
    with pytest.raises(UnknownRiderCategory):
        check_eligibility("student", "passport", "E1", date(2025, 1, 1))
    with pytest.raises(NotEligible) as e:
        require_eligibility("senior", "cn_resident_id", make_id("43010220000101001"), date(2025, 1, 1))
    assert e.value.code == "concession_not_eligible" and e.value.details["reason_code"] == "too_young"
