"""The router of a routed group (ADR 0012): it hands each input to one version slot.

For every input the routed group handles, in one Kafka transaction with its consumed offsets:
- a key already pinned goes to its slot (a duplicate, a redelivery, a replay: where its first
  record went, and that slot's own state decides nothing twice);
- a new key goes where the route flag says (flagd `fractional` on the order id for a canary),
  and is pinned there for good, in the router's changelog;
- with a shadow slot set (the shadow flag), that slot also gets a copy marked
  `golive.route: shadow`, whose outputs go to shadow topics only; a copy never pins.

So each key is decided by exactly one slot across every route change: a change moves only keys
not yet pinned, a pin commits with the forward that made it, and a slot resumes from its own
committed offsets. The record is forwarded as it came (its bytes, undecodable ones too, for the
slot to dead-letter), with the trace context of the router's span.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from golive_contracts.flags import NO_SHADOW, route_flag, shadow_flag
from golive_contracts.topology import ROUTE_HEADER, SHADOW, SLOTS, Group

from golive_eventing import tracing
from golive_eventing.decider import Decider, Decision, Received
from golive_eventing.errors import RetryBatchError
from golive_eventing.flags import Flags
from golive_eventing.processor import TransactionalProcessor, utc_now
from golive_eventing.records import Consumed
from golive_eventing.serde import EventSerde
from golive_eventing.settings import KafkaSettings
from golive_eventing.state import Changes

log = logging.getLogger(__name__)


class Pins(Decider[str]):
    """A router's state per key: the slot it is pinned to."""

    def decide(self, received: Received, state: str | None, now: datetime) -> Decision[str]:
        del received, state, now
        return Decision()

    def dump(self, state: str) -> dict[str, Any]:
        return {"slot": state}

    def load(self, document: dict[str, Any]) -> str:
        return str(document["slot"])


def choose(pinned: str | None, route: str | None, shadow: str | None) -> tuple[str, str | None]:
    """Where a key's record goes, and where its shadow copy goes (if anywhere): its pin, else
    the route. Pure; RetryBatchError when a new key has no readable route."""
    slot = pinned or route
    if slot not in SLOTS:
        raise RetryBatchError(f"the route is unreadable ({route!r}): new keys wait")
    copy = shadow if shadow in SLOTS and shadow != slot else None
    return slot, copy


class Router(TransactionalProcessor[str]):
    """The router group `group` (topology.routing), routing by `flags`."""

    def __init__(
        self,
        settings: KafkaSettings,
        serde: EventSerde,
        group: Group,
        flags: Flags,
        instance: str,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        assert group.routes is not None, f"{group.name} is not a router"
        super().__init__(settings, serde, group, Pins(), instance, clock=clock)
        self.flags = flags
        self.route = route_flag(group.routes)
        self.shadow = shadow_flag(group.routes)
        self.outputs = settings.names.slot_inputs(group)  # per slot, aligned with self.topics
        self.handled = {name.encode() for name in group.handles}
        self._copy_to: object = NO_SHADOW  # the shadow slot, as read for the batch in hand

    def handle(self, batch: Sequence[Consumed]) -> None:
        """The processor's transaction per batch (TransactionalProcessor.handle), each record
        forwarded (_record); the shadow flag read once per batch."""
        self._copy_to = self.flags.value(self.shadow)
        super().handle(batch)

    def _record(self, record: Consumed, changes: Changes | None) -> None:
        assert changes is not None  # a router keeps its pins
        if not self._handles(record):
            return
        with tracing.processing(record, self.group):
            self._forward(record, changes, self._copy_to)

    def _handles(self, record: Consumed) -> bool:
        """What the routed group acts on, by the event type header; a record without one (not
        ours to judge) goes through, for the slot to dead-letter if it cannot read it."""
        if not self.handled:
            return True
        event_type = record.header("event_type")
        return event_type is None or event_type in self.handled

    def _forward(self, record: Consumed, changes: Changes, shadow: object) -> None:
        key = record.key
        found = changes.get(key) if key is not None else None
        pinned = self.decider.load(found) if found is not None else None
        route = None
        if pinned is None:
            value = self.flags.value(self.route, key, order_id=key or "")
            route = value if isinstance(value, str) else None
        slot, copy = choose(pinned, route, shadow if isinstance(shadow, str) else NO_SHADOW)
        if pinned is None and key is not None:
            changes.put(key, record.partition, self.decider.dump(slot))
        self._send(record, slot, [])
        if copy is not None:
            self._send(record, copy, [(ROUTE_HEADER, SHADOW.encode())])

    def _send(self, record: Consumed, slot: str, marks: list[tuple[str, bytes]]) -> None:
        topic = self.outputs[slot][self.topics.index(record.topic)]
        with tracing.producing(topic, record.key):
            # The record's own headers, but its trace context: the inject below writes that.
            written = tracing.propagated()
            kept = [(k, v) for k, v in record.headers if k not in written]
            self._write(
                topic=topic,
                key=record.key.encode() if record.key is not None else None,
                value=record.value,
                headers=tracing.inject(kept + marks),
            )
