"""Projections: a read model that commits its change and the consumed offsets in one database
transaction, and starts each partition from the offset it stored, so redelivery never applies
twice. The group's committed offsets are kept too, for lag monitoring only: committed by
librdkafka every LAG_COMMIT_MS (and on close), not a broker request per batch."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from golive_contracts.topology import Group

from golive_eventing.deadletters import dead_letter
from golive_eventing.errors import PositionsMovedError, RetryBatchError
from golive_eventing.loop import Runner
from golive_eventing.producer import service_producer
from golive_eventing.records import Consumed, next_offsets
from golive_eventing.serde import EventSerde
from golive_eventing.settings import KafkaSettings

log = logging.getLogger(__name__)

# How often a projection's group offsets (lag monitoring's view of it) are committed.
LAG_COMMIT_MS = 1000


class ProjectionStore(ABC):
    """A read model that stores its consumed positions in the same transaction as its changes."""

    @abstractmethod
    def positions(
        self, consumer: str, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """The next offset to read per partition, for those this store has seen."""

    @abstractmethod
    def apply(
        self,
        consumer: str,
        batch: Sequence[Consumed],
        offsets: Sequence[TopicPartition],
        expected: dict[tuple[str, int], int | None],
    ) -> None:
        """Apply the batch (skipping records whose event is None) and store `offsets`, atomically.

        `expected` is what the runner believes is stored for the batch's partitions (None: nothing);
        if the store holds something else, raise PositionsMovedError with what it holds. A
        database that does not answer is golive_eventing.errors.StoreUnavailableError.
        """


class ProjectionRunner(Runner):
    """A group of the topology's kind PROJECTION or RECORDER, applying its topics to a store.
    Poison records are dead-lettered (a projection) or kept as they are (the recorder)."""

    def __init__(
        self,
        settings: KafkaSettings,
        serde: EventSerde,
        group: Group,
        store: ProjectionStore,
        *,
        topics: Sequence[str] | None = None,
    ) -> None:
        super().__init__(settings, serde, group, topics=topics, commit_interval_ms=LAG_COMMIT_MS)
        self.store = store
        self._dlq = service_producer(settings, f"{group.name}-dlq") if group.dead_letters else None
        self._written: dict[tuple[str, int], int | None] = {}

    def start_positions(self, partitions: list[TopicPartition]) -> None:
        stored = self.store.positions(self.group, [(p.topic, p.partition) for p in partitions])
        for partition in partitions:
            place = (partition.topic, partition.partition)
            partition.offset = stored.get(place, OFFSET_BEGINNING)
            self._written[place] = stored.get(place)

    def released(self, partitions: list[TopicPartition]) -> None:
        for partition in partitions:
            self._written.pop((partition.topic, partition.partition), None)

    def handle(self, batch: Sequence[Consumed]) -> None:
        if self._dlq is not None:
            poisoned = [r for r in batch if r.event is None and not r.skip]
            for record in poisoned:
                dead_letter(self._dlq, record, self.group, record.error or "undecodable")
                self.dead_lettered[record.topic] += 1
            if poisoned and self._dlq.flush(10) != 0:
                raise RetryBatchError("dead-letter writes not acknowledged")
        offsets = next_offsets(batch)
        expected = {
            (tp.topic, tp.partition): self._written.get((tp.topic, tp.partition)) for tp in offsets
        }
        try:
            with self.committing():
                self.store.apply(self.group, [r for r in batch if not r.skip], offsets, expected)
        except PositionsMovedError as moved:
            self._written.update(moved.positions)
            raise
        self._written.update({(tp.topic, tp.partition): tp.offset for tp in offsets})
        # The database holds the truth; the group's committed offsets are for lag monitoring,
        # committed on an interval. A partition handed over since its batch was fetched has
        # nothing to store: its new owner starts from the database.
        try:
            self.consumer.store_offsets(offsets=offsets)
        except KafkaException as exc:
            log.info("%s: positions not stored for lag monitoring: %s", self.group, exc)

    def close(self) -> None:
        super().close()
        if self._dlq is not None:
            self._dlq.flush(5)
