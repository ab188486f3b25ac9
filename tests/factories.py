"""Events and requests for tests, built the way the services build them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from golive_contracts.envelope import Envelope, event_id_for, order_id_for
from golive_contracts.events import (
    Address,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    PaymentAuthorized,
    PaymentDeclined,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def order_request(
    customer: str = "c-1", card: str = "tok_visa_4242", currency: str = "EUR", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer,
        "email": "ada@example.com",
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "Main 1",
            "city": "Utrecht",
            "postal_code": "3511AA",
            "country": "NL",
        },
        "lines": [{"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 1250}],
        "currency": currency,
        "card_token": card,
    }
    body.update(overrides)
    return body


def order_placed(
    key: str | None = None,
    card: str = "tok_visa_4242",
    total_minor: int = 2500,
    currency: str = "EUR",
    placed_at: datetime = NOW,
) -> OrderPlaced:
    key = key or str(uuid.uuid4())
    order_id = order_id_for(key)
    return OrderPlaced(
        envelope=Envelope(
            event_id=event_id_for(f"request:{key}", "OrderPlaced"),
            event_type="OrderPlaced",
            occurred_at=NOW,
            correlation_id=str(order_id),
            causation_id=f"request:{key}",
            producer="test",
            producer_version="test",
        ),
        order_id=order_id,
        customer_id="c-1",
        email="ada@example.com",
        shipping_address=Address(
            name="Ada", line1="Main 1", city="Utrecht", postal_code="3511AA", country="NL"
        ),
        lines=[OrderLine(sku="BOOK-1", quantity=1, unit_price_minor=total_minor)],
        currency=currency,
        total_minor=total_minor,
        card_token=card,
        placed_at=placed_at,
    )


def payment_outcome(
    order_id: uuid.UUID, authorized: bool, reason: str = "card_declined", amount_minor: int = 2599
) -> PaymentAuthorized | PaymentDeclined:
    event_type = "PaymentAuthorized" if authorized else "PaymentDeclined"
    envelope = Envelope(
        event_id=uuid.uuid4(),
        event_type=event_type,
        occurred_at=NOW,
        correlation_id=str(order_id),
        producer="test",
        producer_version="test",
    )
    if authorized:
        return PaymentAuthorized(
            envelope=envelope,
            order_id=order_id,
            payment_id=uuid.uuid4(),
            amount_minor=amount_minor,
            currency="EUR",
        )
    return PaymentDeclined(
        envelope=envelope,
        order_id=order_id,
        payment_id=uuid.uuid4(),
        amount_minor=amount_minor,
        currency="EUR",
        reason=reason,
    )


def placed_now() -> OrderPlaced:
    """An order placed just now (deadlines run from the log time; placed_at is for show)."""
    return order_placed(placed_at=datetime.now(UTC))


def outcome_for(order_id: uuid.UUID, authorized: bool) -> PaymentAuthorized | PaymentDeclined:
    """A payment outcome for an order: authorised, or declined expired_card."""
    return payment_outcome(order_id, authorized, reason="expired_card", amount_minor=100)


def order_confirmed(order_id: uuid.UUID) -> OrderConfirmed:
    """An OrderConfirmed as another writer might have written it."""
    return OrderConfirmed(envelope=_outcome_envelope("OrderConfirmed", order_id), order_id=order_id)


def order_cancelled(order_id: uuid.UUID, reason: str) -> OrderCancelled:
    """An OrderCancelled as another writer might have written it."""
    envelope = _outcome_envelope("OrderCancelled", order_id)
    return OrderCancelled(envelope=envelope, order_id=order_id, reason=reason)


def _outcome_envelope(event_type: str, order_id: uuid.UUID) -> Envelope:
    return Envelope(
        event_id=uuid.uuid4(),
        event_type=event_type,
        occurred_at=NOW,
        correlation_id=str(order_id),
        producer="test",
        producer_version="test",
    )
