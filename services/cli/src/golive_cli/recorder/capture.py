"""golive capture: the records of a time window, every partition, journeys completed, desensitised.

Producer timestamps are not monotonic within a partition, so each partition is read from
offsets_for_times(from - skew) and past `to` until a record is later than `to + skew` (or the end
seen at start), and every record is filtered by its own timestamp. Topics are written in Kafka
transactions: read_committed, and "done" is a position, because commit markers take offsets.

Each batch consumed goes whole to the native window (services/recorder-native): every record is
checked, desensitised and formatted as its file line there, then waits on disk, a spool per
partition, until the journeys started in the window are known: a window of any length is
captured in bounded memory (a batch per partition, and the keys of the journeys started in it).
Python reads Kafka and the registry, compiles schemas (rewrite.py) and writes the file.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from golive_contracts.events import OrderCancelled, OrderConfirmed, OrderPlaced
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_recorder_native import Window as NativeWindow

from golive_cli.recorder.archive import (
    BLOCK_BYTES,
    CapturedRecord,
    EmbeddedSchema,
    Manifest,
    write_lines,
)
from golive_cli.recorder.desensitise import Tokeniser
from golive_cli.recorder.rewrite import Program, UndecodableError, compile_schema
from golive_cli.recorder.wire import SourceSchemas, WriterSchema

# A journey (correlation id = order id = record key) starts and ends with these events.
JOURNEY_START = OrderPlaced.full_name()
JOURNEY_END = frozenset({OrderConfirmed.full_name(), OrderCancelled.full_name()})
# A consumer that reads faster than librdkafka refills its queue: once the queue's thresholds
# are met, librdkafka (2.x) postpones the partition's next fetch by fetch.queue.backoff.ms,
# 1000 by default. Reading 200,000 records (104 MB) that stalled it for a second at a time:
# 104,456/s against 392,538/s with 10 ms (make bench-recorder; docs/recorder.md).
BULK_READ = {"fetch.queue.backoff.ms": 10}
SPOOL_BATCH = 1000  # records a partition holds in memory before they go to its spool


Place = tuple[str, int]  # (topic, partition)


class CaptureError(RuntimeError):
    """The window could not be captured (topic missing, broker silent, reading stalled)."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window times need a time zone (e.g. 2026-11-24T10:00:00Z)")
        if self.end <= self.start:
            raise ValueError(f"the window ends ({self.end}) before it starts ({self.start})")

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


@dataclass(frozen=True)
class CaptureOptions:
    complete_journeys: bool = True
    skew: timedelta = timedelta(seconds=30)
    # How far past the window a started journey may run before the capture stops waiting for it.
    extend: timedelta = timedelta(minutes=5)
    # Seconds without progress (no position moved) before giving up: a broker gone silent. Not
    # a limit on the whole capture: a long window takes as long as it takes. (An open
    # transaction cannot stall it: the ends seen at the start are last stable offsets.)
    stall_s: float = 60.0
    clock: Callable[[], float] = time.monotonic


def _resolver(schemas: SourceSchemas, desensitise: bool) -> Callable[[int], tuple[Program, int]]:
    """What the native window asks once per schema id: the walk program of the writer schema,
    and its role in journeys (0 none, 1 start, 2 end). UndecodableError: no such schema here."""

    def resolve(schema_id: int) -> tuple[Program, int]:
        schema = schemas.get(schema_id)  # RegistryError (registry down) stops the capture
        try:
            program = compile_schema(schema.raw, desensitise=desensitise)
        except (ValueError, KeyError, TypeError) as exc:
            raise UndecodableError(f"schema id {schema_id} cannot be walked: {exc}") from exc
        role = (
            1 if schema.full_name == JOURNEY_START else 2 if schema.full_name in JOURNEY_END else 0
        )
        return program, role

    return resolve


@dataclass
class WindowRead:
    """A window read to its end, spooled and tallied: the manifest (what is kept, per topic,
    and what is left out), the writer schemas seen, and `lines()`, which streams the kept
    records' file lines."""

    manifest: Manifest
    source: SourceSchemas
    native: NativeWindow
    counts: dict[str, int]
    used: set[int]
    _merged: bool = False

    def schemas(self) -> dict[int, EmbeddedSchema]:
        """Every writer schema met, by source id (the file embeds those its records use)."""
        return {s.id: s.embedded() for s in self.source.used()}

    def lines(self) -> Iterator[bytes]:
        """The kept records' capture-file lines, in blocks of about a MiB: merged by timestamp,
        each partition's in offset order (per-key order). Once only, inside read_window's
        block (the spools close with it)."""
        if self._merged:
            raise RuntimeError("the window's records were read already")
        self._merged = True
        while block := self.native.lines(BLOCK_BYTES):
            yield block

    def records(self) -> Iterator[CapturedRecord]:
        """The same, parsed (for a reader that shows them; a file takes the lines as they are)."""
        for block in self.lines():
            for line in block.splitlines():
                yield CapturedRecord.from_json(json.loads(line)["record"])


@contextmanager
def read_window(
    source: Connection,
    topics: Sequence[str],
    window: Window,
    tokeniser: Tokeniser | None,
    options: CaptureOptions = CaptureOptions(),
    spool_dir: Path | None = None,
) -> Iterator[WindowRead]:
    """Read the window (and the journeys started in it) into spools under `spool_dir` (the
    system's temporary directory if None), removed when the block ends."""
    schemas = SourceSchemas(source)
    resolve = _resolver(schemas, desensitise=tokeniser is not None)
    key = None if tokeniser is None else tokeniser.key
    with tempfile.TemporaryFile(dir=spool_dir) as file:
        native = NativeWindow(
            key, resolve, file.fileno(), SPOOL_BATCH, window.start_ms, window.end_ms
        )
        try:
            _read(source, topics, window, options, native)
            native.merge(options.complete_journeys)
        except OSError as exc:  # the spool's disk: full, gone
            where = spool_dir or tempfile.gettempdir()
            raise CaptureError(f"could not spool the window in {where}: {exc}") from exc
        manifest = Manifest(
            source={
                "bootstrap": source.kafka_bootstrap_servers,
                "registry": source.schema_registry_url,
                "topics": ",".join(topics),
            },
            window={
                "from": window.start.isoformat(),
                "to": window.end.isoformat(),
                "complete_journeys": str(options.complete_journeys).lower(),
            },
            desensitised=tokeniser is not None,
            key_id=None,
            journeys={"started": native.started, "open": native.open},  # final once merged
        )
        counts, used, undecodable, samples = native.tally()
        manifest.undecodable = dict(sorted(undecodable.items()))
        manifest.undecodable_samples = samples
        yield WindowRead(manifest, schemas, native, counts, used)


def capture(
    source: Connection,
    topics: Sequence[str],
    window: Window,
    tokeniser: Tokeniser | None,
    options: CaptureOptions = CaptureOptions(),
) -> tuple[Manifest, list[WriterSchema], list[CapturedRecord]]:
    """The window in memory, for a reader that shows it (golive inspect); files stream instead."""
    with read_window(source, topics, window, tokeniser, options) as read:
        records = list(read.records())
    return read.manifest, [s for s in read.source.used() if s.id in read.used], records


def capture_to_file(
    path: Path,
    source: Connection,
    topics: Sequence[str],
    window: Window,
    tokeniser: Tokeniser | None,
    key_id: str | None,
    options: CaptureOptions = CaptureOptions(),
) -> Manifest:
    """Capture the window into `path`; the spools wait beside it, in its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with read_window(source, topics, window, tokeniser, options, spool_dir=path.parent) as read:
        read.manifest.key_id = key_id
        tally = (read.counts, read.used)
        return write_lines(path, read.manifest, read.schemas(), tally, read.lines())


def _read(
    source: Connection,
    topics: Sequence[str],
    window: Window,
    options: CaptureOptions,
    native: NativeWindow,
) -> None:
    """Every record of the window's partitions into `native`, batch by batch, until each
    partition is read past the window (and the journeys started in it) or to its end."""
    consumer = clients.consumer(
        source,
        **{
            "group.id": f"golive-capture-{uuid.uuid4().hex[:8]}",  # assigned, never committed
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": False,
            **BULK_READ,
        },
    )
    try:
        ends = _assign(consumer, topics, window.start_ms - _ms(options.skew))
        paused: set[tuple[str, int]] = set()
        clock, stall_s = options.clock, options.stall_s
        deadline = clock() + stall_s
        before: dict[Place, int] = {}
        while True:
            done, positions = _done(consumer, ends, native, _horizon(window, options, native))
            if done == set(ends):
                # The worker may be a few batches behind: a journey may have opened in them.
                native.settle()
                done, positions = _done(consumer, ends, native, _horizon(window, options, native))
                if done == set(ends):
                    return
            _pause_done(consumer, done, paused)
            if positions != before:  # progress, records or not (aborted ones are skipped)
                before, deadline = positions, clock() + stall_s
            elif clock() > deadline:
                behind = ", ".join(
                    f"{t}[{p}] at {positions[(t, p)]} of {ends[(t, p)][1]}"
                    for t, p in sorted(set(ends) - done)
                )
                raise CaptureError(
                    f"nothing read for {stall_s:.0f} s, short of the end seen at the start: {behind}"
                )
            native.push(consumer.consume(1000, timeout=0.2))
    except KafkaException as exc:
        raise CaptureError(f"Kafka at {source.kafka_bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()


def _horizon(window: Window, options: CaptureOptions, native: NativeWindow) -> int:
    """How late a record may be before its partition is read far enough: the window's end and
    the skew, and the extension while a journey started in the window is open."""
    horizon = window.end_ms + _ms(options.skew)
    if options.complete_journeys and native.open:
        horizon += _ms(options.extend)
    return horizon


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def _assign(
    consumer: Consumer, topics: Sequence[str], from_ms: int
) -> dict[tuple[str, int], tuple[int, int]]:
    """Assign every partition at its first offset at or after `from_ms`: (start, end) of each.
    The end is what this read_committed consumer is told: the last stable offset, so what is
    committed when the capture starts (a transaction still open then is not captured)."""
    wanted: list[TopicPartition] = []
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            raise CaptureError(f"topic {topic!r} does not exist")
        wanted += [TopicPartition(topic, p, from_ms) for p in sorted(meta.partitions)]
    starts = consumer.offsets_for_times(wanted, timeout=15)
    ends: dict[tuple[str, int], tuple[int, int]] = {}
    assigned: list[TopicPartition] = []
    for tp in starts:
        _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
        start = tp.offset if tp.offset >= 0 else high  # -1: nothing at or after the time
        ends[(tp.topic, tp.partition)] = (start, high)
        assigned.append(TopicPartition(tp.topic, tp.partition, start))
    consumer.assign(assigned)
    return ends


def _done(
    consumer: Consumer,
    ends: dict[tuple[str, int], tuple[int, int]],
    native: NativeWindow,
    horizon_ms: int,
) -> tuple[set[tuple[str, int]], dict[Place, int]]:
    """The partitions read far enough, and where each one is."""
    last_ts = native.last_timestamps()
    done = set()
    positions: dict[Place, int] = {}
    for tp in consumer.position([TopicPartition(t, p) for t, p in ends]):
        place = (tp.topic, tp.partition)
        start, end = ends[place]
        position = tp.offset if tp.offset >= 0 else start  # nothing consumed yet: where it starts
        positions[place] = position
        if position >= end or last_ts.get(place, 0) > horizon_ms:
            done.add(place)
    return done, positions


def _pause_done(
    consumer: Consumer, done: set[tuple[str, int]], paused: set[tuple[str, int]]
) -> None:
    """Stop fetching where nothing more is wanted; resume if a journey opened after all."""
    if done - paused:
        consumer.pause([TopicPartition(t, p) for t, p in done - paused])
    if paused - done:
        consumer.resume([TopicPartition(t, p) for t, p in paused - done])
    paused.clear()
    paused |= done
