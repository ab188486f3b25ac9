"""What a transactional processor remembers per key, kept in Kafka itself.

The state lives in a compacted changelog topic, `<input topic>.<group>.state`, written in the same
Kafka transaction as the processor's outputs and consumed offsets. So the three can never disagree:
after a crash, a rebalance or a failover, whoever owns partition p reads partition p of the
changelog to its end (read_committed) and knows exactly what was decided before, no more, no less.
This is Kafka Streams' model; a database beside Kafka could not commit atomically with it.

Partition p of the changelog holds the keys of partition p of the inputs (co-partitioning: same
partition count, same key), so restoring is per partition. Values are small JSON documents, an
internal format of one processor (not an event interface, so not in the registry); `due_at`
(epoch seconds) in a value arms a timer for that key.

The whole state of the assigned partitions is held in memory: about 420 bytes a key (a UUID key
and the payment slot's value, measured with tracemalloc). Past a few million open keys, put it
in a local store (RocksDB, SQLite) restored from the same changelog.
"""

from __future__ import annotations

import heapq
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from golive_eventing import clients
from golive_eventing.settings import KafkaSettings

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
Value = dict[str, Any]


class StateRestoreError(RuntimeError):
    """The changelog could not be read to its end in time: the processor must not decide blind."""


@dataclass(frozen=True)
class Entry:
    partition: int
    value: Value


@dataclass
class Changes:
    """A batch's view of the state: reads see the batch's own writes; nothing is kept on abort."""

    state: KeyedState
    pending: dict[str, Entry] = field(default_factory=dict)

    def get(self, key: str) -> Value | None:
        entry = self.pending.get(key)
        return entry.value if entry is not None else self.state.values.get(key)

    def put(self, key: str, partition: int, value: Value) -> None:
        self.pending[key] = Entry(partition, value)


class KeyedState:
    def __init__(self, settings: KafkaSettings, topic: str, group: str) -> None:
        self.settings = settings
        self.topic = topic
        self.group = group
        # Each key's value and its partition, kept apart: the collector stops tracking a value
        # that holds only strings, numbers and booleans, so a full collection walks two dicts,
        # not an object per key (1,000,000 keys: 18-23 ms, against 176-191 ms with an Entry per
        # key; docs/performance.md, "A processor's state and the collector").
        self.values: dict[str, Value] = {}
        self.partitions: dict[str, int] = {}
        # Changes that are the state already but not yet in the changelog (`keep`): a batch that
        # changed only state leaves them to the next transaction that writes (`write`).
        self.unwritten: dict[str, Entry] = {}
        self._timers: list[tuple[float, str]] = []

    # -- ownership -------------------------------------------------------------------------

    def restore(self, partitions: Iterable[int], timeout_s: float = 60.0) -> int:
        """Read these changelog partitions from the start to their end; the count of records read.

        The end is the high watermark, not the end-of-partition event of a read_committed
        consumer, which comes at the last stable offset: the start of the oldest transaction
        still open. What that transaction holds may yet commit, so a restore that stopped there
        would decide blind. A crashed owner's open transaction holds the end back until the
        broker aborts it (transaction.timeout.ms), so the timeout must be longer than that; one
        that never ends (a hanging transaction, docs/runbooks/hanging-transaction.md) fails the
        restore, naming the partition and the offsets, instead of deciding twice.
        """
        wanted = sorted(set(partitions))
        if not wanted:
            return 0
        consumer = clients.consumer(
            self.settings,
            **{
                # assign() only: never joins, never commits; the broker still wants the group
                # granted to look up its coordinator (golive_contracts.access).
                "group.id": self.settings.names.restore_group_id(self.group),
                "client.id": f"{self.group}-restore",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            },
        )
        read = 0
        stable: dict[int, int] = {}  # partition -> where its last end-of-partition event came
        try:
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in wanted])
            deadline = time.monotonic() + timeout_s
            while not self._read_to_end(consumer, stable, wanted):
                if time.monotonic() > deadline:
                    raise StateRestoreError(self._stuck(consumer, stable, wanted, timeout_s))
                # consume() returns at 1,000 records or the timeout: a long timeout would be
                # waited out by every pass that finds fewer.
                for message in consumer.consume(1000, timeout=0.05):
                    error = message.error()
                    partition = message.partition() or 0
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            stable[partition] = message.offset() or 0
                        else:
                            log.warning("%s: restore: %s", self.topic, error)
                        continue
                    stable.pop(partition, None)  # more arrived after an end-of-partition event
                    self._load(partition, message.key(), message.value())
                    read += 1
        finally:
            consumer.close()
        log.info("%s: restored %d records from partitions %s", self.topic, read, wanted)
        return read

    def _read_to_end(self, consumer: Consumer, stable: dict[int, int], wanted: list[int]) -> bool:
        """Every partition's last end-of-partition event came at its high watermark."""
        return all(
            p in stable
            and stable[p]
            >= consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)[1]
            for p in wanted
        )

    def _stuck(
        self, consumer: Consumer, stable: dict[int, int], wanted: list[int], timeout_s: float
    ) -> str:
        behind = []
        for p in wanted:
            high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)[1]
            if p not in stable:
                behind.append(f"{p} (not read to its end)")
            elif stable[p] < high:
                behind.append(f"{p} (a transaction open from offset {stable[p]}, end {high})")
        return (
            f"{self.topic}: partitions {', '.join(behind)} not read to their end in {timeout_s:g} s;"
            " a transaction that stays open is a hanging one: docs/runbooks/hanging-transaction.md"
        )

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the keys of partitions this instance no longer owns."""
        gone = set(partitions)
        self.partitions = {k: p for k, p in self.partitions.items() if p not in gone}
        self.values = {k: self.values[k] for k in self.partitions}
        self.unwritten = {k: e for k, e in self.unwritten.items() if e.partition not in gone}

    def _load(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        name = key.decode()
        if value is None:
            self.values.pop(name, None)
            self.partitions.pop(name, None)
            return
        document = json.loads(value)
        document.pop("v", None)
        self._set(name, Entry(partition, document))

    def entry(self, key: str) -> Entry | None:
        """The key's committed value and partition, if it has one."""
        value = self.values.get(key)
        return None if value is None else Entry(self.partitions[key], value)

    def _set(self, key: str, entry: Entry) -> None:
        self.values[key] = entry.value
        self.partitions[key] = entry.partition
        due = entry.value.get("due_at")
        if isinstance(due, int | float):
            heapq.heappush(self._timers, (float(due), key))

    # -- a batch -----------------------------------------------------------------------------

    def begin(self) -> Changes:
        return Changes(self)

    def write(self, producer: Producer, changes: Changes | None = None) -> int:
        """Produce what is unwritten and the batch's changes (the latest of each key) into the
        caller's open transaction: how many records."""
        records = self.unwritten | (changes.pending if changes is not None else {})
        for key, entry in records.items():
            producer.produce(
                self.topic,
                key=key.encode(),
                value=json.dumps({"v": FORMAT_VERSION, **entry.value}).encode(),
                partition=entry.partition,
            )
        return len(records)

    def commit(self, changes: Changes | None = None) -> None:
        """The transaction that `write` wrote into committed: the changes are now the state, and
        nothing is unwritten."""
        if changes is not None:
            for key, entry in changes.pending.items():
                self._set(key, entry)
        self.unwritten.clear()

    def keep(self, changes: Changes) -> None:
        """A batch that changed only state, its positions owed: its changes are the state now,
        and go to the changelog with the next transaction (`write`). A crash before then loses
        them with the positions, and reading those records again decides them again."""
        for key, entry in changes.pending.items():
            self._set(key, entry)
            self.unwritten[key] = entry

    # -- timers ------------------------------------------------------------------------------

    def due(self, now_s: float) -> list[tuple[str, Entry]]:
        """Keys whose current value has a due_at at or before now (each once)."""
        found: dict[str, Entry] = {}
        while self._timers and self._timers[0][0] <= now_s:
            due_at, key = heapq.heappop(self._timers)
            entry = self.entry(key)
            if entry is not None and entry.value.get("due_at") == due_at:
                found[key] = entry
        return list(found.items())

    def rearm(self, key: str, entry: Entry) -> None:
        """A due key that could not fire yet (its partition's time has not passed it)."""
        heapq.heappush(self._timers, (float(entry.value["due_at"]), key))
