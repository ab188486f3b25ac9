"""The order process manager: it ends every journey, exactly once.

Inputs: the orders topic (OrderPlaced, and the outcomes on it) and the payments topic, which are
co-partitioned (same key, same partition count). Per order it remembers, in its state changelog
(orders.order-process-manager.state, committed in the same Kafka transaction as its outputs):

    PLACED          OrderPlaced seen; a timer is armed at its log time + payment timeout
    AWAITING_ORDER  a payment outcome came first (the two topics are read independently)
    CONFIRMED / CANCELLED   terminal: anything later about this order changes nothing

A payment outcome settles a PLACED order; one written after the deadline, or no outcome at all
by then (the timer, on the partition's clock, see TransactionalProcessor.tick), cancels it with
reason payment_timeout. A real shop would also void a late authorisation; here the payment
service only simulates a provider, so there is nothing to void.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from golive_contracts import topology
from golive_contracts.events import (
    BY_FULL_NAME,
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    PaymentAuthorized,
    PaymentDeclined,
)
from golive_eventing.runner import Consumed, Decider
from golive_eventing.state import Changes

from golive_order.domain import (
    Context,
    ExpirePayment,
    OrderState,
    OrderStatus,
    SettlePayment,
    decide,
)

GROUP = topology.ORDER_PROCESS_MANAGER.name
SERVICE = "order-process-manager"
AWAITING_ORDER = "AWAITING_ORDER"

Outcome = PaymentAuthorized | PaymentDeclined


class SettleOrders(Decider):
    def __init__(self, clock: Callable[[], datetime], version: str, timeout: timedelta) -> None:
        self.clock = clock
        self.version = version
        self.payment_timeout = timeout

    def _ctx(self) -> Context:
        return Context(now=self.clock(), producer=SERVICE, version=self.version)

    def decide(self, event: Event, record: Consumed, state: Changes | None) -> list[Event]:
        assert state is not None
        match event:
            case OrderPlaced():
                return self._placed(event, record, state)
            case PaymentAuthorized() | PaymentDeclined():
                return self._outcome(event, record, state)
            case OrderConfirmed() | OrderCancelled():
                # Ours, read back, or another writer's: either way the order is over.
                found = state.get(str(event.order_id))
                if found is None or found["status"] in (OrderStatus.PLACED, AWAITING_ORDER):
                    status = (
                        OrderStatus.CONFIRMED
                        if isinstance(event, OrderConfirmed)
                        else OrderStatus.CANCELLED
                    )
                    state.put(str(event.order_id), record.partition, {"status": status.value})  # fmt: skip
                return []
            case _:
                return []

    def _placed(self, event: OrderPlaced, record: Consumed, state: Changes) -> list[Event]:
        order = str(event.order_id)
        found = state.get(order)
        # Log time, not placed_at: the deadline runs from when the order entered Kafka, so a replay
        # (new log times) is judged as the original run was, not as decades overdue.
        due_at = record.timestamp_ms / 1000 + self.payment_timeout.total_seconds()
        if found is None:
            state.put(order, record.partition, {"status": OrderStatus.PLACED.value, "due_at": due_at,
                                                "placed": str(event.envelope.event_id)})  # fmt: skip
            return []
        if found["status"] != AWAITING_ORDER:
            return []  # a duplicate OrderPlaced
        outcome = _load_outcome(found["outcome"])
        return self._settle(
            event.order_id, outcome, found["outcome_written_at"] > due_at, record.partition, state
        )

    def _outcome(self, event: Outcome, record: Consumed, state: Changes) -> list[Event]:
        order = str(event.order_id)
        found = state.get(order)
        written_at = record.timestamp_ms / 1000
        if found is None:
            state.put(order, record.partition, {"status": AWAITING_ORDER, "outcome": _dump_outcome(event),
                                                "outcome_written_at": written_at})  # fmt: skip
            return []
        if found["status"] != OrderStatus.PLACED:
            return []  # terminal already (or a second outcome while awaiting): changes nothing
        return self._settle(
            event.order_id, event, written_at > found["due_at"], record.partition, state
        )

    def _settle(
        self, order_id: uuid.UUID, outcome: Outcome, late: bool, partition: int, state: Changes
    ) -> list[Event]:
        placed = OrderState(order_id=order_id, status=OrderStatus.PLACED)
        cause = str(outcome.envelope.event_id)
        command = ExpirePayment(order_id, cause) if late else SettlePayment(outcome)
        events = decide(command, placed, self._ctx())
        status = (
            OrderStatus.CONFIRMED
            if isinstance(events[0], OrderConfirmed)
            else OrderStatus.CANCELLED
        )
        state.put(str(order_id), partition, {"status": status.value})
        return events

    def timeout(self, key: str, state: Changes, now: datetime) -> list[Event]:
        del now
        found = state.get(key)
        entry = state.state.entries.get(key)
        if found is None or entry is None or found["status"] != OrderStatus.PLACED:
            return []
        order_id = uuid.UUID(key)
        events = decide(
            ExpirePayment(order_id, f"timeout:{found['placed']}"),
            OrderState(order_id=order_id, status=OrderStatus.PLACED),
            self._ctx(),
        )
        state.put(key, entry.partition, {"status": OrderStatus.CANCELLED.value})
        return events


def _dump_outcome(event: Outcome) -> dict[str, Any]:
    return {"type": event.full_name(), "event": event.model_dump(mode="json")}


def _load_outcome(document: dict[str, Any]) -> Outcome:
    found = BY_FULL_NAME[document["type"]].model_validate(document["event"])
    assert isinstance(found, PaymentAuthorized | PaymentDeclined)
    return found
