"""OrderPlaced v1, from a fixture written before v2, read by today's code: domain, payment, audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from golive_audit.adapters.store import row_for
from golive_contracts.events import OrderPlaced, PaymentAuthorized
from golive_eventing.memory import InMemory
from golive_eventing.records import Consumed
from golive_order.domain.order import (
    Context,
    OrderState,
    OrderStatus,
    SettlePayment,
    decide,
    evolve,
)
from golive_payment.entrypoints.consumers import AuthorizeOrders

from tests.factories import NOW
from tests.upcasting import FIXTURE, encode_v1, fixture_bytes, read_as_current

pytestmark = pytest.mark.unit


def _consumed(event: OrderPlaced, body: bytes) -> Consumed:
    return Consumed("orders", 0, 7, 0, str(event.order_id), (), body, event)


def test_a_v1_record_reads_as_the_current_model_with_the_default() -> None:
    event = read_as_current(fixture_bytes())
    assert str(event.order_id) == json.loads(FIXTURE.read_text())["order_id"]
    assert event.channel == "api"  # v2's field, filled from its default
    assert event.total_minor == 2500
    assert event.shipping_address.city == "Utrecht"


def test_the_domain_evolves_and_decides_on_a_v1_order() -> None:
    placed = read_as_current(fixture_bytes())
    state = evolve(OrderState(), placed)
    assert state == OrderState(order_id=placed.order_id, status=OrderStatus.PLACED)
    (payment,) = InMemory(AuthorizeOrders(), lambda: NOW).receive(placed)
    assert isinstance(payment, PaymentAuthorized)
    assert payment.amount_minor == placed.total_minor
    (confirmed,) = decide(SettlePayment(payment), state, Context(NOW, "order", "test"))
    assert evolve(state, confirmed).status is OrderStatus.CONFIRMED


def test_the_recorder_keeps_the_v1_bytes_and_shows_the_current_view() -> None:
    placed = read_as_current(fixture_bytes())
    row = row_for(_consumed(placed, fixture_bytes()))
    assert row["raw"] == fixture_bytes()
    assert row["payload"]["channel"] == "api"
    assert row["event_type"] == "OrderPlaced"


def test_v1_encoding_round_trips_without_the_new_field() -> None:
    placed = read_as_current(fixture_bytes())
    again = read_as_current(encode_v1(placed.model_copy(update={"channel": "web"})))
    assert again.channel == "api"  # v1 has no channel: the writer's "web" cannot travel
    assert again.model_dump(exclude={"channel"}) == placed.model_dump(exclude={"channel"})
    assert placed.placed_at.tzinfo is not None and placed.placed_at == datetime(
        2026, 11, 23, 12, 0, tzinfo=UTC
    )
