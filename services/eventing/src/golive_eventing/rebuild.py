"""Rebuild a read model by replay: fresh tables filled from offset 0, then swapped in atomically.

The live tables keep serving (and the live projection keeps applying) while the copies fill.
The swap renames, in one transaction, every live table away and every copy into its place, the
positions table first (the order in which the live projection takes its locks, so the two never
deadlock). The live projection then finds positions it did not write, and carries on from them
(PositionsMovedError): nothing is applied twice or skipped.

Row for row, the result equals the live tables because no column comes from the wall clock at
projection time; a column that is the store's own insertion order (the audit store's `seq`) is
renumbered by a rebuild.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from sqlalchemy import MetaData, Table, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import quoted_name

from golive_eventing import clients
from golive_eventing.db import SqlProjection, retried
from golive_eventing.projection import ProjectionStore
from golive_eventing.records import Consumed, decode, next_offsets
from golive_eventing.serde import EventSerde
from golive_eventing.settings import KafkaSettings

log = logging.getLogger(__name__)

ProjectionFactory = Callable[[Engine, dict[str, Table]], SqlProjection]


@dataclass
class Progress:
    """Records read per partition against the end each partition had when the rebuild began."""

    ends: dict[tuple[str, int], int]
    read: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.ends.values())

    @property
    def done(self) -> int:
        return sum(min(self.read.get(p, 0), end) for p, end in self.ends.items())


@dataclass(frozen=True)
class ReadModel:
    """What a service's read model is made of, for `golive rebuild`."""

    name: str
    database_url: str
    metadata: MetaData
    projection: ProjectionFactory
    group: str
    topics: Callable[[], list[str]]


@dataclass(frozen=True)
class Rebuilt:
    records: int
    seconds: float
    tables: list[str]


def fresh_tables(metadata: MetaData, suffix: str) -> tuple[MetaData, dict[str, Table]]:
    """A copy of every table of `metadata` under `<name><suffix>`, constraint names made unique."""
    copies = MetaData()
    tables: dict[str, Table] = {}
    for table in metadata.sorted_tables:
        copy = table.to_metadata(copies, name=f"{table.name}{suffix}")
        # Named constraints must be unique per schema (PostgreSQL); index names derive from
        # the table's name already.
        for constraint in copy.constraints:
            if isinstance(constraint.name, str) and constraint.name:
                constraint.name = quoted_name(f"{constraint.name}{suffix}", quote=None)
        tables[table.name] = copy
    return copies, tables


def rebuild(
    *,
    settings: KafkaSettings,
    serde: EventSerde,
    engine: Engine,
    metadata: MetaData,
    projection: ProjectionFactory,
    group: str,
    topics: Sequence[str],
    on_progress: Callable[[Progress], None] = lambda _p: None,
    timeout_s: float = 3600.0,
) -> Rebuilt:
    """Replay `topics` from the start into fresh copies of `metadata`'s tables, then swap them in."""
    started = time.monotonic()
    suffix = f"__r{uuid.uuid4().hex[:8]}"
    copies, tables = fresh_tables(metadata, suffix)
    copies.create_all(engine)
    try:
        store = projection(engine, tables)
        records = _replay(settings, serde, store, group, topics, on_progress, timeout_s)
        _swap(engine, metadata, tables, suffix)
    except BaseException:
        copies.drop_all(engine)
        raise
    return Rebuilt(records, time.monotonic() - started, [t.name for t in metadata.sorted_tables])


def _replay(
    settings: KafkaSettings,
    serde: EventSerde,
    store: ProjectionStore,
    group: str,
    topics: Sequence[str],
    on_progress: Callable[[Progress], None],
    timeout_s: float,
) -> int:
    consumer = clients.consumer(
        settings,
        **{
            "group.id": f"{group}-rebuild",  # assign() only: never joins, never commits
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        },
    )
    try:
        places = [
            (topic, p)
            for topic in topics
            for p in sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ]
        progress = Progress(
            {
                place: consumer.get_watermark_offsets(TopicPartition(*place), timeout=10)[1]
                for place in places
            }
        )
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in places])
        written: dict[tuple[str, int], int | None] = dict.fromkeys(places)
        at_end: set[tuple[str, int]] = set()
        records = 0
        deadline = time.monotonic() + timeout_s
        while len(at_end) < len(places):
            if time.monotonic() > deadline:
                raise TimeoutError(f"rebuild did not reach the end of {topics} in {timeout_s}s")
            batch: list[Consumed] = []
            for message in consumer.consume(1000, timeout=0.05):
                error = message.error()
                place = (message.topic() or "", message.partition() or 0)
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(place)
                    continue
                at_end.discard(place)
                batch.append(decode(message, serde, group))
            if not batch:
                continue
            offsets = next_offsets(batch)
            applied = [r for r in batch if not r.skip]
            store.apply(
                group,
                applied,
                offsets,
                {(o.topic, o.partition): written[(o.topic, o.partition)] for o in offsets},
            )
            for tp in offsets:
                written[(tp.topic, tp.partition)] = tp.offset
                progress.read[(tp.topic, tp.partition)] = tp.offset
            records += len(batch)
            on_progress(progress)
        on_progress(progress)
        return records
    finally:
        consumer.close()


def _swap(engine: Engine, metadata: MetaData, tables: dict[str, Table], suffix: str) -> None:
    """Live tables out, copies in, in one transaction; positions first (see the module doc)."""
    order = sorted(metadata.sorted_tables, key=lambda t: t.name != SqlProjection.OFFSETS)
    quote = engine.dialect.identifier_preparer.quote

    def swap() -> None:
        with engine.begin() as conn:
            for live in order:
                old = f"{live.name}__old{suffix}"
                conn.execute(text(f"ALTER TABLE {quote(live.name)} RENAME TO {quote(old)}"))
                conn.execute(
                    text(
                        f"ALTER TABLE {quote(tables[live.name].name)} RENAME TO {quote(live.name)}"
                    )
                )
            for live in order:
                conn.execute(text(f"DROP TABLE {quote(f'{live.name}__old{suffix}')}"))

    # A deadlock victim or a busy SQLite: try again.
    retried(swap, OperationalError, "swap", pause_s=0.5)


def matching_topics(settings: KafkaSettings, pattern: str) -> list[str]:
    """The topics a regex subscription (`^...`) covers right now."""
    consumer = clients.consumer(settings, **{"group.id": "golive-rebuild-list"})
    try:
        names = consumer.list_topics(timeout=10).topics
    finally:
        consumer.close()
    regex = re.compile(pattern.removeprefix("^"))
    return sorted(name for name in names if regex.fullmatch(name.removeprefix("^")))
