"""Payment as a consumer: each OrderPlaced to the domain's one decision per order; the state's
form in its changelog (orders.payment.state)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from golive_contracts.events import OrderPlaced
from golive_eventing.decider import Decider, Decision, Received, Unprocessable

from golive_payment.domain.payment import Authorize, Decided, Decline, decide
from golive_payment.domain.provider import Provider, SimulatedProvider


class AuthorizeOrders(Decider[Decided]):
    """OrderPlaced -> the provider's decision, once per order, by one version of the rules (a
    version slot's: golive_payment.domain.rules.LIMITS_MAJOR)."""

    def __init__(self, rules: str = "1", provider: Provider | None = None) -> None:
        self.rules = rules
        self.provider = provider or SimulatedProvider(rules)
        # The version its events say they come from: 0.1.0 for rules 1, 0.2.0 for rules 2.
        self.version = f"0.{rules}.0"

    def decide(self, received: Received, state: Decided | None, now: datetime) -> Decision[Decided]:
        if not isinstance(received.event, OrderPlaced):
            return Decision()
        command = Authorize(received.event, dry_run=received.shadow)
        return Decision(*decide(command, state, now, self.provider, self.version))

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
        command = Decline(order_id, placed, input.source)
        return Decision(*decide(command, state, now, self.provider, self.version))

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
