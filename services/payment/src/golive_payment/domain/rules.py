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

Version 2 (the candidate that docs/runbooks/release-a-new-version.md releases) changes one rule:
the limit is 5,000 whole units, not 10,000. Its intended difference from version 1: an order
between the two limits, which version 1 authorizes, version 2 declines `amount_over_limit`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from golive_contracts.money import major_to_minor

SUPPORTED_CURRENCIES = frozenset({"EUR", "USD", "GBP", "CHF", "SEK", "DKK", "NOK", "PLN", "JPY"})
LIMIT_MAJOR = 10_000
# The limit of each version of the rules (golive_payment.domain.versions).
LIMITS_MAJOR = {"1": LIMIT_MAJOR, "2": 5_000}
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


def decide_payment(
    amount_minor: int, currency: str, last4: str, limit_major: int = LIMIT_MAJOR
) -> Decision:
    if currency not in SUPPORTED_CURRENCIES:
        return Decision(False, "currency_not_supported")
    if amount_minor > major_to_minor(limit_major, currency):
        return Decision(False, "amount_over_limit")
    if last4 in TEST_CARDS:
        return Decision(False, TEST_CARDS[last4])
    return Decision(True)


def intended_v2(live: Mapping[str, Any], candidate: Mapping[str, Any]) -> bool:
    """Version 2's one intended difference from version 1, as a shadow comparison sees the two
    decisions of an order (golive_cli.shadow): between the two limits, what version 1 authorizes
    version 2 declines `amount_over_limit`."""
    if (live.get("type"), candidate.get("type")) != ("PaymentAuthorized", "PaymentDeclined"):
        return False
    if candidate.get("reason") != "amount_over_limit":
        return False
    amount, currency = int(candidate["amount_minor"]), str(candidate["currency"])
    low, high = (major_to_minor(LIMITS_MAJOR[v], currency) for v in ("2", "1"))
    return low < amount <= high


def _nothing(live: Mapping[str, Any], candidate: Mapping[str, Any]) -> bool:
    del live, candidate
    return False


# What each version declares it changes from the live one: a promotion's gate lets these
# differences through, and stops at any other (golive release promote).
INTENDED = {"1": _nothing, "2": intended_v2}
