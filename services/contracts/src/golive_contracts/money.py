"""Money is integer minor units plus an ISO 4217 currency; the exponent comes from the currency."""

from __future__ import annotations

import iso4217


def exponent(currency: str) -> int:
    """Minor-unit digits of an ISO 4217 currency (2 for EUR, 0 for JPY). ValueError if unknown."""
    try:
        found = iso4217.Currency(currency).exponent
    except ValueError:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code") from None
    if found is None:  # precious metals, testing codes: not money we take
        raise ValueError(f"{currency!r} has no minor unit (not a currency for payments)")
    return int(found)


def major_to_minor(amount_major: int, currency: str) -> int:
    """Whole units to minor units: 10 EUR -> 1000, 10 JPY -> 10."""
    return amount_major * int(10 ** exponent(currency))
