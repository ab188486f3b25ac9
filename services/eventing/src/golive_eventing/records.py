"""A record as a consumer group sees it: decoded, poison (undecodable), or redriven for another
group; the offsets a batch of them moves to, and those owed a commit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message, TopicPartition
from golive_contracts.events import Event

from golive_eventing.serde import EventSerde, PoisonRecordError

# `golive dlq redrive` puts dead letters back with this header: only that group takes them,
# every other group passes over them.
REDRIVE_HEADER = "redrive.group"
REDRIVE_FROM = "redrive.from"  # the dead letter a redriven record was: <dlq>:<partition>:<offset>


@dataclass(frozen=True)
class Consumed:
    """A record as consumed, decoded when possible (event is None for a poison record)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    headers: tuple[tuple[str, bytes], ...]
    value: bytes | None
    event: Event | None
    error: str | None = None
    skip: bool = False  # redriven for another group: advance past it, nothing else

    @property
    def position(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


def decode(message: Message, serde: EventSerde, group: str) -> Consumed:
    """A consumed record as `group` sees it: decoded, poison (event None, error set), or
    redriven for another group (skip)."""
    key = message.key()
    common: dict[str, Any] = {
        "topic": message.topic() or "",
        "partition": message.partition() or 0,
        "offset": message.offset() or 0,
        "timestamp_ms": message.timestamp()[1],
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "headers": tuple((str(h[0]), h[1] or b"") for h in message.headers() or []),
        "value": message.value(),
    }
    addressee = next((v for k, v in common["headers"] if k == REDRIVE_HEADER), None)
    if addressee is not None and addressee.decode(errors="replace") != group:
        return Consumed(event=None, skip=True, **common)
    try:
        return Consumed(event=serde.deserialize(message.value()), **common)
    except PoisonRecordError as exc:
        return Consumed(event=None, error=str(exc), **common)


def next_offsets(batch: Sequence[Consumed]) -> list[TopicPartition]:
    """Where each partition of a batch continues: one past its last record."""
    last: dict[tuple[str, int], int] = {}
    for record in batch:
        place = (record.topic, record.partition)
        last[place] = max(last.get(place, -1), record.offset)
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


class Owed:
    """Consumed positions not committed yet: past records that changed nothing, so a transaction
    of their own would only cost the broker requests the next hop waits behind. The next
    transaction that writes carries them; `due` says when they have waited long enough to be
    committed alone. Reading such records again (after a crash or a rebalance) changes nothing
    either, so owing them loses nothing; only the group's lag shows them until then."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.positions: dict[tuple[str, int], int] = {}
        self.since: float | None = None  # when the oldest position still owed was added

    def add(self, positions: Sequence[TopicPartition]) -> None:
        for p in positions:
            place = (p.topic, p.partition)
            self.positions[place] = max(self.positions.get(place, p.offset), p.offset)
        if self.positions and self.since is None:
            self.since = self.clock()

    def due(self, after_s: float) -> bool:
        return self.since is not None and self.clock() - self.since >= after_s

    def take(self) -> list[TopicPartition]:
        """Every position owed, to commit now: owed no more."""
        taken = [TopicPartition(t, p, o) for (t, p), o in sorted(self.positions.items())]
        self.positions.clear()
        self.since = None
        return taken

    def rewind(self, positions: Mapping[tuple[str, int], int | None]) -> None:
        """These partitions are read again from these offsets (None: their start): a position
        owed past one is forgotten, since what lies between is read again."""
        for place, offset in positions.items():
            owed = self.positions.get(place)
            if owed is not None and (offset is None or owed > offset):
                del self.positions[place]
        if not self.positions:
            self.since = None

    def forget(self, places: Iterable[tuple[str, int]]) -> None:
        """These partitions are read again from elsewhere, or are no longer ours."""
        for place in places:
            self.positions.pop(place, None)
        if not self.positions:
            self.since = None


def first_offsets(messages: Sequence[Message]) -> dict[tuple[str, int], int]:
    """Each partition's first offset in a batch: where to read it again from."""
    first: dict[tuple[str, int], int] = {}
    for message in messages:
        place = (message.topic() or "", message.partition() or 0)
        offset = message.offset() or 0
        first[place] = min(first.get(place, offset), offset)
    return first
