"""Chinese resident identity card numbers (居民身份证号码, GB 11643-1999).

An 18-character number: 6-digit administrative division code, 8-digit birth
date ``YYYYMMDD`` (characters 7-14), 3-digit sequence (odd = male), and an ISO
7064 MOD 11-2 check character (``0``-``9`` or ``X``).
"""

from __future__ import annotations

import re
from datetime import date

from ticketing.errors import TicketingError

__all__ = ["InvalidIdNumber", "age_on", "cn_resident_id_birth_date", "validate_cn_resident_id"]

_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
_CHECK = "10X98765432"  # check character for (weighted sum mod 11) = 0..10
_SHAPE = re.compile(r"^[1-9]\d{16}[\dX]$")


class InvalidIdNumber(TicketingError):
    """An identity document number is malformed or fails its check digit."""

    code = "invalid_id_number"
    status = 422


def _normalise(number: str) -> str:
    return number.strip().upper() if isinstance(number, str) else ""


def _birth(n: str) -> date | None:
    try:
        return date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        return None


def validate_cn_resident_id(number: str, *, today: date | None = None) -> bool:
    """True when ``number`` is a well-formed 18-character resident ID with a correct check character.

    Also requires a real birth date not after ``today`` (default: the current
    date) and not before 1900. Lower-case ``x`` is accepted.
    """
    n = _normalise(number)
    if not _SHAPE.match(n):
        return False
    born = _birth(n)
    if born is None or born.year < 1900 or born > (today or date.today()):
        return False
    total = sum(int(c) * w for c, w in zip(n[:17], _WEIGHTS))
    return _CHECK[total % 11] == n[17]


def cn_resident_id_birth_date(number: str) -> date:
    """The birth date encoded in a valid resident ID; raises `InvalidIdNumber` otherwise."""
    if not validate_cn_resident_id(number):
        raise InvalidIdNumber("not a valid Chinese resident ID number (GB 11643 check failed)",
                              details={"id_type": "cn_resident_id"})
    born = _birth(_normalise(number))
    assert born is not None  # validated above
    return born


def age_on(born: date, on: date) -> int:
    """Completed years of age on ``on`` (a 29 February birthday counts on 1 March in common years)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
