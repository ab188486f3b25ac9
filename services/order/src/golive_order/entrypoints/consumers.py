"""The order process manager as a consumer: records in, settlement commands to the domain, the
events and state it answers back to the runtime (golive_eventing.processor). The state's form in
the changelog (orders.order-process-manager.state) is here too: every form it was ever written
in is read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from golive_contracts.events import (
    BY_FULL_NAME,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    PaymentAuthorized,
    PaymentDeclined,
)
from golive_eventing.decider import Decider, Decision, Received

from golive_order.domain.settlement import (
    Command,
    DeadlinePassed,
    EndSeen,
    OrderSeen,
    Outcome,
    OutcomeSeen,
    Rules,
    Settlement,
    Stage,
    due,
    settle,
)

SERVICE = "order-process-manager"


class SettleOrders(Decider[Settlement]):
    def __init__(self, version: str, payment_timeout: timedelta) -> None:
        self.rules = Rules(payment_timeout=payment_timeout, producer=SERVICE, version=version)

    def decide(
        self, received: Received, state: Settlement | None, now: datetime
    ) -> Decision[Settlement]:
        command: Command
        match received.event:
            case OrderPlaced() as placed:
                command = OrderSeen(placed, received.logged_at)
            case PaymentAuthorized() | PaymentDeclined() as outcome:
                command = OutcomeSeen(outcome, received.logged_at)
            case OrderConfirmed() | OrderCancelled() as end:
                command = EndSeen(end)
            case _:
                return Decision()
        return Decision(*settle(command, state, self.rules, now))

    def due(self, state: Settlement) -> datetime | None:
        return due(state)

    def expire(self, key: str, state: Settlement, now: datetime) -> Decision[Settlement]:
        return Decision(*settle(DeadlinePassed(uuid.UUID(key)), state, self.rules, now))

    # -- the changelog's documents: {"status", "due_at", "placed", "outcome", "outcome_written_at"}

    def dump(self, state: Settlement) -> dict[str, Any]:
        document: dict[str, Any] = {"status": state.stage.value}
        if state.placed_event is not None:
            document["placed"] = state.placed_event  # due_at is the runtime's (decider.document)
        if state.outcome is not None:
            document["outcome"] = {
                "type": state.outcome.full_name(),
                "event": state.outcome.model_dump(mode="json"),
            }
        if state.outcome_logged_at is not None:
            document["outcome_written_at"] = state.outcome_logged_at.timestamp()
        return document

    def load(self, document: dict[str, Any]) -> Settlement:
        return Settlement(
            Stage(document["status"]),
            due_at=_time(document.get("due_at")),
            placed_event=document.get("placed"),
            outcome=_outcome(document.get("outcome")),
            outcome_logged_at=_time(document.get("outcome_written_at")),
        )


def _time(epoch_s: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch_s, UTC) if epoch_s is not None else None


def _outcome(document: dict[str, Any] | None) -> Outcome | None:
    if document is None:
        return None
    found = BY_FULL_NAME[document["type"]].model_validate(document["event"])
    assert isinstance(found, PaymentAuthorized | PaymentDeclined)
    return found
