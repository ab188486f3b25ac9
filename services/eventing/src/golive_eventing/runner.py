"""Consumer loops: batch consume, decode via the registry, dispatch, make the effect durable, then move on.

Two ways to make progress durable:
- ProjectionRunner: the change and the consumed offset commit in one database transaction; on
  assignment it starts from the stored offset, so redelivery never double-applies.
- TransactionalProcessor: consume-transform-produce in one Kafka transaction per batch (outputs
  and consumed offsets commit together); downstream reads read_committed.
Poison records (undecodable, or a handler that keeps failing) go to `<topic>.<group>.dlq` with
the error in headers; transient faults (registry or broker unreachable) pause and retry.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from golive_contracts.events import Event

from golive_eventing import tracing
from golive_eventing.producer import produce_bounded, producer_config, record_headers
from golive_eventing.serde import EventSerde, PoisonRecordError, RegistryUnavailableError
from golive_eventing.settings import KafkaSettings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


def dlq_topic(topic: str, group: str) -> str:
    return f"{topic}.{group}.dlq"


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

    @property
    def position(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)


class RetryBatchError(Exception):
    """Abort this batch, rewind, and try it again after a pause."""


class Runner(ABC):
    """The poll/consume loop shared by every consumer; subclasses decide what durable means."""

    def __init__(
        self,
        settings: KafkaSettings,
        serde: EventSerde,
        group: str,
        topics: Sequence[str],
        *,
        batch_size: int = 500,
        **consumer_extra: Any,
    ) -> None:
        self.settings = settings
        self.serde = serde
        self.group = group
        self.topics = list(topics)
        self.batch_size = batch_size
        self.joined = threading.Event()
        self.stopping = threading.Event()
        self.assignment: set[tuple[str, int]] = set()
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "group.id": group,
                "client.id": f"{group}-consumer",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 1000,
                **consumer_extra,
            }
        )
        self._failures: dict[tuple[str, int, int], int] = {}
        self._errors: dict[tuple[str, int, int], str] = {}

    # -- rebalancing -------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.start_positions(partitions)
        consumer.incremental_assign(partitions)
        self.assignment |= {(p.topic, p.partition) for p in partitions}
        self.joined.set()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.incremental_unassign(partitions)
        self.assignment -= {(p.topic, p.partition) for p in partitions}

    def start_positions(self, partitions: list[TopicPartition]) -> None:  # noqa: B027 (optional hook)
        """Set where each newly assigned partition starts (default: the group's committed offset)."""

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        self.consumer.subscribe(
            self.topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        attempt = 0
        try:
            while not self.stopping.is_set():
                messages = self._next_messages()
                batch = [self._decode(m) for m in messages if _is_record(m)]
                if not batch:
                    continue
                try:
                    self.handle(batch)
                    attempt = 0
                except (RetryBatchError, RegistryUnavailableError, KafkaException) as exc:
                    log.warning("%s: batch failed, retrying: %s", self.group, exc)
                    self._rewind(batch)
                    self.stopping.wait(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                    attempt += 1
        finally:
            self.close()

    def _next_messages(self) -> list[Message]:
        """Wait for one record (latency), then take what is already fetched (throughput).

        consume(n, timeout) waits out its whole timeout unless n arrive: a delay on every hop.
        """
        first = self.consumer.poll(0.5)
        if first is None:
            return []
        return [first, *self.consumer.consume(self.batch_size - 1, timeout=0)]

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        self.consumer.close()

    def _decode(self, message: Message) -> Consumed:
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
        try:
            return Consumed(event=self.serde.deserialize(message.value()), **common)
        except PoisonRecordError as exc:
            return Consumed(event=None, error=str(exc), **common)

    def _rewind(self, batch: Sequence[Consumed]) -> None:
        first: dict[tuple[str, int], int] = {}
        for record in batch:
            place = (record.topic, record.partition)
            first[place] = min(first.get(place, record.offset), record.offset)
        for (topic, partition), offset in first.items():
            if (topic, partition) in self.assignment:
                self.consumer.seek(TopicPartition(topic, partition, offset))

    @staticmethod
    def next_offsets(batch: Sequence[Consumed]) -> list[TopicPartition]:
        last: dict[tuple[str, int], int] = {}
        for record in batch:
            place = (record.topic, record.partition)
            last[place] = max(last.get(place, -1), record.offset)
        return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]

    # -- failure bookkeeping -----------------------------------------------------------------

    def failed(self, record: Consumed, exc: BaseException) -> None:
        self._failures[record.position] = self._failures.get(record.position, 0) + 1
        self._errors[record.position] = f"{type(exc).__name__}: {exc}"

    def poison_reason(self, record: Consumed) -> str | None:
        """Why a record must be dead-lettered instead of handled, or None to handle it."""
        if record.event is None:
            return record.error or "undecodable"
        if self._failures.get(record.position, 0) >= MAX_ATTEMPTS:
            return f"handler failed {MAX_ATTEMPTS} times: {self._errors[record.position]}"
        return None

    def forget(self, batch: Sequence[Consumed]) -> None:
        for record in batch:
            self._failures.pop(record.position, None)
            self._errors.pop(record.position, None)

    def dead_letter(self, producer: Producer, record: Consumed, reason: str) -> None:
        headers = [
            *record.headers,
            ("dlq.error", reason.encode()),
            ("dlq.source.topic", record.topic.encode()),
            ("dlq.source.partition", str(record.partition).encode()),
            ("dlq.source.offset", str(record.offset).encode()),
            ("dlq.group", self.group.encode()),
        ]
        log.error("%s: dead-lettering %s: %s", self.group, record.position, reason)
        produce_bounded(
            producer,
            topic=dlq_topic(record.topic, self.group),
            key=record.key.encode() if record.key is not None else None,
            value=record.value,
            headers=headers,
        )

    @abstractmethod
    def handle(self, batch: Sequence[Consumed]) -> None:
        """Make the batch's effects and positions durable, or raise to retry it."""


class ProjectionStore(ABC):
    """A read model that stores its consumed positions in the same transaction as its changes."""

    @abstractmethod
    def positions(
        self, consumer: str, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """The next offset to read per partition, for those this store has seen."""

    @abstractmethod
    def apply(
        self, consumer: str, batch: Sequence[Consumed], offsets: Sequence[TopicPartition]
    ) -> None:
        """Apply the batch (skipping records whose event is None) and store `offsets`, atomically."""


class ProjectionRunner(Runner):
    def __init__(
        self,
        settings: KafkaSettings,
        serde: EventSerde,
        group: str,
        topics: Sequence[str],
        store: ProjectionStore,
        *,
        dead_letters: bool = True,
    ) -> None:
        super().__init__(settings, serde, group, topics)
        self.store = store
        self.dead_letters = dead_letters
        self._dlq = Producer(producer_config(settings, f"{group}-dlq")) if dead_letters else None

    def start_positions(self, partitions: list[TopicPartition]) -> None:
        stored = self.store.positions(self.group, [(p.topic, p.partition) for p in partitions])
        for partition in partitions:
            partition.offset = stored.get((partition.topic, partition.partition), OFFSET_BEGINNING)

    def handle(self, batch: Sequence[Consumed]) -> None:
        if self._dlq is not None:
            poisoned = [r for r in batch if r.event is None]
            for record in poisoned:
                self.dead_letter(self._dlq, record, record.error or "undecodable")
            if poisoned and self._dlq.flush(10) != 0:
                raise RetryBatchError("dead-letter writes not acknowledged")
        offsets = self.next_offsets(batch)
        self.store.apply(self.group, batch, offsets)
        # The database holds the truth; the group's committed offsets are for lag monitoring.
        self.consumer.commit(offsets=offsets, asynchronous=True)

    def close(self) -> None:
        super().close()
        if self._dlq is not None:
            self._dlq.flush(5)


Handler = Callable[[Event, Consumed], list[Event]]


class TransactionalProcessor(Runner):
    """Consume, decide, produce: one Kafka transaction per batch, with a stable transactional.id."""

    def __init__(
        self,
        settings: KafkaSettings,
        serde: EventSerde,
        group: str,
        topics: Sequence[str],
        handler: Handler,
        instance: str,
    ) -> None:
        super().__init__(settings, serde, group, topics)
        self.handler = handler
        self.producer = Producer(
            producer_config(
                settings, f"{group}-{instance}", **{"transactional.id": f"{group}-{instance}"}
            )
        )
        self.producer.init_transactions(30)

    def handle(self, batch: Sequence[Consumed]) -> None:
        self.producer.begin_transaction()
        try:
            for record in batch:
                reason = self.poison_reason(record)
                if reason is not None:
                    self.dead_letter(self.producer, record, reason)
                    continue
                assert record.event is not None
                with tracing.processing(record.topic, record.headers):
                    self._process(record, record.event)
            self.producer.send_offsets_to_transaction(
                self.next_offsets(batch), self.consumer.consumer_group_metadata(), 30
            )
            self.producer.commit_transaction(30)
        except BaseException as exc:
            if _fatal(exc):
                raise
            self.producer.abort_transaction(30)
            raise
        self.forget(batch)

    def _process(self, record: Consumed, event: Event) -> None:
        try:
            outputs = self.handler(event, record)
        except (RegistryUnavailableError, KafkaException):
            raise
        except Exception as exc:
            self.failed(record, exc)
            raise RetryBatchError(f"handler failed on {record.position}: {exc}") from exc
        for output in outputs:
            produce_bounded(
                self.producer,
                topic=self.serde.topic_of(type(output)),
                key=output.envelope.correlation_id.encode(),
                value=self.serde.serialize(output),
                headers=record_headers(output),
            )


def _fatal(exc: BaseException) -> bool:
    """A fenced or otherwise fatal producer cannot abort: the process must restart."""
    if isinstance(exc, KafkaException):
        error = exc.args[0]
        return bool(isinstance(error, KafkaError) and error.fatal())
    return False


def _is_record(message: Message) -> bool:
    error = message.error()
    if error is None:
        return True
    if error.code() != KafkaError._PARTITION_EOF:
        log.warning("consumer error: %s", error)
    return False
