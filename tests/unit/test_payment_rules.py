"""The simulated provider's rules, no I/O."""

from __future__ import annotations

import pytest
from golive_payment.domain.rules import Decision, card_last4, decide_payment

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("amount_minor", "currency", "last4", "expected"),
    [
        (2500, "EUR", "4242", Decision(True)),
        (1_000_000, "EUR", "4242", Decision(True)),  # exactly 10,000.00 EUR
        (1_000_001, "EUR", "4242", Decision(False, "amount_over_limit")),
        (10_000, "JPY", "4242", Decision(True)),  # JPY has no minor unit: 10,000 yen
        (10_001, "JPY", "4242", Decision(False, "amount_over_limit")),
        (2500, "BRL", "4242", Decision(False, "currency_not_supported")),
        (2500, "EUR", "0002", Decision(False, "card_declined")),
        (2500, "EUR", "9995", Decision(False, "insufficient_funds")),
        (2500, "EUR", "0069", Decision(False, "expired_card")),
        (2500, "EUR", "0127", Decision(False, "incorrect_cvc")),
        (2_000_000, "BRL", "0002", Decision(False, "currency_not_supported")),  # first rule wins
    ],
)
def test_rules(amount_minor: int, currency: str, last4: str, expected: Decision) -> None:
    assert decide_payment(amount_minor, currency, last4) == expected


def test_rules_read_only_the_last_four_digits_of_the_token() -> None:
    assert card_last4("tok_visa_0002") == "0002"
    assert card_last4("tok_3f9a1c_0002") == "0002"  # a desensitised token keeps its last four
