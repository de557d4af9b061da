"""Money as integer minor units plus an ISO 4217 currency code; never float.

GTFS writes fare amounts as decimal currency units (``"2.00"`` CNY); the
platform stores integer minor units (200 fen). `to_minor` converts with
`decimal.Decimal` using the currency's exponent and refuses amounts that do not
fit it exactly (``"2.005"`` CNY) instead of silently rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ticketing.fares.errors import FareDataError

# ISO 4217 minor-unit exponents of the currencies we meet; unknown codes default to 2.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2, "CAD": 2, "PLN": 2, "USD": 2, "EUR": 2, "HKD": 2, "GBP": 2, "JPY": 0, "KRW": 0, "TWD": 2,
    "MOP": 2, "CHF": 2, "AUD": 2, "NZD": 2, "BHD": 3, "KWD": 3,
}


def currency_exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (2 for CNY: 1 yuan = 100 fen)."""
    return CURRENCY_EXPONENTS.get(currency.upper(), 2)


@dataclass(frozen=True, order=True, slots=True)
class Money:
    """An amount of money: ``amount`` in integer minor units (fen for CNY) and the currency code."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"Money.amount must be int minor units, got {type(self.amount).__name__}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} and {other.currency}")

    def to_dict(self) -> dict[str, int | str]:
        """The contract's shape ``{"amount": <int minor units>, "currency": "CNY"}``."""
        return {"amount": self.amount, "currency": self.currency}

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)


def to_minor(amount: str | Decimal, currency: str, *, where: str = "") -> int:
    """Decimal currency units (GTFS ``amount``) -> integer minor units.

    Raises `FareDataError` (naming ``where``, e.g. ``"fare_products.txt line 4"``)
    when the text is not a number or has more decimals than the currency allows.
    """
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise FareDataError(f"{where}: amount {amount!r} is not a decimal number", details={"where": where}) from None
    if not value.is_finite():
        raise FareDataError(f"{where}: amount {amount!r} is not finite", details={"where": where})
    scaled = value.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise FareDataError(f"{where}: amount {amount!r} has more decimals than {currency} allows",
                            details={"where": where})
    return int(scaled)


def scale_minor(amount: int, percent: int | Decimal) -> int:
    """``amount * percent / 100`` rounded half up to a whole minor unit (concession fares)."""
    return int((Decimal(amount) * Decimal(percent) / Decimal(100)).quantize(Decimal(1), ROUND_HALF_UP))


def allocate(total: int, weights: list[int]) -> list[int]:
    """Splits integer ``total`` over parts proportional to non-negative integer ``weights``.

    Largest-remainder rounding, ties to the earlier part, so the parts always sum
    to ``total``. All-zero weights split equally.
    """
    n = len(weights)
    if n == 0:
        return []
    if sum(weights) <= 0:
        weights = [1] * n
    wsum = sum(weights)
    base = [total * w // wsum for w in weights]
    rema = [total * w % wsum for w in weights]
    left = total - sum(base)
    for i in sorted(range(n), key=lambda i: (-rema[i], i))[:left]:
        base[i] += 1
    return base
