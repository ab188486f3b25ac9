"""golive capture: the records of a time window, every partition, journeys completed, desensitised.

Producer timestamps are not monotonic within a partition, so each partition is read from
offsets_for_times(from - skew) and past `to` until a record is later than `to + skew` (or the end
seen at start), and every record is filtered by its own timestamp. Topics are written in Kafka
transactions: read_committed, and "done" is a position, because commit markers take offsets.

What is read waits on disk, a spool per partition, until the journeys started in the window are
known: a window of any length is captured in bounded memory (a batch per partition, and the keys
of the journeys started in it).
"""

from __future__ import annotations

import heapq
import io
import marshal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from golive_contracts.events import OrderCancelled, OrderConfirmed, OrderPlaced

from golive_cli.recorder.archive import CapturedRecord, EmbeddedSchema, Manifest, write_capture
from golive_cli.recorder.desensitise import DesensitiseError, Tokeniser
from golive_cli.recorder.rewrite import Rewriter, UndecodableError
from golive_cli.recorder.wire import HEADER, SourceSchemas, WriterSchema, schema_id_of

# A journey (correlation id = order id = record key) starts and ends with these events.
JOURNEY_START = OrderPlaced.full_name()
JOURNEY_END = frozenset({OrderConfirmed.full_name(), OrderCancelled.full_name()})
MAX_SAMPLES = 5
SPOOL_BATCH = 1000  # candidates a partition holds in memory before they go to its spool


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


# A record read: (record, or None if undecodable; key; in the window; why undecodable). Kept or
# dropped once the started journeys are known. A tuple: one is made per record.
_Candidate = tuple[CapturedRecord | None, str | None, bool, str]


class _Spool:
    """One partition's candidates, in offset order, in batches of `batch` in a temporary file
    that every partition's spool shares (one file descriptor, however many partitions): each
    spool remembers where its batches are. A batch is marshal's bytes: the fastest codec for
    tuples of bytes, ints and strings, and the file never outlives the process that wrote it (an
    anonymous file, unlinked as it is made: nothing else reads it)."""

    def __init__(self, file: IO[bytes], batch: int) -> None:
        self._file = file
        self._size = batch
        self._batch: list[_Candidate] = []
        self._spans: list[tuple[int, int]] = []  # (position, length) of each batch written

    def append(self, candidate: _Candidate) -> None:
        self._batch.append(candidate)
        if len(self._batch) >= self._size:
            self._flush()

    def _flush(self) -> None:
        # marshal takes exact tuples only: a CapturedRecord goes as its fields.
        data = marshal.dumps(
            [(None if c[0] is None else tuple(c[0]), c[1], c[2], c[3]) for c in self._batch]
        )
        position = self._file.seek(0, io.SEEK_END)
        self._file.write(data)
        self._spans.append((position, len(data)))
        self._batch.clear()

    def __iter__(self) -> Iterator[_Candidate]:
        """Every candidate appended, in order. Spools are read only once every spool is
        written, and each batch is read whole, so spools read in turn (a merge) do not mix."""
        if self._batch:
            self._flush()
        make = CapturedRecord._make
        for position, length in self._spans:
            self._file.seek(position)
            batch = self._file.read(length)
            for record, key, in_window, reason in marshal.loads(batch):  # noqa: S302 (our own file)
                yield (None if record is None else make(record), key, in_window, reason)


@dataclass
class _Journeys:
    started: set[str] = field(default_factory=set)
    ended: set[str] = field(default_factory=set)

    def open(self) -> int:
        return len(self.started - self.ended)


class Recorder:
    """Turns consumed messages into captured records: checked and desensitised, never decoded.

    Each writer schema is compiled once into a `Rewriter` (see rewrite.py). A raw capture still
    walks every record, so one that does not decode is left out and counted either way.
    """

    def __init__(self, schemas: SourceSchemas, tokeniser: Tokeniser | None) -> None:
        self.schemas = schemas
        self.tokeniser = tokeniser
        self._rewriters: dict[int, tuple[WriterSchema, Rewriter]] = {}

    def record(self, msg: Message, place: Place, timestamp_ms: int) -> tuple[CapturedRecord, str]:
        """The record and its writer schema's full name."""
        value = msg.value()
        schema_id = schema_id_of(value)
        if schema_id not in self._rewriters:
            schema = self.schemas.get(schema_id)
            self._rewriters[schema_id] = (schema, Rewriter(schema.raw, self.tokeniser))
        schema, rewriter = self._rewriters[schema_id]
        assert value is not None
        headers = msg.headers()
        record = CapturedRecord(
            place[0],
            place[1],
            msg.offset() or 0,
            timestamp_ms,
            msg.key(),
            tuple((str(h[0]), _bytes(h[1])) for h in headers) if headers else (),
            rewriter.rewrite(value, HEADER.size),
            schema_id,
        )
        return record, schema.full_name


def _bytes(value: str | bytes | None) -> bytes:
    if isinstance(value, str):
        return value.encode()
    return value or b""


@dataclass
class WindowRead:
    """A window read to its end and spooled: the manifest so far, the writer schemas seen, and
    `records()`, which streams what is kept (and counts what is left out into the manifest)."""

    manifest: Manifest
    source: SourceSchemas
    spools: dict[Place, _Spool]
    journeys: _Journeys
    options: CaptureOptions
    _merged: bool = False

    def schemas(self) -> dict[int, EmbeddedSchema]:
        """Every writer schema met, by source id (the file embeds those its records use)."""
        return {s.id: s.embedded() for s in self.source.used()}

    def _kept(self, c: _Candidate) -> bool:
        return c[2] or (self.options.complete_journeys and c[1] in self.journeys.started)

    def _partition(self, topic: str, spool: _Spool) -> Iterator[CapturedRecord]:
        undecodable = self.manifest.undecodable
        samples = self.manifest.undecodable_samples
        for c in spool:
            if not self._kept(c):
                continue
            if c[0] is not None:
                yield c[0]
                continue
            undecodable[topic] = undecodable.get(topic, 0) + 1
            if len(samples) < MAX_SAMPLES:
                samples.append(f"{topic}: {c[3]}")

    def records(self) -> Iterator[CapturedRecord]:
        """Merged by timestamp; each partition's records stay in offset order (per-key order).
        Once only, inside read_window's block: it counts what it leaves out into the manifest,
        and the spools close with the block."""
        if self._merged:
            raise RuntimeError("the window's records were read already")
        self._merged = True
        partitions = [self._partition(topic, spool) for (topic, _), spool in self.spools.items()]
        return heapq.merge(*partitions, key=lambda r: r.timestamp_ms)


@contextmanager
def read_window(
    bootstrap: str,
    registry_url: str,
    topics: Sequence[str],
    window: Window,
    tokeniser: Tokeniser | None,
    options: CaptureOptions = CaptureOptions(),
    spool_dir: Path | None = None,
) -> Iterator[WindowRead]:
    """Read the window (and the journeys started in it) into spools under `spool_dir` (the
    system's temporary directory if None), removed when the block ends."""
    schemas = SourceSchemas(registry_url)
    recorder = Recorder(schemas, tokeniser)
    journeys = _Journeys()
    spools: dict[Place, _Spool] = {}
    start_ms, end_ms = window.start_ms, window.end_ms
    with tempfile.TemporaryFile(dir=spool_dir) as file:
        for msg, place, timestamp_ms in _window_messages(bootstrap, topics, window, options,
                                                         journeys):  # fmt: skip
            key = msg.key()
            key_str = None if key is None else key.decode("utf-8", "replace")
            in_window = start_ms <= timestamp_ms < end_ms
            spool = spools.get(place)
            if spool is None:
                spool = spools[place] = _Spool(file, SPOOL_BATCH)
            try:
                record, full_name = recorder.record(msg, place, timestamp_ms)
            except (UndecodableError, DesensitiseError) as exc:
                spool.append((None, key_str, in_window, str(exc)))
                continue
            if key_str is not None:
                if full_name == JOURNEY_START and in_window:
                    journeys.started.add(key_str)
                elif full_name in JOURNEY_END:
                    journeys.ended.add(key_str)
            spool.append((record, key_str, in_window, ""))

        manifest = Manifest(
            source={"bootstrap": bootstrap, "registry": registry_url, "topics": ",".join(topics)},
            window={
                "from": window.start.isoformat(),
                "to": window.end.isoformat(),
                "complete_journeys": str(options.complete_journeys).lower(),
            },
            desensitised=tokeniser is not None,
            key_id=None,
            journeys={"started": len(journeys.started), "open": journeys.open()},
        )
        yield WindowRead(manifest, schemas, spools, journeys, options)


def capture(
    bootstrap: str,
    registry_url: str,
    topics: Sequence[str],
    window: Window,
    tokeniser: Tokeniser | None,
    options: CaptureOptions = CaptureOptions(),
) -> tuple[Manifest, list[WriterSchema], list[CapturedRecord]]:
    """The window in memory, for a reader that shows it (golive inspect); files stream instead."""
    with read_window(bootstrap, registry_url, topics, window, tokeniser, options) as read:
        records = list(read.records())
    used = {r.schema_id for r in records}
    return read.manifest, [s for s in read.source.used() if s.id in used], records


def capture_to_file(
    path: Path,
    bootstrap: str,
    registry_url: str,
    topics: Sequence[str],
    window: Window,
    tokeniser: Tokeniser | None,
    key_id: str | None,
    options: CaptureOptions = CaptureOptions(),
) -> Manifest:
    """Capture the window into `path`; the spools wait beside it, in its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with read_window(bootstrap, registry_url, topics, window, tokeniser, options,
                     spool_dir=path.parent) as read:  # fmt: skip
        read.manifest.key_id = key_id
        return write_capture(path, read.manifest, read.schemas(), read.records())


def _window_messages(
    bootstrap: str,
    topics: Sequence[str],
    window: Window,
    options: CaptureOptions,
    journeys: _Journeys,
) -> Iterator[tuple[Message, Place, int]]:
    """Every record of the window's partitions, with its (topic, partition) and timestamp."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"golive-capture-{uuid.uuid4().hex[:8]}",  # assigned, never committed
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
    })  # fmt: skip
    try:
        ends = _assign(consumer, topics, window.start_ms - _ms(options.skew))
        paused: set[tuple[str, int]] = set()
        last_ts: dict[tuple[str, int], int] = {}
        clock, stall_s = options.clock, options.stall_s
        deadline = clock() + stall_s
        before: dict[Place, int] = {}
        while True:
            horizon = window.end_ms + _ms(options.skew)
            if options.complete_journeys and journeys.open():
                horizon += _ms(options.extend)
            done, positions = _done(consumer, ends, last_ts, horizon)
            if done == set(ends):
                return
            _pause_done(consumer, done, paused)
            if positions != before:  # progress, records or not (aborted ones are skipped)
                before, deadline = positions, clock() + stall_s
            elif clock() > deadline:
                behind = ", ".join(f"{t}[{p}] at {positions[(t, p)]} of {ends[(t, p)][1]}"
                                   for t, p in sorted(set(ends) - done))  # fmt: skip
                raise CaptureError(
                    f"nothing read for {stall_s:.0f} s, short of the end seen at the start: {behind}"
                )
            for msg in consumer.consume(1000, timeout=0.2):
                if msg.error() is not None:
                    continue
                place = (msg.topic() or "", msg.partition() or 0)
                timestamp_ms = msg.timestamp()[1]
                if timestamp_ms > last_ts.get(place, 0):
                    last_ts[place] = timestamp_ms
                yield msg, place, timestamp_ms
    except KafkaException as exc:
        raise CaptureError(f"Kafka at {bootstrap}: {exc}") from exc
    finally:
        consumer.close()


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
    last_ts: dict[tuple[str, int], int],
    horizon_ms: int,
) -> tuple[set[tuple[str, int]], dict[Place, int]]:
    """The partitions read far enough, and where each one is."""
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
