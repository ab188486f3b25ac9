"""Releases by routing, the pure parts: where a router sends a key (golive_eventing.router.choose),
what a version slot decides on a shadow copy (payment asks its provider's dry run), the rules of
each version, and what a route flag may say. No broker."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from golive_contracts.events import PaymentAuthorized, PaymentDeclined
from golive_eventing.decider import Received
from golive_eventing.errors import RetryBatchError
from golive_eventing.flags import problems
from golive_eventing.router import choose
from golive_payment.domain.rules import Decision, decide_payment
from golive_payment.entrypoints.consumers import AuthorizeOrders

from tests.factories import NOW, order_placed

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("pinned", "route", "shadow", "expected"),
    [
        (None, "blue", "none", ("blue", None)),  # a new key goes where the route says
        (None, "green", "none", ("green", None)),
        ("blue", "green", "none", ("blue", None)),  # a pinned key stays, whatever the route
        ("green", None, "none", ("green", None)),  # even with no readable route
        (None, "blue", "green", ("blue", "green")),  # the shadow slot gets a copy
        ("green", "blue", "green", ("green", None)),  # never a copy to the deciding slot
        (None, "blue", "purple", ("blue", None)),  # an unknown shadow slot: none
    ],
)
def test_a_key_goes_to_its_pin_else_the_route(
    pinned: str | None, route: str | None, shadow: str, expected: tuple[str, str | None]
) -> None:
    assert choose(pinned, route, shadow) == expected


@pytest.mark.parametrize("route", [None, "purple"])
def test_a_new_key_without_a_readable_route_waits(route: str | None) -> None:
    with pytest.raises(RetryBatchError, match="new keys wait"):
        choose(None, route, "none")


@dataclass
class RecordingProvider:
    """A provider that says who asked what: `authorize` is the real thing (a charge)."""

    charged: list[int] = field(default_factory=list)
    checked: list[int] = field(default_factory=list)

    def authorize(self, amount_minor: int, currency: str, last4: str) -> Decision:
        self.charged.append(amount_minor)
        return Decision(True)

    def check(self, amount_minor: int, currency: str, last4: str) -> Decision:
        self.checked.append(amount_minor)
        return Decision(True)


def test_a_shadow_copy_never_reaches_the_real_provider() -> None:
    provider = RecordingProvider()
    payment = AuthorizeOrders(provider=provider)
    shadow = order_placed(total_minor=1000)
    real = order_placed(total_minor=2000)
    payment.decide(Received(shadow, NOW, shadow=True), None, NOW)
    payment.decide(Received(real, NOW), None, NOW)
    assert provider.checked == [1000]
    assert provider.charged == [2000]


def test_version_2_declines_between_the_two_limits_and_agrees_elsewhere() -> None:
    v1, v2 = AuthorizeOrders("1"), AuthorizeOrders("2")
    between = order_placed(total_minor=600_000)  # 6,000 EUR: under v1's limit, over v2's
    (live,) = v1.decide(Received(between, NOW), None, NOW).events
    (candidate,) = v2.decide(Received(between, NOW), None, NOW).events
    assert isinstance(live, PaymentAuthorized)
    assert isinstance(candidate, PaymentDeclined)
    assert candidate.reason == "amount_over_limit"
    assert (live.envelope.producer_version, candidate.envelope.producer_version) == (
        "0.1.0",
        "0.2.0",
    )
    small = order_placed(total_minor=2500)
    (a,) = v1.decide(Received(small, NOW), None, NOW).events
    (b,) = v2.decide(Received(small, NOW), None, NOW).events
    assert type(a) is type(b) is PaymentAuthorized
    assert a.envelope.event_id == b.envelope.event_id  # the same ids: only the rules differ
    assert decide_payment(500_000, "EUR", "4242", 5_000) == Decision(True)  # exactly 5,000.00


def test_a_route_flag_may_only_name_a_slot() -> None:
    text = """{
  "flags": {
    "payment-route": {
      "state": "ENABLED",
      "variants": {"blue": "blue", "green": "purple"},
      "defaultVariant": "blue"
    }
  }
}
"""
    (found,) = problems(text)
    assert found == (
        5,
        "flag 'payment-route': variant 'green' is \"purple\", not one of blue, green",
    )
