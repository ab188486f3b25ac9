"""decide/evolve of the order aggregate, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from golive_contracts.envelope import event_id_for, order_id_for
from golive_contracts.events import (
    Address,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    PaymentAuthorized,
    PaymentDeclined,
)
from golive_order.domain.order import (
    Context,
    OrderState,
    OrderStatus,
    PlaceOrder,
    SettlePayment,
    decide,
    evolve,
)

from tests.factories import payment_outcome

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CTX = Context(now=NOW, producer="order", version="test")
ORDER_ID = order_id_for("key-1")


def place(key: str = "key-1") -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id_for(key),
        idempotency_key=key,
        customer_id="c-1",
        email="ada@example.com",
        shipping_address=Address(
            name="Ada", line1="Main 1", city="Utrecht", postal_code="3511AA", country="NL"
        ),
        lines=(
            OrderLine(sku="A", quantity=2, unit_price_minor=1250),
            OrderLine(sku="B", quantity=1, unit_price_minor=99),
        ),
        currency="EUR",
        card_token="tok_visa_4242",
    )


def outcome(authorized: bool, reason: str = "card_declined") -> PaymentAuthorized | PaymentDeclined:
    return payment_outcome(ORDER_ID, authorized, reason)


def test_placing_an_order_emits_order_placed_with_total_and_deterministic_ids() -> None:
    (event,) = decide(place(), OrderState(), CTX)
    assert isinstance(event, OrderPlaced)
    assert event.total_minor == 2 * 1250 + 99
    assert event.order_id == ORDER_ID
    assert event.envelope.event_id == event_id_for("request:key-1", "OrderPlaced")
    assert event.envelope.correlation_id == str(ORDER_ID)
    assert event.placed_at == NOW
    assert decide(place(), OrderState(), CTX) == [event]  # a retry decides the very same event


def test_an_order_already_placed_is_not_placed_again() -> None:
    state = evolve(OrderState(), decide(place(), OrderState(), CTX)[0])
    assert state.status is OrderStatus.PLACED
    assert decide(place(), state, CTX) == []


@pytest.mark.parametrize(
    ("authorized", "expected"), [(True, OrderConfirmed), (False, OrderCancelled)]
)
def test_payment_outcome_settles_a_placed_order(authorized: bool, expected: type) -> None:
    payment = outcome(authorized)
    (event,) = decide(SettlePayment(payment), OrderState(ORDER_ID, OrderStatus.PLACED), CTX)
    assert isinstance(event, expected)
    assert event.envelope.causation_id == str(payment.envelope.event_id)
    assert event.envelope.event_id == event_id_for(
        str(payment.envelope.event_id), expected.__name__
    )


def test_declined_payment_names_its_reason() -> None:
    (event,) = decide(
        SettlePayment(outcome(False, "insufficient_funds")),
        OrderState(ORDER_ID, OrderStatus.PLACED),
        CTX,
    )
    assert isinstance(event, OrderCancelled)
    assert event.reason == "payment_declined:insufficient_funds"


@pytest.mark.parametrize("terminal", [OrderStatus.CONFIRMED, OrderStatus.CANCELLED])
def test_a_late_payment_outcome_does_not_change_a_terminal_order(terminal: OrderStatus) -> None:
    assert decide(SettlePayment(outcome(True)), OrderState(ORDER_ID, terminal), CTX) == []


def test_evolve_follows_the_journey_and_ignores_what_cannot_happen() -> None:
    placed = decide(place(), OrderState(), CTX)[0]
    state = evolve(OrderState(), placed)
    (confirmed,) = decide(SettlePayment(outcome(True)), state, CTX)
    done = evolve(state, confirmed)
    assert done.status is OrderStatus.CONFIRMED
    (cancelled,) = decide(SettlePayment(outcome(False)), state, CTX)
    assert evolve(done, cancelled) == done  # confirmed stays confirmed
    assert evolve(done, placed) == done
