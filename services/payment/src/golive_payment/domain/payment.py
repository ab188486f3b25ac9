"""One payment decision per order, ever: the provider's answer as an event whose ids derive from
the order's, so a redelivery, a replay or a restart decides nothing twice.

An order payment cannot process (undecodable, or the rules keep failing on it) is declined
`unprocessable`, so its journey still ends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from golive_contracts.envelope import GOLIVE_NAMESPACE, Envelope, event_id_for
from golive_contracts.events import OrderPlaced, PaymentAuthorized, PaymentDeclined

from golive_payment.domain.provider import Provider, SimulatedProvider
from golive_payment.domain.rules import card_last4

SERVICE = "payment"
VERSION = "0.1.0"
UNPROCESSABLE = "unprocessable"
# ISO 4217's code for "no currency": the amount of an unreadable order is unknown.
NO_CURRENCY = "XXX"

Payment = PaymentAuthorized | PaymentDeclined


@dataclass(frozen=True)
class Decided:
    """An order payment has answered: which answer, and the event that said it."""

    decided: str  # PaymentAuthorized or PaymentDeclined
    event_id: str


@dataclass(frozen=True)
class Authorize:
    placed: OrderPlaced
    dry_run: bool = False  # a shadow copy: ask the provider's dry run, never the real thing


@dataclass(frozen=True)
class Decline:
    """The order's record cannot be processed (`cause`: where it was, or its event id)."""

    order_id: uuid.UUID
    placed: OrderPlaced | None
    cause: str


Command = Authorize | Decline


def decide(
    command: Command,
    state: Decided | None,
    now: datetime,
    provider: Provider | None = None,
    version: str = VERSION,
) -> tuple[list[Payment], Decided | None]:
    """The payment event, once per order; nothing if the order was decided before."""
    if state is not None:
        return [], None  # decided before: a duplicate, a replay or a redelivery
    payment = (
        authorize(command, now, provider or SimulatedProvider(), version)
        if isinstance(command, Authorize)
        else _decline(command, now, version)
    )
    return [payment], Decided(payment.type_name(), str(payment.envelope.event_id))


def authorize(command: Authorize, now: datetime, provider: Provider, version: str) -> Payment:
    """The provider's decision on one order (its dry run for a shadow copy)."""
    placed = command.placed
    ask = provider.check if command.dry_run else provider.authorize
    decision = ask(placed.total_minor, placed.currency, card_last4(placed.card_token))
    event_type = "PaymentAuthorized" if decision.authorized else "PaymentDeclined"
    cause = str(placed.envelope.event_id)
    envelope = _envelope(event_type, placed.order_id, cause, cause, now, version)
    if decision.authorized:
        return PaymentAuthorized(
            envelope=envelope,
            order_id=placed.order_id,
            payment_id=payment_id(placed.order_id),
            amount_minor=placed.total_minor,
            currency=placed.currency,
        )
    return PaymentDeclined(
        envelope=envelope,
        order_id=placed.order_id,
        payment_id=payment_id(placed.order_id),
        amount_minor=placed.total_minor,
        currency=placed.currency,
        reason=decision.reason or "declined",
    )


def payment_id(order_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(GOLIVE_NAMESPACE, f"payment:{order_id}")


def _decline(command: Decline, now: datetime, version: str) -> PaymentDeclined:
    placed = command.placed
    causation = str(placed.envelope.event_id) if placed else command.cause
    return PaymentDeclined(
        envelope=_envelope(
            "PaymentDeclined", command.order_id, command.cause, causation, now, version
        ),
        order_id=command.order_id,
        payment_id=payment_id(command.order_id),
        amount_minor=placed.total_minor if placed else 0,
        currency=placed.currency if placed else NO_CURRENCY,
        reason=UNPROCESSABLE,
    )


def _envelope(
    event_type: str,
    order_id: uuid.UUID,
    cause: str,
    causation: str,
    now: datetime,
    version: str = VERSION,
) -> Envelope:
    return Envelope(
        event_id=event_id_for(cause, event_type),
        event_type=event_type,
        occurred_at=now,
        correlation_id=str(order_id),
        causation_id=causation,
        producer=SERVICE,
        producer_version=version,
    )
