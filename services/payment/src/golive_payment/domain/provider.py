"""The payment provider, as the rules see it: a question (authorize this amount on this card?)
and its answer. The provider here is simulated by the rules (golive_payment.domain.rules), so
asking it has no outside effect; a real one charges a card.

Which is why a version running in shadow (a router's shadow copy, golive_eventing.router) asks
`check`, the dry run, and never `authorize`: charging a card twice is the classic accident of
shadow traffic. A fork that wires a real provider keeps that split: `authorize` calls the
provider's charge, `check` its validation-only endpoint or nothing at all, and the test in
tests/unit/test_payment_decisions.py holds it (a shadow input never reaches `authorize`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from golive_payment.domain.rules import LIMITS_MAJOR, Decision, decide_payment


class Provider(Protocol):
    def authorize(self, amount_minor: int, currency: str, last4: str) -> Decision:
        """Ask for the money: the real thing."""

    def check(self, amount_minor: int, currency: str, last4: str) -> Decision:
        """What `authorize` would answer, with no effect (a dry run)."""


@dataclass(frozen=True)
class SimulatedProvider:
    """The rules of one version (rules.LIMITS_MAJOR): no effect either way."""

    version: str = "1"

    def authorize(self, amount_minor: int, currency: str, last4: str) -> Decision:
        return decide_payment(amount_minor, currency, last4, LIMITS_MAJOR[self.version])

    def check(self, amount_minor: int, currency: str, last4: str) -> Decision:
        return self.authorize(amount_minor, currency, last4)
