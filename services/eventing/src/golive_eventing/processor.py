"""Consume, decide, produce: one Kafka transaction per batch, with a stable transactional.id.

The outputs, the state changes and the consumed offsets of a batch commit together or not at all;
readers downstream use read_committed. The rules are a Decider (golive_eventing.decider), pure;
this module is what runs them on Kafka: the transactions, the keyed state in its changelog
(golive_eventing.state), dead letters, timers, and the recovery from a transaction that failed in
Kafka (golive_eventing.recovery).

A stateful processor's inputs are co-partitioned: the range assignor gives each member the same
partition numbers of every input topic, and the changelog's partition p holds their keys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic

from confluent_kafka import TopicPartition
from golive_contracts.events import Event
from golive_contracts.topology import ROUTE_HEADER, SHADOW, Group, Kind, shadow_topic

from golive_eventing import tracing
from golive_eventing.deadletters import Attempts, dead_letter
from golive_eventing.decider import (
    TRACE,
    Decider,
    Decision,
    Received,
    S,
    Unprocessable,
    document,
)
from golive_eventing.errors import TRANSIENT, RetryBatchError
from golive_eventing.loop import Runner
from golive_eventing.producer import produce_bounded, record_headers
from golive_eventing.records import Consumed, Owed, next_offsets
from golive_eventing.recovery import Transactions
from golive_eventing.serde import EventSerde
from golive_eventing.settings import KafkaSettings
from golive_eventing.state import Changes, KeyedState
from golive_eventing.timers import PartitionClock

log = logging.getLogger(__name__)

TICK_S = 0.25  # how often due timers are looked for
# How long the positions past records that changed nothing may wait for a transaction that
# changes something to carry them, before one commits them alone (Owed).
OWED_COMMIT_S = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class TransactionalProcessor(Runner, Generic[S]):
    """A group of the topology's kind PROCESSOR, deciding with `decider`."""

    def __init__(
        self,
        settings: KafkaSettings,
        serde: EventSerde,
        group: Group,
        decider: Decider[S],
        instance: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        transactions: Transactions | None = None,
    ) -> None:
        super().__init__(
            settings,
            serde,
            group,
            assignment="range" if group.stateful else "cooperative-sticky",
            eof=True,  # the timers' caught-up test (Runner.read_to_end)
        )
        self.decider = decider
        self.clock = clock
        # Where each input's dead letters go (a slot's: its routed topic's, not its input's).
        dead = settings.names.dead_letter_topics(group)
        self.dead_letter_topics = dict(zip(self.topics, dead, strict=False))
        changelog = settings.names.state_topic(group)
        self.state = KeyedState(settings, changelog, group.name) if changelog else None
        self.transactions = transactions or Transactions(settings, group.name, instance)
        self._sweep()
        self.attempts = Attempts()
        self.partition_clock = PartitionClock(self.topics, self.read_to_end, clock)
        self._next_tick = 0.0
        self._shadow = False  # the record being decided is a router's shadow copy
        self.written = 0  # records written into the open transaction (_write)
        self.owed = Owed()

    # -- recovery ----------------------------------------------------------------------------

    def recover(self, first: dict[tuple[str, int], int], exc: BaseException) -> None:
        """A batch failed in the handler, the registry or the database: the producer aborted
        cleanly, so read the batch again. It failed in Kafka (the broker went away, a
        coordinator moved, a fatal error): replace the producer, restore the state and go back to
        the committed positions, since whether the last commit landed is unknown."""
        self.transactions.failed(exc)
        if not self.transactions.broken:
            self.seek(first)
            return
        self.transactions.replace(exc)
        self._sweep()
        if self.state is not None:
            numbers = {p for _, p in self.assignment}
            self.state.drop(numbers)
            self.state.restore(numbers)
        self.partition_clock.forget()
        held = [TopicPartition(t, p) for t, p in sorted(self.assignment)]
        committed = self.consumer.committed(held, timeout=30)
        self.seek({(c.topic, c.partition): c.offset if c.offset >= 0 else None for c in committed})
        self.transactions.repaired()

    def _sweep(self) -> None:
        """What an earlier producer of our transactional id left without markers, settled before
        the new producer's first transaction (recovery.Transactions.sweep)."""
        names = self.settings.names
        written = [names.topic(t) for t in self.declared.writes]
        written += names.shadow_topics(self.declared)
        if self.declared.kind is Kind.ROUTER:
            written += [t for topics in names.slot_inputs(self.declared).values() for t in topics]
        written += names.dead_letter_topics(self.declared)
        if self.state is not None:
            written.append(self.state.topic)
        staged = [TopicPartition(self.topics[0], 0, 0)]  # discarded with the sweep
        self.transactions.sweep(written, self.consumer.consumer_group_metadata(), staged)

    # -- ownership ---------------------------------------------------------------------------

    def start_positions(self, partitions: list[TopicPartition]) -> None:
        if self.state is None:
            return
        numbers = {p.partition for p in partitions}
        by_topic = {t: {p.partition for p in partitions if p.topic == t} for t in self.topics}
        if any(found != numbers for found in by_topic.values()):
            log.error(
                "%s: inputs are not co-partitioned (%s); give every input topic the same "
                "partition count",
                self.group,
                by_topic,
            )
        self.state.restore(numbers)

    def released(self, partitions: list[TopicPartition]) -> None:
        self.owed.forget((p.topic, p.partition) for p in partitions)
        if self.state is not None:
            self.state.drop({p.partition for p in partitions})
        self.partition_clock.forget((p.topic, p.partition) for p in partitions)

    # -- batches -----------------------------------------------------------------------------

    def handle(self, batch: Sequence[Consumed]) -> None:
        """The batch's outputs, state changes and positions in one transaction.

        Only a batch that writes a record (an output, a dead letter) makes a transaction on the
        broker. One that changed only state keeps its changes as the state, unwritten
        (KeyedState.keep), and one that changed nothing (records another group acts on, an end
        read back) keeps nothing: either way its transaction ends without a request to the
        broker, and its positions are owed (Owed) to the next transaction that writes, which
        carries the unwritten state too, or to one of their own after OWED_COMMIT_S. So no hop
        waits behind a commit that tells the next hop nothing."""
        self.transactions.usable()
        producer = self.transactions.producer
        changes = self.state.begin() if self.state is not None else None
        self.written = 0
        producer.begin_transaction()
        try:
            for record in batch:
                if not record.skip:
                    self._record(record, changes)
            self._shadow = False
            self.owed.add(next_offsets(batch))
            if self.written:
                with self.committing():
                    self._commit(changes)
            else:
                self.transactions.commit()  # nothing registered with the broker: ends locally
        except BaseException as exc:
            self.transactions.abort(exc)
            raise
        if self.state is not None and changes is not None and not self.written:
            self.state.keep(changes)
        self.partition_clock.saw(batch)
        self.attempts.forget(batch)

    def _commit(self, changes: Changes | None) -> None:
        """Into the open transaction: the unwritten state and `changes`, and every position owed
        (the records the unwritten state came from among them); then commit it, and they are
        the state."""
        if self.state is not None:
            self.written += self.state.write(self.transactions.producer, changes)
        positions = self.owed.take()
        if positions:
            with self.transactions.watchdog.watch("send_offsets_to_transaction", 30):
                self.transactions.producer.send_offsets_to_transaction(
                    positions, self.consumer.consumer_group_metadata(), 30
                )
        self.transactions.commit()
        if self.state is not None:
            self.state.commit(changes)

    def _write(self, **record: Any) -> None:
        """Every record the batch writes (outputs, dead letters, a router's forwards) goes
        through here or is counted beside it: a batch that wrote one commits its positions."""
        produce_bounded(self.transactions.producer, **record)
        self.written += 1

    def _record(self, record: Consumed, changes: Changes | None) -> None:
        """One input, inside the batch's transaction: decided, or dead-lettered and declined."""
        # A router's shadow copy: decided like any input, its outputs to shadow topics only,
        # never a dead letter (the live slot dead-letters the real record).
        self._shadow = record.header(ROUTE_HEADER) == SHADOW.encode()
        with tracing.processing(record, self.group) as span:
            reason = self.attempts.poison(record)
            if reason is None:
                self._process(record, changes)
                return
            # A dead letter shows in its journey's trace (and again when it is redriven).
            tracing.dead_lettered(span, reason)
            if not self._shadow:
                to = self.dead_letter_topics.get(record.topic)
                dead_letter(self.transactions.producer, record, self.group, reason, to)
                self.written += 1
                self.dead_lettered[record.topic] += 1
            self._unprocessable(record, reason, changes)

    def _process(self, record: Consumed, changes: Changes | None) -> None:
        assert record.event is not None
        received = Received(record.event, _logged_at(record), shadow=self._shadow)
        try:
            decision = self.decider.decide(
                received, self._state(changes, received.key), self.clock()
            )
            self._keep(decision, changes, received.key, record.partition)
        except TRANSIENT:
            raise
        except Exception as exc:
            self.attempts.failed(record, exc)
            raise RetryBatchError(f"handler failed on {record.position}: {exc}") from exc
        self._produce(decision.events)

    def _unprocessable(self, record: Consumed, reason: str, changes: Changes | None) -> None:
        source = f"{record.topic}:{record.partition}:{record.offset}"
        found = Unprocessable(record.key, record.event, reason, source)
        state = self._state(changes, record.key) if record.key is not None else None
        decision = self.decider.unprocessable(found, state, self.clock())
        self._apply(decision, changes, record.key, record.partition)

    def _state(self, changes: Changes | None, key: str) -> S | None:
        document = changes.get(key) if changes is not None else None
        return self.decider.load(document) if document is not None else None

    def _apply(
        self, decision: Decision[S], changes: Changes | None, key: str | None, partition: int
    ) -> None:
        self._keep(decision, changes, key, partition)
        self._produce(decision.events)

    def _keep(
        self, decision: Decision[S], changes: Changes | None, key: str | None, partition: int
    ) -> None:
        """The key's next state into the batch's changes (its changelog record and timer)."""
        if decision.state is not None:
            if changes is None or key is None:
                raise RetryBatchError(
                    f"{self.group}: a decision kept state, but the group keeps none "
                    "or the record has no key"
                )
            changes.put(key, partition, document(self.decider, decision.state, tracing.carried()))

    def _produce(self, outputs: Sequence[Event]) -> None:
        for output in outputs:
            topic = self.serde.topic_of(type(output))
            if self._shadow:
                topic = shadow_topic(topic)
            key = output.envelope.correlation_id
            with tracing.producing(topic, key):
                self._write(
                    topic=topic,
                    key=key.encode(),
                    value=self.serde.serialize(output),
                    headers=record_headers(output),
                )

    def _commit_owed(self) -> None:
        """The owed positions, and the unwritten state, in a transaction of their own."""
        self.transactions.usable()
        self.transactions.producer.begin_transaction()
        try:
            self._commit(None)
        except BaseException as exc:
            self.transactions.abort(exc)
            raise

    def seek(self, positions: Mapping[tuple[str, int], int | None]) -> None:
        """A position owed past where a partition is read again from is owed no more (it is
        owed again once read); one before it stays, with the unwritten state it covers."""
        self.owed.rewind(positions)
        super().seek(positions)

    # -- timers ------------------------------------------------------------------------------

    def tick(self) -> None:
        """Commit positions owed for OWED_COMMIT_S; fire the timers whose due time has passed
        on their partition's clock."""
        self._shadow = False  # a timer's outputs are real
        if self.owed.due(OWED_COMMIT_S):
            self._commit_owed()
        if self.state is None or time.monotonic() < self._next_tick:
            return
        self.transactions.usable()
        self._next_tick = time.monotonic() + TICK_S
        now = self.clock()
        due = self.state.due(now.timestamp())
        if not due:
            return
        ready = []
        for key, entry in due:
            if self.partition_clock.time(entry.partition) >= float(entry.value["due_at"]):
                ready.append((key, entry.partition))
            else:
                self.state.rearm(key, entry)
        if not ready:
            return
        changes = self.state.begin()
        producer = self.transactions.producer
        producer.begin_transaction()
        try:
            for key, partition in ready:
                found = self._state(changes, key)
                if found is not None:
                    armed = (changes.get(key) or {}).get(TRACE) or {}
                    with tracing.expiring(armed, self.group, key):
                        self._apply(self.decider.expire(key, found, now), changes, key, partition)
            self._commit(changes)
        except BaseException as exc:
            self.transactions.abort(exc)
            for key, _ in ready:
                entry_now = self.state.entry(key)
                if entry_now is not None:
                    self.state.rearm(key, entry_now)
            raise


def _logged_at(record: Consumed) -> datetime:
    return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
