"""Payment as a consumer: each OrderPlaced to the domain's one decision per order; the state's
form in its changelog (orders.payment.state)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from golive_contracts.events import OrderPlaced
from golive_eventing.decider import Decider, Decision, Received, Unprocessable

from golive_payment.domain.payment import Authorize, Decided, Decline, decide


class AuthorizeOrders(Decider[Decided]):
    """OrderPlaced -> the provider's decision, once per order."""

    def decide(self, received: Received, state: Decided | None, now: datetime) -> Decision[Decided]:
        if not isinstance(received.event, OrderPlaced):
            return Decision()
        return Decision(*decide(Authorize(received.event), state, now))

    def unprocessable(
        self,
        input: Unprocessable,
        state: Decided | None,
        now: datetime,
    ) -> Decision[Decided]:
        placed = input.event if isinstance(input.event, OrderPlaced) else None
        order_id = placed.order_id if placed else _order_id(input.key)
        if order_id is None:
            return Decision()  # not an order's record
        return Decision(*decide(Decline(order_id, placed, input.source), state, now))

    def dump(self, state: Decided) -> dict[str, Any]:
        return {"decided": state.decided, "event_id": state.event_id}

    def load(self, document: dict[str, Any]) -> Decided:
        return Decided(document["decided"], document["event_id"])


def _order_id(key: str | None) -> uuid.UUID | None:
    """Records on the orders topic are keyed by order id."""
    try:
        return uuid.UUID(key) if key else None
    except ValueError:
        return None
