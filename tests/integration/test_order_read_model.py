"""The orders read model applies a batch's outcomes as the aggregate does (only a PLACED order
moves, the first outcome wins), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from confluent_kafka import TopicPartition
from golive_contracts.events import Event
from golive_eventing.changes import Changes, Listener
from golive_eventing.db import make_engine
from golive_eventing.records import Consumed
from golive_order.adapters import orders

from tests.factories import order_cancelled, order_confirmed, order_placed
from tests.helpers import eventually

pytestmark = pytest.mark.integration


def _batch(*events: Event) -> list[Consumed]:
    return [
        Consumed("orders", 0, offset, 0, None, (), None, event)
        for offset, event in enumerate(events)
    ]


def test_only_a_placed_order_moves_and_the_first_outcome_wins(database_url: str) -> None:
    engine = make_engine(database_url)
    orders.create_schema(engine)
    projection = orders.OrderProjection(engine)
    a, b = order_placed(), order_placed()
    unknown = uuid.uuid4()
    confirmed_a = order_confirmed(a.order_id)
    first = _batch(
        a,
        b,
        confirmed_a,
        order_cancelled(a.order_id, "too late: confirmed first"),
        order_cancelled(b.order_id, "payment_declined:expired_card"),
        order_confirmed(unknown),
    )
    with engine.begin() as conn:
        projection.write(conn, first)
    with engine.begin() as conn:
        projection.write(conn, _batch(order_cancelled(a.order_id, "later still")))

    found_a = orders.get_order(engine, str(a.order_id))
    found_b = orders.get_order(engine, str(b.order_id))
    assert found_a is not None and found_b is not None
    assert (found_a.order["status"], found_a.order["cancel_reason"]) == ("CONFIRMED", None)
    # The version (GET's ETag) is the event that moved it; the outcomes it ignored leave it.
    assert found_a.version == str(confirmed_a.envelope.event_id)
    assert (found_b.order["status"], found_b.order["cancel_reason"]) == (
        "CANCELLED",
        "payment_declined:expired_card",
    )
    assert orders.get_order(engine, str(unknown)) is None


def test_a_committed_batch_wakes_the_requests_waiting_on_its_orders_in_every_instance(
    database_url: str,
) -> None:
    """The projecting instance wakes its own waiters; instances sharing a PostgreSQL read model
    are woken by its NOTIFY (a SQLite read model has one instance: nobody else to wake)."""
    engine = make_engine(database_url)
    orders.create_schema(engine)
    here, there = Changes(), Changes()
    projection = orders.OrderProjection(engine, changes=here)
    elsewhere = Listener(make_engine(database_url), orders.CHANGES_CHANNEL, there)
    shared = engine.dialect.name == "postgresql"
    elsewhere.start()
    try:
        if shared:
            eventually(elsewhere.listening.is_set, 10, "the other instance to listen")
        placed = order_placed()

        async def waiting() -> tuple[bool, bool]:
            key = str(placed.order_id)
            with here.watch(key) as mine, there.watch(key) as theirs:
                await asyncio.to_thread(
                    projection.apply,
                    "order-projector",
                    _batch(placed),
                    [TopicPartition("orders", 0, 1)],
                    {("orders", 0): None},
                )
                return await mine.wait(5), await theirs.wait(5 if shared else 0.2)

        assert asyncio.run(waiting()) == (True, shared)
    finally:
        elsewhere.close()
