"""A decider run in memory: inputs in, outputs and state out, no Kafka. The same decisions a
TransactionalProcessor makes, for unit tests of a service's rules and for trying one out.

Each key's state goes through the decider's dump and load between inputs, as it goes through
the changelog in Kafka, so a state that does not survive its own codec fails here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Generic

from golive_contracts.events import Event

from golive_eventing.decider import Decider, Decision, Received, S, Unprocessable, document


class InMemory(Generic[S]):
    def __init__(self, decider: Decider[S], clock: Callable[[], datetime]) -> None:
        self.decider = decider
        self.clock = clock
        self.documents: dict[str, dict[str, Any]] = {}
        self.outputs: list[Event] = []

    def state(self, key: str) -> S | None:
        found = self.documents.get(key)
        return self.decider.load(found) if found is not None else None

    def receive(self, event: Event, logged_at: datetime | None = None) -> list[Event]:
        """One input event, logged at `logged_at` (default: now); the events it caused."""
        received = Received(event, logged_at or self.clock())
        return self._apply(
            received.key, self.decider.decide(received, self.state(received.key), self.clock())
        )

    def receive_all(self, events: Iterable[Event]) -> list[Event]:
        """Each event in turn, logged now; every event they caused."""
        return [caused for event in events for caused in self.receive(event)]

    def unprocessable(
        self, key: str | None, reason: str, event: Event | None = None, source: str = "t:0:0"
    ) -> list[Event]:
        """An input being dead-lettered; the events that still had to be said."""
        found = self.state(key) if key is not None else None
        decision = self.decider.unprocessable(
            Unprocessable(key, event, reason, source), found, self.clock()
        )
        return self._apply(key, decision)

    def expire_due(self) -> list[Event]:
        """Every deadline passed by now, earliest first; the events they caused."""
        now = self.clock()
        due = []
        for key in self.documents:
            found = self.state(key)
            when = self.decider.due(found) if found is not None else None
            if when is not None and when <= now:
                due.append((when, key))
        caused = []
        for _, key in sorted(due):
            found = self.state(key)
            assert found is not None
            caused += self._apply(key, self.decider.expire(key, found, now))
        return caused

    def _apply(self, key: str | None, decision: Decision[S]) -> list[Event]:
        if decision.state is not None:
            if key is None:
                raise ValueError("a decision without a key cannot keep state")
            self.documents[key] = document(self.decider, decision.state)
        self.outputs += decision.events
        return list(decision.events)


class ManualClock:
    """A clock that stands still until moved: InMemory's clock in a test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> datetime:
        self.at += by
        return self.at
