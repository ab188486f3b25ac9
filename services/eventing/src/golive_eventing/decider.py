"""What a transactional processor decides, as pure functions over typed state: no Kafka here.

A decider keeps one state per key (the order, for every processor of Golive) and answers, for an
input event, an unprocessable input or a deadline passed, with the events it causes and the
key's next state. The runtime (golive_eventing.processor) commits those events, the state and the
consumed offsets in one Kafka transaction; golive_eventing.memory runs the same decider over a
list of inputs with no broker at all, which is how its rules are unit-tested.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from golive_contracts.events import Event

S = TypeVar("S")


@dataclass(frozen=True)
class Received:
    """One input as a decider sees it: the event and when the broker logged it."""

    event: Event
    logged_at: datetime
    # A router's shadow copy for a candidate version: what it decides is compared, never acted
    # on, so nothing with an outside effect may happen for it (a payment provider's dry run).
    shadow: bool = False

    @property
    def key(self) -> str:
        """Whose state it concerns: its journey (the order id, which is also the record key)."""
        return self.event.envelope.correlation_id


@dataclass(frozen=True)
class Unprocessable:
    """An input being dead-lettered: its record key, the event if it could be read (a handler
    that kept failing on it), why, and where it was (`topic:partition:offset`)."""

    key: str | None
    event: Event | None
    reason: str
    source: str


@dataclass(frozen=True)
class Decision(Generic[S]):
    """The events an input causes, and the key's state after it (None: unchanged)."""

    events: Sequence[Event] = ()
    state: S | None = None


class Decider(ABC, Generic[S]):
    """A processor's rules. Pure: everything it may know comes in as arguments (`now` is the
    injected clock), so a replay decides as the original run did."""

    @abstractmethod
    def decide(self, received: Received, state: S | None, now: datetime) -> Decision[S]:
        """What one input event causes."""

    def unprocessable(self, input: Unprocessable, state: S | None, now: datetime) -> Decision[S]:
        """The input is being dead-lettered: what must still be said so no journey stays open."""
        del input, state, now
        return Decision()

    def due(self, state: S) -> datetime | None:
        """When this state's deadline passes (a timer), if it has one."""
        del state
        return None

    def expire(self, key: str, state: S, now: datetime) -> Decision[S]:
        """The key's deadline passed (on its partition's clock): what that causes."""
        del key, state, now
        return Decision()

    # The state's form in the changelog: a processor's own, not an event interface.

    @abstractmethod
    def dump(self, state: S) -> dict[str, Any]:
        """The state as a JSON document."""

    @abstractmethod
    def load(self, document: dict[str, Any]) -> S:
        """The state from its JSON document (every form ever dumped)."""


TRACE = "trace"  # the runtime's: the trace context of the record that armed the timer


def document(
    decider: Decider[S], state: S, trace: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The state as its changelog holds it: the decider's dump, and its deadline as `due_at`
    (epoch seconds), which arms the key's timer (golive_eventing.state.KeyedState), with the
    trace context of the record that armed it (`trace`: W3C fields), which the timer's firing
    continues. The runtime owns `due_at` and `trace`; `load` is handed the whole document back."""
    found = decider.dump(state)
    due = decider.due(state)
    if due is not None:
        found["due_at"] = due.timestamp()
        if trace:
            found[TRACE] = dict(trace)
    return found
