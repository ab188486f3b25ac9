"""The order aggregate: decide(command, state) -> events, evolve(state, event) -> state. No I/O.

evolve is the order status machine: PLACED, then CONFIRMED or CANCELLED once, for good. The read
model (adapters/orders.py) and the settlement (settlement.py) apply it; neither keeps a copy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from golive_contracts.envelope import Envelope, event_id_for
from golive_contracts.events import (
    Address,
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    PaymentAuthorized,
    PaymentDeclined,
)


class OrderStatus(StrEnum):
    PLACED = "PLACED"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class OrderState:
    order_id: uuid.UUID | None = None
    status: OrderStatus | None = None
    cancel_reason: str | None = None


@dataclass(frozen=True)
class Context:
    """What decide may know about the world: the (injected) clock and who is writing."""

    now: datetime
    producer: str
    version: str


@dataclass(frozen=True)
class PlaceOrder:
    order_id: uuid.UUID
    idempotency_key: str
    customer_id: str
    email: str
    shipping_address: Address
    lines: tuple[OrderLine, ...]
    currency: str
    card_token: str


@dataclass(frozen=True)
class SettlePayment:
    outcome: PaymentAuthorized | PaymentDeclined


@dataclass(frozen=True)
class ExpirePayment:
    """No payment outcome by the order's deadline (`cause`: the timer, or the late outcome)."""

    order_id: uuid.UUID
    cause: str


PAYMENT_TIMEOUT = "payment_timeout"

Command = PlaceOrder | SettlePayment | ExpirePayment


def _envelope(cause: str, event_type: str, order_id: uuid.UUID, ctx: Context) -> Envelope:
    return Envelope(
        event_id=event_id_for(cause, event_type),
        event_type=event_type,
        occurred_at=ctx.now,
        correlation_id=str(order_id),
        causation_id=cause,
        producer=ctx.producer,
        producer_version=ctx.version,
    )


def decide(command: Command, state: OrderState, ctx: Context) -> list[Event]:
    if isinstance(command, PlaceOrder):
        return [] if state.status is not None else [_place(command, ctx)]  # a retry changes nothing
    if state.status is not OrderStatus.PLACED:
        return []  # terminal already: a late or repeated outcome changes nothing
    if isinstance(command, ExpirePayment):
        return [
            OrderCancelled(
                envelope=_envelope(command.cause, "OrderCancelled", command.order_id, ctx),
                order_id=command.order_id,
                reason=PAYMENT_TIMEOUT,
            )
        ]
    outcome = command.outcome
    cause = str(outcome.envelope.event_id)
    if isinstance(outcome, PaymentAuthorized):
        return [
            OrderConfirmed(
                envelope=_envelope(cause, "OrderConfirmed", outcome.order_id, ctx),
                order_id=outcome.order_id,
            )
        ]
    return [
        OrderCancelled(
            envelope=_envelope(cause, "OrderCancelled", outcome.order_id, ctx),
            order_id=outcome.order_id,
            reason=f"payment_declined:{outcome.reason}",
        )
    ]


def _place(command: PlaceOrder, ctx: Context) -> OrderPlaced:
    cause = f"request:{command.idempotency_key}"
    return OrderPlaced(
        envelope=_envelope(cause, "OrderPlaced", command.order_id, ctx),
        order_id=command.order_id,
        customer_id=command.customer_id,
        email=command.email,
        shipping_address=command.shipping_address,
        lines=list(command.lines),
        currency=command.currency,
        total_minor=sum(line.quantity * line.unit_price_minor for line in command.lines),
        card_token=command.card_token,
        placed_at=ctx.now,
    )


def evolve(state: OrderState, event: Event) -> OrderState:
    match event:
        case OrderPlaced() if state.status is None:
            return OrderState(order_id=event.order_id, status=OrderStatus.PLACED)
        case OrderConfirmed() if state.status is OrderStatus.PLACED:
            return OrderState(order_id=state.order_id, status=OrderStatus.CONFIRMED)
        case OrderCancelled() if state.status is OrderStatus.PLACED:
            return OrderState(
                order_id=state.order_id, status=OrderStatus.CANCELLED, cancel_reason=event.reason
            )
        case _:
            return state
