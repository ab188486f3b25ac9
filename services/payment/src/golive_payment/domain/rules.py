"""The simulated payment provider's rules: deterministic, and reading only what desensitisation keeps.

A decision depends on the amount, the currency and the card token's last four digits, nothing
else, so a desensitised capture (personal fields tokenised, last four kept) replays to the same
decisions. The last four digits work the way payment providers' test cards do:

| rule (first match wins)                         | outcome                              |
|-------------------------------------------------|--------------------------------------|
| currency not in SUPPORTED_CURRENCIES            | declined: currency_not_supported     |
| amount above 10,000 whole units of the currency | declined: amount_over_limit          |
| card ends 0002                                  | declined: card_declined              |
| card ends 9995                                  | declined: insufficient_funds         |
| card ends 0069                                  | declined: expired_card               |
| card ends 0127                                  | declined: incorrect_cvc              |
| anything else                                   | authorized                           |
"""

from __future__ import annotations

from dataclasses import dataclass

from golive_contracts.money import major_to_minor

SUPPORTED_CURRENCIES = frozenset({"EUR", "USD", "GBP", "CHF", "SEK", "DKK", "NOK", "PLN", "JPY"})
LIMIT_MAJOR = 10_000
TEST_CARDS = {
    "0002": "card_declined",
    "9995": "insufficient_funds",
    "0069": "expired_card",
    "0127": "incorrect_cvc",
}


@dataclass(frozen=True)
class Decision:
    authorized: bool
    reason: str | None = None


def card_last4(card_token: str) -> str:
    """tok_<id>_<last four>: the only part of the token a rule may read."""
    return card_token.rsplit("_", 1)[-1]


def decide_payment(amount_minor: int, currency: str, last4: str) -> Decision:
    if currency not in SUPPORTED_CURRENCIES:
        return Decision(False, "currency_not_supported")
    if amount_minor > major_to_minor(LIMIT_MAJOR, currency):
        return Decision(False, "amount_over_limit")
    if last4 in TEST_CARDS:
        return Decision(False, TEST_CARDS[last4])
    return Decision(True)
