"""Consumer loops: batch consume, decode via the registry, dispatch, make the effect durable, then move on.

Two ways to make progress durable:
- ProjectionRunner: the change and the consumed offset commit in one database transaction; on
  assignment it starts from the stored offset, so redelivery never double-applies.
- TransactionalProcessor: consume-transform-produce in one Kafka transaction per batch (outputs,
  state changes and consumed offsets commit together); downstream reads read_committed.
Poison records (undecodable, or a handler that keeps failing) go to `<topic>.<group>.dlq` with
the error in headers; transient faults (registry, broker or database unreachable) pause and retry
the batch and never dead-letter. `golive dlq redrive` puts dead letters back on their topic with a
`redrive.group` header: only that group takes them, every other group passes over them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
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
from golive_contracts.topology import dlq_topic
from sqlalchemy.exc import OperationalError

from golive_eventing import tracing
from golive_eventing.producer import (
    kafka_error,
    produce_bounded,
    producer_config,
    record_headers,
)
from golive_eventing.serde import EventSerde, PoisonRecordError, RegistryUnavailableError
from golive_eventing.settings import KafkaSettings
from golive_eventing.state import Changes, KeyedState

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
# How long past its own timeout a transactional call may block before the process exits.
STALL_GRACE_S = 15.0
# How long a processor tries to replace a failed producer in-process before it exits instead.
RECOVERY_LIMIT_S = 60.0
# The longest a fetch waits at a partition's end. Under read_committed the broker answers a
# waiting fetch early only when the last stable offset moves, so a record appended inside an
# open transaction reaches the cached high watermark up to this late (see read_to_end).
FETCH_WAIT_MAX_MS = 500
# A partition read to its end is this far behind the wall clock for timers: twice the above, so
# any record logged before its time is already counted in the high watermark.
END_GRACE_S = 2 * FETCH_WAIT_MAX_MS / 1000
REDRIVE_HEADER = "redrive.group"
# Faults that pass: the batch is rewound and retried after a pause, never dead-lettered.
TRANSIENT = (RegistryUnavailableError, KafkaException, OperationalError)


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


class RetryBatchError(Exception):
    """Abort this batch, rewind, and try it again after a pause."""


class PositionsMovedError(Exception):
    """The store's positions are not the ones this runner wrote (a rebuild swapped the tables):
    continue from the store's."""

    def __init__(self, positions: dict[tuple[str, int], int | None]) -> None:
        super().__init__(f"stored positions moved: {positions}")
        self.positions = positions


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
        assignment: str = "cooperative-sticky",
        **consumer_extra: Any,
    ) -> None:
        self.settings = settings
        self.serde = serde
        self.group = group
        self.group_id = settings.group_id(group)
        self.topics = list(topics)
        self.batch_size = batch_size
        self.joined = threading.Event()
        self.stopping = threading.Event()
        self.assignment: set[tuple[str, int]] = set()
        # Where each partition's last end-of-partition event came, if none came since its last
        # record, assignment or seek (only with enable.partition.eof, which the processors with
        # timers set). See read_to_end: under read_committed that end may be a transaction's start.
        self.at_end: dict[tuple[str, int], int] = {}
        self.cooperative = assignment == "cooperative-sticky"
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "group.id": self.group_id,
                "client.id": f"{group}-consumer",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "partition.assignment.strategy": assignment,
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 1000,
                **consumer_extra,
                "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,  # END_GRACE_S depends on it
            }
        )
        self._failures: dict[tuple[str, int, int], int] = {}
        self._errors: dict[tuple[str, int, int], str] = {}

    # -- rebalancing -------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.start_positions(partitions)
        if self.cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        self.assignment |= {(p.topic, p.partition) for p in partitions}
        for p in partitions:
            self.at_end.pop((p.topic, p.partition), None)
        self.joined.set()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Batches are handled between polls and rebalances happen inside poll(), so no
        # transaction is ever open here: nothing to abort, and nothing half-done to hand over.
        if self.cooperative:
            consumer.incremental_unassign(partitions)
        else:
            consumer.unassign()
        self.assignment -= {(p.topic, p.partition) for p in partitions}
        for p in partitions:
            self.at_end.pop((p.topic, p.partition), None)
        self.released(partitions)

    def start_positions(self, partitions: list[TopicPartition]) -> None:  # noqa: B027 (optional hook)
        """Set where each newly assigned partition starts (default: the group's committed offset)."""

    def released(self, partitions: list[TopicPartition]) -> None:  # noqa: B027 (optional hook)
        """These partitions went to another member (or were lost)."""

    def tick(self) -> None:  # noqa: B027 (optional hook)
        """Called on every turn of the loop, with or without records (timers)."""

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
                records = self._records(self._next_messages())
                try:
                    # Decoding is part of the batch: a registry that does not answer is a
                    # transient fault like any other (pause, retry), never the loop's end.
                    batch = [self._decode(m) for m in records]
                    if batch:
                        self.handle(batch)
                    self.tick()
                    attempt = 0
                except PositionsMovedError as exc:
                    log.warning("%s: %s; continuing from there", self.group, exc)
                    self._seek(exc.positions)
                except (RetryBatchError, *TRANSIENT) as exc:
                    log.warning("%s: batch failed, retrying: %s", self.group, exc)
                    try:
                        self.recover(_first_offsets(records), exc)
                    except TRANSIENT as still:
                        log.warning("%s: cannot recover yet: %s", self.group, still)
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

    def _records(self, messages: list[Message]) -> list[Message]:
        """The records among what the consumer returned, in order; an end-of-partition event
        notes where its partition's end was, until its next record. An event fetched before a
        revocation can be handed over after it: one for a partition not held is ignored."""
        records = []
        for message in messages:
            place = (message.topic() or "", message.partition() or 0)
            error = message.error()
            if error is None:
                self.at_end.pop(place, None)
                records.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                if place in self.assignment:
                    self.at_end[place] = message.offset() or 0
            else:
                log.warning("%s: consumer error: %s", self.group, error)
        return records

    def read_to_end(self, topic: str, partition: int) -> bool:
        """Whether this partition has nothing left to read, open transactions included.

        The end-of-partition event of a read_committed consumer comes at the last stable offset:
        the first record of the oldest open transaction. What that transaction holds was logged
        before now and may yet commit (a payment authorised before a deadline, say), so the
        partition is at its end only once the event came at the high watermark, the log's end
        as of the last fetch. A transaction left open by a crashed producer holds it until the
        broker aborts it (transaction.timeout.ms). The high watermark is the one of the last
        fetch, which may be FETCH_WAIT_MAX_MS old: callers allow for that (END_GRACE_S).
        """
        end = self.at_end.get((topic, partition))
        if end is None:
            return False
        _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        return end >= high

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        self.consumer.close()

    def _decode(self, message: Message) -> Consumed:
        return decode(message, self.serde, self.group)

    def recover(self, first: dict[tuple[str, int], int], exc: BaseException) -> None:
        """After a failed batch (nothing of it committed): read it again, from `first`."""
        self._seek(first)

    def _seek(self, positions: Mapping[tuple[str, int], int | None]) -> None:
        for (topic, partition), offset in positions.items():
            if (topic, partition) in self.assignment:
                start = OFFSET_BEGINNING if offset is None else offset
                self.consumer.seek(TopicPartition(topic, partition, start))
                self.at_end.pop((topic, partition), None)  # until its end-of-partition event

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
        if record.skip:
            return None
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
        self,
        consumer: str,
        batch: Sequence[Consumed],
        offsets: Sequence[TopicPartition],
        expected: dict[tuple[str, int], int | None],
    ) -> None:
        """Apply the batch (skipping records whose event is None) and store `offsets`, atomically.

        `expected` is what the runner believes is stored for the batch's partitions (None: nothing);
        if the store holds something else, raise PositionsMovedError with what it holds.
        """


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
                self.dead_letter(self._dlq, record, record.error or "undecodable")
            if poisoned and self._dlq.flush(10) != 0:
                raise RetryBatchError("dead-letter writes not acknowledged")
        offsets = self.next_offsets(batch)
        expected = {
            (tp.topic, tp.partition): self._written.get((tp.topic, tp.partition)) for tp in offsets
        }
        try:
            self.store.apply(self.group, [r for r in batch if not r.skip], offsets, expected)
        except PositionsMovedError as moved:
            self._written.update(moved.positions)
            raise
        self._written.update({(tp.topic, tp.partition): tp.offset for tp in offsets})
        # The database holds the truth; the group's committed offsets are for lag monitoring.
        self.consumer.commit(offsets=offsets, asynchronous=True)

    def close(self) -> None:
        super().close()
        if self._dlq is not None:
            self._dlq.flush(5)


class Decider(ABC):
    """What a transactional processor does: records (and timers) in, events out, state beside.

    Everything returned and every state change commits in one Kafka transaction with the
    consumed offsets, or none of it does.
    """

    @abstractmethod
    def decide(self, event: Event, record: Consumed, state: Changes | None) -> list[Event]:
        """The events one record causes (state is None for a processor without state)."""

    def unprocessable(self, record: Consumed, reason: str, state: Changes | None) -> list[Event]:
        """The record is being dead-lettered: what must still be said so no journey stays open."""
        del record, reason, state
        return []

    def timeout(self, key: str, state: Changes, now: datetime) -> list[Event]:
        """A key's due_at passed on its partition's clock: what that causes."""
        del key, state, now
        return []


class TransactionalProcessor(Runner):
    """Consume, decide, produce: one Kafka transaction per batch, with a stable transactional.id.

    With a state topic, the processor keeps per-key state (golive_eventing.state) in the same
    transactions, and its inputs are co-partitioned: the range assignor gives each member the same
    partition numbers of every input topic, and the changelog's partition p holds their keys.
    """

    TRANSACTION_TIMEOUT_MS = 10_000  # how long a crashed instance's open transaction blocks readers

    def __init__(
        self,
        settings: KafkaSettings,
        serde: EventSerde,
        group: str,
        topics: Sequence[str],
        decider: Decider,
        instance: str,
        *,
        state_topic: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(
            settings, serde, group, topics,
            assignment="range" if state_topic else "cooperative-sticky",
            **{"enable.partition.eof": True},  # the timers' caught-up test (_partition_time)
        )  # fmt: skip
        self.decider = decider
        self.clock = clock
        self.state = KeyedState(settings, state_topic, group) if state_topic else None
        self.instance = instance
        self.producer = self._new_producer()
        self._broken = False
        self._broken_since = 0.0
        self.watchdog = Watchdog(group)
        self._seen_ms: dict[tuple[str, int], int] = {}
        self._next_tick = 0.0

    def _new_producer(self) -> Producer:
        """init_transactions() with our transactional.id aborts whatever the last producer with
        that id left open (a crashed process, or this one's failed producer)."""
        transactional_id = self.settings.names.transactional_id(self.group, self.instance)
        producer = Producer(
            producer_config(
                self.settings,
                transactional_id,
                **{
                    "transactional.id": transactional_id,
                    "transaction.timeout.ms": self.TRANSACTION_TIMEOUT_MS,
                },
            )
        )
        producer.init_transactions(30)
        return producer

    def recover(self, first: dict[tuple[str, int], int], exc: BaseException) -> None:
        """A batch failed in the handler, the registry or the database: the producer aborted
        cleanly, so read the batch again. It failed in Kafka (the broker went away, a
        coordinator moved, a fatal error): replace the producer, restore the state and go back to
        the committed positions, since whether the last commit landed is unknown. librdkafka's own
        recovery after a broker restart is not to be relied on: it has left producers waiting
        on a request never sent (every call then fails with _CONFLICT), blocked in
        send_offsets_to_transaction past its timeout, and failing OUT_OF_ORDER_SEQUENCE_NUMBER
        epoch bumps. A new producer with the same transactional.id fences the old one and aborts
        what it left open, every time.
        Fenced: another process has our transactional.id, so this one must stop (crash-only)."""
        if _fenced(exc):
            fenced = self.settings.names.transactional_id(self.group, self.instance)
            raise ProducerFencedError(f"{fenced} was fenced: {exc}") from exc
        now = time.monotonic()
        if isinstance(exc, KafkaException) and not self._broken:
            self._broken = True  # until a new producer, the state and the positions are in place
            self._broken_since = now
        if not self._broken:
            self._seek(first)
            return
        if now - self._broken_since > RECOVERY_LIMIT_S:
            raise RecoveryFailedError(
                f"{self.group}: could not replace a failed producer in {RECOVERY_LIMIT_S:.0f} s"
            ) from exc  # out of the loop: the process exits and the supervisor restarts it
        log.warning("%s: replacing the producer, starting over from what is committed", self.group)
        # The new producer's init_transactions fences the old one first; dropping the old one
        # waits for its threads, which a wedged one may never end: watched like its calls.
        with self.watchdog.watch("replacing the producer", 60):
            old, self.producer = self.producer, self._new_producer()
            # Its transaction is aborted (fenced by the new producer): what it still holds is
            # never to be delivered. Dropped here, not left to librdkafka's warning at teardown.
            unsent = old.flush(0)  # how many it holds; a zero timeout waits for nothing
            old.purge()
            del old
        if unsent:
            log.warning(
                "%s: dropped %d unsent messages of the aborted transaction", self.group, unsent
            )
        if self.state is not None:
            numbers = {p for _, p in self.assignment}
            self.state.drop(numbers)
            self.state.restore(numbers)
        self._seen_ms.clear()
        held = [TopicPartition(t, p) for t, p in sorted(self.assignment)]
        committed = self.consumer.committed(held, timeout=30)
        self._seek({(c.topic, c.partition): c.offset if c.offset >= 0 else None for c in committed})
        self._broken = False
        log.warning("%s: producer replaced", self.group)

    def _usable(self) -> None:
        if self._broken:
            raise RetryBatchError("the producer is being replaced")

    # -- ownership ---------------------------------------------------------------------------

    def start_positions(self, partitions: list[TopicPartition]) -> None:
        if self.state is None:
            return
        numbers = {p.partition for p in partitions}
        by_topic = {t: {p.partition for p in partitions if p.topic == t} for t in self.topics}
        if any(found != numbers for found in by_topic.values()):
            log.error(
                "%s: inputs are not co-partitioned (%s); give every input topic the same "
                "partition count", self.group, by_topic,
            )  # fmt: skip
        self.state.restore(numbers)

    def released(self, partitions: list[TopicPartition]) -> None:
        if self.state is not None:
            self.state.drop({p.partition for p in partitions})
        for partition in partitions:
            self._seen_ms.pop((partition.topic, partition.partition), None)

    # -- batches -----------------------------------------------------------------------------

    def handle(self, batch: Sequence[Consumed]) -> None:
        self._usable()
        changes = self.state.begin() if self.state is not None else None
        self.producer.begin_transaction()
        try:
            for record in batch:
                if record.skip:
                    continue
                reason = self.poison_reason(record)
                if reason is not None:
                    self.dead_letter(self.producer, record, reason)
                    self._produce(self.decider.unprocessable(record, reason, changes))
                    continue
                assert record.event is not None
                with tracing.processing(record.topic, record.headers):
                    self._process(record, record.event, changes)
            if self.state is not None and changes is not None:
                self.state.write(self.producer, changes)
            with self.watchdog.watch("send_offsets_to_transaction", 30):
                self.producer.send_offsets_to_transaction(
                    self.next_offsets(batch), self.consumer.consumer_group_metadata(), 30
                )
            with self.watchdog.watch("commit_transaction", 30):
                self.producer.commit_transaction(30)
        except BaseException as exc:
            self._abort(exc)
            raise
        if self.state is not None and changes is not None:
            self.state.commit(changes)
        for record in batch:
            place = (record.topic, record.partition)
            self._seen_ms[place] = max(self._seen_ms.get(place, 0), record.timestamp_ms)
        self.forget(batch)

    def _process(self, record: Consumed, event: Event, changes: Changes | None) -> None:
        try:
            outputs = self.decider.decide(event, record, changes)
        except TRANSIENT:
            raise
        except Exception as exc:
            self.failed(record, exc)
            raise RetryBatchError(f"handler failed on {record.position}: {exc}") from exc
        self._produce(outputs)

    def _produce(self, outputs: Sequence[Event]) -> None:
        for output in outputs:
            produce_bounded(
                self.producer,
                topic=self.serde.topic_of(type(output)),
                key=output.envelope.correlation_id.encode(),
                value=self.serde.serialize(output),
                headers=record_headers(output),
            )

    def _abort(self, exc: BaseException) -> None:
        if isinstance(exc, KafkaException):
            return  # recover() replaces the producer, and the new one aborts what this left open
        with self.watchdog.watch("abort_transaction", 30):
            self.producer.abort_transaction(30)

    # -- timers ------------------------------------------------------------------------------

    def tick(self) -> None:
        """Fire the timers whose due time has passed on their partition's clock."""
        if self.state is None or time.monotonic() < self._next_tick:
            return
        self._usable()
        self._next_tick = time.monotonic() + 0.25
        now = self.clock()
        due = self.state.due(now.timestamp())
        if not due:
            return
        ready = []
        for key, entry in due:
            if self._partition_time(entry.partition) >= float(entry.value["due_at"]):
                ready.append(key)
            else:
                self.state.rearm(key, entry)
        if not ready:
            return
        changes = self.state.begin()
        self.producer.begin_transaction()
        try:
            for key in ready:
                self._produce(self.decider.timeout(key, changes, now))
            self.state.write(self.producer, changes)
            self.producer.commit_transaction(30)
        except BaseException as exc:
            self._abort(exc)
            for key in ready:
                entry_now = self.state.entries.get(key)
                if entry_now is not None:
                    self.state.rearm(key, entry_now)
            raise
        self.state.commit(changes)

    def _partition_time(self, partition: int) -> float:
        """How far every input of this partition number has been read, in epoch seconds.

        An input partition read to its end is at the wall clock less END_GRACE_S (a record
        appended since the last fetch is not counted yet); one with a backlog is at its last
        record's timestamp. A timer fires only when all of them passed it, so a backlog
        (after a restart, say) is read before anything is declared overdue.

        "Read to its end" (read_to_end) is librdkafka's end-of-partition event at the high
        watermark, not position() against it: after an assignment or a seek, position() is
        unknown (-1001) until a record arrives, so a quiet partition looked behind for good and
        its timers never fired after a rebalance. The event also comes past trailing
        transaction markers.
        """
        now = self.clock().timestamp() - END_GRACE_S
        return min(
            now
            if self.read_to_end(topic, partition)
            else self._seen_ms.get((topic, partition), 0) / 1000
            for topic in self.topics
        )


class Watchdog:
    """Calls that must return within their timeout, or the process exits (code 70).

    librdkafka's send_offsets_to_transaction can block past its timeout for good after a broker
    restart (librdkafka issues 5456 and 5511: a stale group coordinator). A blocked C call
    cannot be cancelled, and while it blocks this member never rejoins its group, which stalls
    the group. So the process exits and the supervisor restarts it (crash-only, like a consumer
    loop that dies). One thread per processor, started on the first call, watches every call.
    """

    def __init__(self, group: str, grace_s: float = STALL_GRACE_S) -> None:
        self.group = group
        self.grace_s = grace_s
        self._changed = threading.Condition()
        self._watching: tuple[str, float, float] | None = None  # call, deadline, limit
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, call: str, timeout_s: float) -> Iterator[None]:
        limit = timeout_s + self.grace_s
        with self._changed:
            self._watching = (call, time.monotonic() + limit, limit)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self.group}-watchdog", daemon=True
                )
                self._thread.start()
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._watching = None
                self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while True:
                if self._watching is None:
                    self._changed.wait()
                    continue
                call, deadline, limit = self._watching
                left = deadline - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                log.critical("%s: %s blocked for %.0f s, past its timeout; exiting so it "
                             "restarts", self.group, call, limit)  # fmt: skip
                logging.shutdown()
                os._exit(70)


class RecoveryFailedError(RuntimeError):
    """Replacing a failed producer kept failing (the broker is still away, or the committed
    offsets would not come, say)."""


class ProducerFencedError(RuntimeError):
    """Another process took over this transactional.id: this one is a zombie and must exit."""


FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def _fenced(exc: BaseException) -> bool:
    error = kafka_error(exc)
    return error is not None and error.code() in FENCED


def _first_offsets(records: Sequence[Message]) -> dict[tuple[str, int], int]:
    """Each partition's first offset in a batch: where to read it again from."""
    first: dict[tuple[str, int], int] = {}
    for record in records:
        place = (record.topic() or "", record.partition() or 0)
        offset = record.offset() or 0
        first[place] = min(first.get(place, offset), offset)
    return first
