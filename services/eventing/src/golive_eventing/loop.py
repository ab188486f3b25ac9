"""The poll loop every consumer shares: batch consume, decode via the registry, hand the batch to
the subclass (which makes its effect durable), retry transient faults after a pause.

Two ways to make progress durable, in their own modules: golive_eventing.projection (the change
and the consumed offset in one database transaction) and golive_eventing.processor
(consume-transform-produce in one Kafka transaction per batch).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from time import perf_counter

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from golive_contracts.metrics import COMMIT_DURATION, RECORDS_DEAD_LETTERED, RECORDS_PROCESSED
from golive_contracts.topology import Group, Kind

from golive_eventing import clients, metrics, tracing
from golive_eventing.errors import TRANSIENT, PositionsMovedError, RetryBatchError
from golive_eventing.records import Consumed, decode, first_offsets
from golive_eventing.serde import EventSerde
from golive_eventing.settings import KafkaSettings

log = logging.getLogger(__name__)

BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
# The longest a fetch waits at a partition's end. Under read_committed the broker answers a
# waiting fetch early only when the last stable offset moves, so a record appended inside an
# open transaction reaches the cached high watermark up to this late (see read_to_end).
FETCH_WAIT_MAX_MS = 500
# The recorder is on nobody's path (what a customer waits for ends at the hops and the read
# models), so it waits for a batch, up to this long or a fetch's worth of records, instead of
# waking for every record at the moment the hops work on it: measured at 100 orders/s on two
# cores, its CPU per order 2.2 -> 0.7 ms and the journey's p50 / p99 40 to 50 % shorter
# (docs/performance-journal.md, 2026-12-03). The audit API's timeline trails by as much.
RECORDER_FETCH_WAIT_MS = 100


def fetch_settings(kind: Kind) -> dict[str, int]:
    """How long a fetch of a group of this kind waits at a partition's end, and for how much."""
    if kind is Kind.RECORDER:
        return {"fetch.wait.max.ms": RECORDER_FETCH_WAIT_MS, "fetch.min.bytes": 1 << 20}
    return {"fetch.wait.max.ms": FETCH_WAIT_MAX_MS}  # timers' END_GRACE_S depends on it


class Runner(ABC):
    """The poll/consume loop shared by every consumer; subclasses decide what durable means.

    `group` is the topology's; the loop reads its input topics in this environment (or
    `topics`, a list or one pattern, when given) under the environment's group id. With
    `commit_interval_ms`, the positions a subclass stores (`store_offsets`) are committed by
    librdkafka on that interval, and on close; without, nothing is committed but what the
    subclass commits itself.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        serde: EventSerde,
        group: Group,
        *,
        topics: Sequence[str] | None = None,
        batch_size: int = 500,
        assignment: str = "cooperative-sticky",
        eof: bool = False,
        commit_interval_ms: int | None = None,
    ) -> None:
        self.settings = settings
        self.serde = serde
        self.declared = group
        self.group = group.name
        self.group_id = settings.names.group_id(group.name)
        self.topics = list(topics or settings.names.inputs(group))
        self.batch_size = batch_size
        self.joined = threading.Event()
        self.stopping = threading.Event()
        self.assignment: set[tuple[str, int]] = set()
        # Where each partition's last end-of-partition event came, if none came since its last
        # record, assignment or seek (only with enable.partition.eof, which the processors with
        # timers set). See read_to_end: under read_committed that end may be a transaction's start.
        self.at_end: dict[tuple[str, int], int] = {}
        self.cooperative = assignment == "cooperative-sticky"
        # What the batch in hand dead-lettered (per topic) and how long its commit took:
        # reported once the batch is durable (golive_contracts.metrics).
        self.dead_lettered: Counter[str] = Counter()
        self.commit_s: float | None = None
        interval = {} if commit_interval_ms is None else {
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": commit_interval_ms,
        }  # fmt: skip
        self.consumer = clients.consumer(
            settings,
            **{
                "group.id": self.group_id,
                "client.id": f"{group.name}-consumer",
                "enable.auto.commit": commit_interval_ms is not None,
                **interval,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "partition.assignment.strategy": assignment,
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 1000,
                "enable.partition.eof": eof,
                **fetch_settings(group.kind),
            },
        )

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

    def _handle(self, batch: Sequence[Consumed]) -> None:
        """A processor traces each record as it decides it (golive_eventing.processor); a read
        model or the recorder writes a batch at once, traced as a span per record around it."""
        self.dead_lettered.clear()
        self.commit_s = None
        if self.declared.kind in (Kind.PROCESSOR, Kind.ROUTER):
            self.handle(batch)
        else:
            with tracing.processing_batch(batch, self.group):
                self.handle(batch)
        self._measured(batch)

    @contextmanager
    def committing(self) -> Iterator[None]:
        """Around the batch's commit (a Kafka or a database transaction): its time is measured."""
        began = perf_counter()
        yield
        self.commit_s = perf_counter() - began

    def _measured(self, batch: Sequence[Consumed]) -> None:
        measured = metrics.get()
        if not measured.on:
            return
        handled = Counter(r.topic for r in batch if not r.skip)
        for topic, count in handled.items():
            dead = self.dead_lettered[topic]
            if count > dead:
                measured.count(RECORDS_PROCESSED, count - dead, group=self.group, topic=topic)
            if dead:
                measured.count(RECORDS_DEAD_LETTERED, dead, group=self.group, topic=topic)
        if self.commit_s is not None:
            measured.distribution(COMMIT_DURATION, self.commit_s, group=self.group)

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
                    batch = [decode(m, self.serde, self.group) for m in records]
                    if batch:
                        self._handle(batch)
                    self.tick()
                    attempt = 0
                except PositionsMovedError as exc:
                    log.warning("%s: %s; continuing from there", self.group, exc)
                    self.seek(exc.positions)
                except (RetryBatchError, *TRANSIENT) as exc:
                    refused = clients.not_granted(exc)
                    if refused is not None:
                        raise self._refused(refused) from exc
                    log.warning("%s: batch failed, retrying: %s", self.group, exc)
                    try:
                        self.recover(first_offsets(records), exc)
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
            elif error.code() in clients.NOT_GRANTED:
                raise self._refused(error)
            else:
                log.warning("%s: consumer error: %s", self.group, error)
        return records

    def _refused(self, error: KafkaError) -> clients.AccessRefusedError:
        who = clients.login_name(self.settings)
        return clients.AccessRefusedError(f"{self.group}: Kafka refused {who!r}: {error.str()}")

    def read_to_end(self, topic: str, partition: int) -> bool:
        """Whether this partition has nothing left to read, open transactions included.

        The end-of-partition event of a read_committed consumer comes at the last stable offset:
        the first record of the oldest open transaction. What that transaction holds was logged
        before now and may yet commit (a payment authorised before a deadline, say), so the
        partition is at its end only once the event came at the high watermark, the log's end
        as of the last fetch. A transaction left open by a crashed producer holds it until the
        broker aborts it (transaction.timeout.ms). The high watermark is the one of the last
        fetch, which may be FETCH_WAIT_MAX_MS old: callers allow for that (timers.END_GRACE_S).
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

    def recover(self, first: dict[tuple[str, int], int], exc: BaseException) -> None:
        """After a failed batch (nothing of it committed): read it again, from `first`."""
        del exc
        self.seek(first)

    def seek(self, positions: Mapping[tuple[str, int], int | None]) -> None:
        """Read these partitions (those still held) again from these offsets (None: the start)."""
        for (topic, partition), offset in positions.items():
            if (topic, partition) in self.assignment:
                start = OFFSET_BEGINNING if offset is None else offset
                self.consumer.seek(TopicPartition(topic, partition, start))
                self.at_end.pop((topic, partition), None)  # until its end-of-partition event

    @abstractmethod
    def handle(self, batch: Sequence[Consumed]) -> None:
        """Make the batch's effects and positions durable, or raise to retry it."""
