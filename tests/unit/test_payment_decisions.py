"""Payment's decisions, run in memory (no broker): one per order, ever, with ids derived from
the order's; an order it cannot process is declined `unprocessable`, so its journey ends."""

from __future__ import annotations

import uuid

import pytest
from golive_contracts.envelope import event_id_for
from golive_contracts.events import PaymentAuthorized, PaymentDeclined
from golive_eventing.memory import InMemory, ManualClock
from golive_payment.domain.payment import Decided, payment_id
from golive_payment.entrypoints.consumers import AuthorizeOrders

from tests.factories import NOW, order_confirmed, order_placed

pytestmark = pytest.mark.unit


@pytest.fixture
def payment() -> InMemory[Decided]:
    return InMemory(AuthorizeOrders(), ManualClock(NOW))


def test_an_order_is_decided_by_the_rules_with_ids_from_the_order(
    payment: InMemory[Decided],
) -> None:
    placed = order_placed(card="tok_visa_4242", total_minor=2500)
    [authorized] = payment.receive(placed)
    assert isinstance(authorized, PaymentAuthorized)
    cause = str(placed.envelope.event_id)
    assert authorized.envelope.event_id == event_id_for(cause, "PaymentAuthorized")
    assert authorized.envelope.causation_id == cause
    assert authorized.envelope.correlation_id == str(placed.order_id)
    assert authorized.payment_id == payment_id(placed.order_id)
    assert (authorized.amount_minor, authorized.currency) == (2500, "EUR")
    assert authorized.envelope.occurred_at == NOW  # the injected clock


def test_a_declining_card_is_declined_with_its_reason(payment: InMemory[Decided]) -> None:
    [declined] = payment.receive(order_placed(card="tok_visa_9995"))
    assert isinstance(declined, PaymentDeclined)
    assert declined.reason == "insufficient_funds"


def test_an_order_is_decided_once_however_often_it_comes(payment: InMemory[Decided]) -> None:
    """A duplicate, a replay or a redelivery decides nothing twice."""
    placed, other = order_placed(), order_placed()
    decided = payment.receive_all([placed, other, placed, other])
    assert [e.envelope.correlation_id for e in decided] == [
        str(placed.order_id),
        str(other.order_id),
    ]
    assert payment.receive(placed) == []
    assert payment.unprocessable(str(placed.order_id), "handler failed", event=placed) == []


def test_other_events_on_the_orders_topic_are_not_payments_business(
    payment: InMemory[Decided],
) -> None:
    assert payment.receive(order_confirmed(uuid.uuid4())) == []


def test_an_unprocessable_order_is_declined_unprocessable_with_what_it_says(
    payment: InMemory[Decided],
) -> None:
    placed = order_placed(total_minor=4200)
    [declined] = payment.unprocessable(
        str(placed.order_id), "handler failed 3 times", event=placed, source="orders:1:7"
    )
    assert isinstance(declined, PaymentDeclined)
    assert (declined.reason, declined.amount_minor, declined.currency) == (
        "unprocessable",
        4200,
        "EUR",
    )
    assert declined.envelope.event_id == event_id_for("orders:1:7", "PaymentDeclined")
    assert declined.envelope.causation_id == str(placed.envelope.event_id)
    assert payment.receive(placed) == [], "declined is decided"


def test_an_unreadable_record_keyed_by_an_order_is_declined_without_an_amount(
    payment: InMemory[Decided],
) -> None:
    order_id = uuid.uuid4()
    [declined] = payment.unprocessable(str(order_id), "no magic byte", source="orders:0:3")
    assert isinstance(declined, PaymentDeclined)
    assert (declined.order_id, declined.amount_minor, declined.currency) == (order_id, 0, "XXX")
    assert declined.envelope.causation_id == "orders:0:3"


@pytest.mark.parametrize("key", [None, "not-an-order-id"])
def test_an_unreadable_record_of_no_order_declines_nothing(
    payment: InMemory[Decided], key: str | None
) -> None:
    assert payment.unprocessable(key, "no magic byte") == []
