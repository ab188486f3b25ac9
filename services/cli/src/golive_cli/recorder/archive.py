"""The capture file: gzip'd JSON lines, one manifest line, the writer schemas, then the records.

The gzip stream is in members (the manifest and schemas, then one per MiB of records), which
every gzip reader reads as one stream: the records' members are compressed in parallel.

Line 1 is `{"manifest": ...}`, then one `{"schema": ...}` line per writer schema, then one
`{"record": ...}` line per record. Values and header values are base64 of the exact bytes
(Avro in the registry's wire format, schema id as in the source registry). The manifest carries
a SHA-256 over every line after it, so a truncated or edited file is refused. See ADR 0006.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, cast

from isal import igzip, isal_zlib

FORMAT = "golive-capture"
VERSION = 1


class CaptureFileError(ValueError):
    """Not a capture file, a version this build cannot read, or a file that fails its checksum."""


@dataclass(frozen=True)
class EmbeddedSchema:
    """A writer schema as the source registry holds it, under the id the records carry."""

    id: int
    full_name: str
    schema: str


class CapturedRecord(NamedTuple):
    """One record as Kafka carried it (desensitised, if the capture is). A tuple: capture makes
    one per record read, and a frozen dataclass took 2 us of its time each."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    value: bytes
    schema_id: int

    def key_str(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", "replace")

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            "key": None if self.key is None else _b64(self.key),
            "headers": [[name, _b64(value)] for name, value in self.headers],
            "schema_id": self.schema_id,
            "value": _b64(self.value),
        }

    def line(self) -> bytes:
        """`{"record": to_json()}` as one line: what json.dumps writes (sorted keys, compact),
        formatted directly because capture writes one per record."""
        key = "null" if self.key is None else f'"{_b64(self.key)}"'
        headers = ",".join(f'[{_json_string(n)},"{_b64(v)}"]' for n, v in self.headers)
        return (
            f'{{"record":{{"headers":[{headers}],"key":{key},"offset":{self.offset:d},'
            f'"partition":{self.partition:d},"schema_id":{self.schema_id:d},'
            f'"timestamp_ms":{self.timestamp_ms:d},"topic":{_json_string(self.topic)},'
            f'"value":"{_b64(self.value)}"}}}}\n'
        ).encode()

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CapturedRecord:
        return cls(
            topic=raw["topic"],
            partition=int(raw["partition"]),
            offset=int(raw["offset"]),
            timestamp_ms=int(raw["timestamp_ms"]),
            key=None if raw["key"] is None else base64.b64decode(raw["key"]),
            headers=tuple((str(n), base64.b64decode(v)) for n, v in raw["headers"]),
            schema_id=int(raw["schema_id"]),
            value=base64.b64decode(raw["value"]),
        )


@dataclass
class Manifest:
    """Where and when the capture comes from, what it holds, and how to check it."""

    source: dict[str, str]
    window: dict[str, str]
    desensitised: bool
    key_id: str | None
    records: dict[str, int] = field(default_factory=dict)
    undecodable: dict[str, int] = field(default_factory=dict)
    undecodable_samples: list[str] = field(default_factory=list)
    journeys: dict[str, int] = field(default_factory=dict)
    sha256: str = ""
    format: str = FORMAT
    version: int = VERSION


@dataclass(frozen=True)
class Capture:
    """A capture in memory (regress reads it more than once; replay streams a CaptureFile)."""

    manifest: Manifest
    schemas: dict[int, EmbeddedSchema]
    records: list[CapturedRecord]

    def iter_records(self) -> Iterator[CapturedRecord]:
        return iter(self.records)

    def topics(self) -> set[str]:
        return {r.topic for r in self.records}


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


_json_string = lru_cache(maxsize=1024)(json.dumps)  # topic and header names: a handful


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n").encode()


BLOCK_BYTES = 1 << 20  # of lines: each is compressed on its own (a gzip member)
COMPRESSORS = 2  # threads compressing blocks (ISA-L releases the GIL)


def write_lines(
    path: Path,
    manifest: Manifest,
    schemas: Mapping[int, EmbeddedSchema],
    tally: tuple[Mapping[str, int], set[int]],
    blocks: Iterable[bytes],
) -> Manifest:
    """Write the file atomically (temp file, then rename) from blocks of record lines (as
    `CapturedRecord.line()` writes them) whose `tally` is known: the records per topic and the
    schema ids they use. Embeds those schemas (from `schemas`), fills in counts and checksum.

    The blocks are hashed in order as they come and compressed on `COMPRESSORS` threads, each
    into a gzip member of its own (as pigz does; any gzip reader reads the members as one
    stream), and wait in a temporary file: the manifest, with the checksum, comes first in the
    file, in a member of its own with the schemas, written last."""
    counts, used = tally
    if missing := used - schemas.keys():
        raise ValueError(f"records use schema ids {sorted(missing)} not given")
    head = b"".join(_line({"schema": asdict(s)}) for i, s in schemas.items() if i in used)
    digest = hashlib.sha256(head)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryFile(dir=path.parent) as members,
        ThreadPoolExecutor(COMPRESSORS, thread_name_prefix="golive-gzip") as pool,
    ):
        pending: deque[Future[bytes]] = deque()
        for block in blocks:
            digest.update(block)
            pending.append(pool.submit(_member, block))
            while len(pending) > 2 * COMPRESSORS:  # bounded: a few blocks in flight
                members.write(pending.popleft().result())
        while pending:
            members.write(pending.popleft().result())
        manifest.records = dict(sorted(counts.items()))
        manifest.sha256 = digest.hexdigest()
        members.seek(0)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_member(_line({"manifest": asdict(manifest)}) + head))
                shutil.copyfileobj(members, out, 1 << 20)
            Path(tmp).chmod(0o644)  # mkstemp makes it private; a capture is a shared artefact
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return manifest


# ISA-L's level 1: on capture lines (base64 in JSON) 8 to 12% less CPU than its level 2, for
# files 3% larger (125 MB of lines, four alternated runs: 306 to 353 ms against 330 to 388 ms);
# make bench-recorder measures both.
COMPRESS_LEVEL = 1


def _member(data: bytes) -> bytes:
    """A gzip member, by ISA-L (igzip), several times zlib's speed for the same size (make
    bench-recorder measures both); mtime 0, so the same lines give the same bytes."""
    return igzip.compress(data, COMPRESS_LEVEL, mtime=0)


# Not gzip, cut short, or damaged inside (isal's stub types its error as an instance).
_UNREADABLE = (OSError, EOFError, cast(type[Exception], isal_zlib.error))


def _lines(path: Path) -> Iterator[bytes]:
    try:
        with igzip.open(path, "rb") as handle:
            yield from handle
    except FileNotFoundError:
        raise CaptureFileError(f"{path}: no such file") from None
    except _UNREADABLE as exc:
        raise CaptureFileError(f"{path}: not a complete gzip'd capture file ({exc})") from None


def _opened(path: Path) -> tuple[Manifest, Iterator[tuple[int, bytes]]]:
    """The manifest on line 1, and the lines after it with their numbers."""
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise CaptureFileError(f"{path}: empty file, not a capture")
    return _manifest(path, first), enumerate(lines, start=2)


def _manifest(path: Path, line: bytes) -> Manifest:
    try:
        raw = json.loads(line)["manifest"]
        manifest = Manifest(**raw)
    except (ValueError, KeyError, TypeError):
        raise CaptureFileError(f"{path}: not a capture file (no manifest on line 1)") from None
    if manifest.format != FORMAT or manifest.version != VERSION:
        raise CaptureFileError(
            f"{path}: {manifest.format} v{manifest.version}; this build reads {FORMAT} v{VERSION}"
        )
    return manifest


def _schema(path: Path, number: int, line: bytes) -> EmbeddedSchema:
    try:
        return EmbeddedSchema(**json.loads(line)["schema"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CaptureFileError(f"{path}:{number}: malformed line ({exc})") from None


def _record(path: Path, number: int, line: bytes) -> CapturedRecord:
    try:
        return CapturedRecord.from_json(json.loads(line)["record"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CaptureFileError(f"{path}:{number}: malformed line ({exc})") from None


_SCHEMA_LINE = b'{"schema"'
# What the checking pass reads off a record line without parsing it: the writer puts these keys
# outside every string (a header name with quotes in it is escaped; a topic name cannot have any).
_SCHEMA_ID = re.compile(rb'"schema_id":(\d+)')
_TOPIC = re.compile(rb'"topic":"([^"\\]*)"')


class CaptureFile:
    """A capture file checked whole as it is opened: against its manifest's checksum, and every
    record's schema embedded (nothing is published from a file that fails). Then streamed:
    `iter_records()` reads the records from disk as they are used, so a capture of any size
    replays in bounded memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest, lines = _opened(path)
        self.schemas: dict[int, EmbeddedSchema] = {}
        self._topics: set[str] = set()
        used: set[int] = set()
        digest = hashlib.sha256()
        for number, line in lines:
            digest.update(line)
            if line.startswith(_SCHEMA_LINE):
                schema = _schema(path, number, line)
                self.schemas[schema.id] = schema
                continue
            schema_id, topic = _SCHEMA_ID.search(line), _TOPIC.search(line)
            if schema_id is None or topic is None:  # not as the writer writes it: parse it
                record = _record(path, number, line)
                used.add(record.schema_id)
                self._topics.add(record.topic)
            else:
                used.add(int(schema_id.group(1)))
                self._topics.add(topic.group(1).decode())
        if digest.hexdigest() != self.manifest.sha256:
            raise CaptureFileError(f"{path}: checksum mismatch: the file was changed or cut short")
        if missing := used - self.schemas.keys():
            raise CaptureFileError(f"{path}: records use schema ids {sorted(missing)} not embedded")

    def topics(self) -> set[str]:
        """The topics its records come from."""
        return set(self._topics)

    def iter_records(self) -> Iterator[CapturedRecord]:
        """The records in file order. The file is hashed again as it is read: one changed since
        it was opened fails at its end."""
        path = self.path
        digest = hashlib.sha256()
        _, lines = _opened(path)
        for number, line in lines:
            digest.update(line)
            if line.startswith(_SCHEMA_LINE):
                continue
            record = _record(path, number, line)
            if record.schema_id not in self.schemas:
                raise CaptureFileError(
                    f"{path}:{number}: the record uses schema id {record.schema_id}, not embedded"
                )
            yield record
        if digest.hexdigest() != self.manifest.sha256:
            raise CaptureFileError(f"{path}: changed while it was read")


def read_capture(path: Path) -> Capture:
    """The whole capture in memory, checked against its manifest's checksum first."""
    opened = CaptureFile(path)
    return Capture(opened.manifest, opened.schemas, list(opened.iter_records()))
