"""The order process manager's rules: every order's journey ends, exactly once.

What it hears of one order, in whatever order its two topics deliver it: the OrderPlaced, the
payment outcome, an end read back (its own, or another writer's), and the deadline passing. Per
order it remembers a Settlement:

    PLACED          OrderPlaced seen; the deadline is its log time + the payment timeout
    AWAITING_ORDER  the payment outcome came first (the two topics are read independently)
    CONFIRMED / CANCELLED   the end: anything later about this order changes nothing

An outcome logged after the deadline, or none by then, cancels the order with payment_timeout.
Log times, not event times: the deadline runs from when the order entered Kafka, so a replay
(new log times) is judged as the original run was, not as decades overdue. A real shop would
also void a late authorisation; here payment only simulates a provider, so there is nothing to
void.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from golive_contracts.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    PaymentAuthorized,
    PaymentDeclined,
)

from golive_order.domain.order import (
    Context,
    ExpirePayment,
    OrderState,
    OrderStatus,
    SettlePayment,
    decide,
    evolve,
)

Outcome = PaymentAuthorized | PaymentDeclined


class Stage(StrEnum):
    PLACED = "PLACED"
    AWAITING_ORDER = "AWAITING_ORDER"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Settlement:
    stage: Stage
    due_at: datetime | None = None  # PLACED: the payment deadline
    placed_event: str | None = None  # PLACED: the OrderPlaced's event id, cause of a timeout
    outcome: Outcome | None = None  # AWAITING_ORDER: the outcome that came first
    outcome_logged_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.stage in (Stage.PLACED, Stage.AWAITING_ORDER)


@dataclass(frozen=True)
class OrderSeen:
    placed: OrderPlaced
    logged_at: datetime


@dataclass(frozen=True)
class OutcomeSeen:
    outcome: Outcome
    logged_at: datetime


@dataclass(frozen=True)
class EndSeen:
    end: OrderConfirmed | OrderCancelled


@dataclass(frozen=True)
class DeadlinePassed:
    order_id: uuid.UUID


Command = OrderSeen | OutcomeSeen | EndSeen | DeadlinePassed


@dataclass(frozen=True)
class Rules:
    payment_timeout: timedelta
    producer: str
    version: str


Settled = tuple[list[Event], Settlement | None]  # the events, and the next state (None: unchanged)


def settle(command: Command, state: Settlement | None, rules: Rules, now: datetime) -> Settled:
    """What one command does to an order's settlement: the events, and the next state."""
    ctx = Context(now=now, producer=rules.producer, version=rules.version)
    handler: Callable[[Any, Settlement | None, Rules, Context], Settled] = HANDLERS[type(command)]
    return handler(command, state, rules, ctx)


def _order_seen(
    command: OrderSeen, state: Settlement | None, rules: Rules, ctx: Context
) -> Settled:
    due_at = command.logged_at + rules.payment_timeout
    if state is None:
        placed_event = str(command.placed.envelope.event_id)
        return [], Settlement(Stage.PLACED, due_at=due_at, placed_event=placed_event)
    if state.stage is not Stage.AWAITING_ORDER or state.outcome is None:
        return [], None  # a duplicate OrderPlaced
    late = state.outcome_logged_at is not None and state.outcome_logged_at > due_at
    return _end(command.placed.order_id, state.outcome, late, ctx)


def _outcome_seen(
    command: OutcomeSeen, state: Settlement | None, rules: Rules, ctx: Context
) -> Settled:
    del rules
    outcome = command.outcome
    if state is None:
        return [], Settlement(
            Stage.AWAITING_ORDER, outcome=outcome, outcome_logged_at=command.logged_at
        )
    if state.stage is not Stage.PLACED:
        return [], None  # ended already, or a second outcome while awaiting the order
    late = state.due_at is not None and command.logged_at > state.due_at
    return _end(outcome.order_id, outcome, late, ctx)


def _end_seen(command: EndSeen, state: Settlement | None, rules: Rules, ctx: Context) -> Settled:
    """Ours, read back, or another writer's: either way the order is over."""
    del rules, ctx
    if state is not None and not state.open:
        return [], None
    ended = Stage.CONFIRMED if isinstance(command.end, OrderConfirmed) else Stage.CANCELLED
    return [], Settlement(ended)


def _deadline_passed(
    command: DeadlinePassed, state: Settlement | None, rules: Rules, ctx: Context
) -> Settled:
    del rules
    if state is None or state.stage is not Stage.PLACED:
        return [], None
    timeout = ExpirePayment(command.order_id, f"timeout:{state.placed_event}")
    placed = OrderState(order_id=command.order_id, status=OrderStatus.PLACED)
    return decide(timeout, placed, ctx), Settlement(Stage.CANCELLED)


HANDLERS: dict[type, Callable[[Any, Settlement | None, Rules, Context], Settled]] = {
    OrderSeen: _order_seen,
    OutcomeSeen: _outcome_seen,
    EndSeen: _end_seen,
    DeadlinePassed: _deadline_passed,
}


def due(state: Settlement) -> datetime | None:
    """When the order's deadline passes, while it waits for its payment."""
    return state.due_at if state.stage is Stage.PLACED else None


def _end(order_id: uuid.UUID, outcome: Outcome, late: bool, ctx: Context) -> Settled:
    """The order confirmed or cancelled by its outcome; cancelled if the outcome came late."""
    placed = OrderState(order_id=order_id, status=OrderStatus.PLACED)
    cause = str(outcome.envelope.event_id)
    command = ExpirePayment(order_id, cause) if late else SettlePayment(outcome)
    events = decide(command, placed, ctx)
    after = evolve(placed, events[0])
    assert after.status is not None
    return events, Settlement(Stage(after.status.value))
