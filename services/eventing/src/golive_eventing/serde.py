"""Events to and from the Confluent wire format (magic byte, schema id, Avro), via the registry.

Several event types share a topic (TopicRecordNameStrategy), so the reader learns the type from
the writer schema's name, then resolves writer to reader schema (upcasting old versions).
Services never register: a schema the registry does not know is a deployment error.
"""

from __future__ import annotations

import io
import json
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import fastavro
import httpx
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from golive_contracts.avro import avro_schema, subject_for
from golive_contracts.events import BY_FULL_NAME, Event
from pydantic import ValidationError

MAGIC = 0
_HEADER = struct.Struct(">bI")


def _unreachable() -> tuple[type[BaseException], ...]:
    """What the registry client raises when the registry does not answer. confluent-kafka's
    client uses httpx2 where it is installed and httpx otherwise: catch both, or a registry
    restart escapes as an unexpected error and kills the consumer loop."""
    found: list[type[BaseException]] = [httpx.HTTPError, OSError]
    try:
        import httpx2  # noqa: PLC0415

        found.append(httpx2.HTTPError)
    except ImportError:
        pass
    return tuple(found)


REGISTRY_UNREACHABLE = _unreachable()


class PoisonRecordError(ValueError):
    """A record no retry can decode: not our wire format, an unknown schema, truncated bytes."""


class RegistryUnavailableError(RuntimeError):
    """The registry could not be asked: transient, pause and retry, never dead-letter."""


class SchemaNotRegisteredError(RuntimeError):
    """The registry does not know a schema this service writes: run `golive schemas register`."""


# A registry that restarts can answer before it has read its storage back (Apicurio's kafkasql
# serves HTTP a few seconds before "KafkaSQL storage bootstrapped"), and then does not know ids
# it will know a moment later. A service's consumers (golive_eventing.app.make_serde) wait a 404
# for a schema id out this long, counted from the first one for that id, before they take the
# record for poison. Readers that run once (rebuild, regress, tests) take it for poison at once.
UNKNOWN_SCHEMA_GRACE_S = 30.0


class EventSerde:
    def __init__(
        self,
        registry: SchemaRegistryClient,
        topics: dict[str, str],
        *,
        unknown_schema_grace_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.topics = topics
        self.unknown_schema_grace_s = unknown_schema_grace_s
        self._clock = clock
        self._unknown_since: dict[int, float] = {}
        self._lock = threading.Lock()
        self._writer_ids: dict[type[Event], int] = {}
        self._writers: dict[type[Event], Any] = {}
        self._readers: dict[type[Event], Any] = {}
        # Per writer's schema id: its event, its parsed schema, and the reader's schema to
        # resolve it to, None when they are the same. fastavro skips resolving equal schemas
        # too, but finds out by comparing the two parsed schemas on every read: a deep compare
        # that was a third of an OrderPlaced's decode (12.2 against 16.6 us). Once per id here.
        self._by_id: dict[int, tuple[type[Event], Any, Any]] = {}

    def topic_of(self, event: type[Event]) -> str:
        return self.topics[event.topic]

    # -- writing ----------------------------------------------------------------------------

    def schema_id(self, event: type[Event]) -> int:
        """The registry's id of this event's current schema (looked up once, never registered)."""
        if event not in self._writer_ids:
            subject = subject_for(self.topic_of(event), event)
            schema = Schema(json.dumps(avro_schema(event)), "AVRO")
            try:
                found = self.registry.lookup_schema(subject, schema)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    raise SchemaNotRegisteredError(
                        f"schema of {event.type_name()} is not registered under {subject}: "
                        "run `golive schemas register`"
                    ) from exc
                raise RegistryUnavailableError(str(exc)) from exc
            except REGISTRY_UNREACHABLE as exc:
                raise RegistryUnavailableError(str(exc)) from exc
            if found.schema_id is None:
                raise SchemaNotRegisteredError(f"the registry returned no id for {subject}")
            with self._lock:
                self._writer_ids[event] = found.schema_id
                self._writers[event] = fastavro.parse_schema(avro_schema(event))
        return self._writer_ids[event]

    def serialize(self, event: Event) -> bytes:
        cls = type(event)
        schema_id = self.schema_id(cls)
        buffer = io.BytesIO()
        buffer.write(_HEADER.pack(MAGIC, schema_id))
        fastavro.schemaless_writer(buffer, self._writers[cls], event.model_dump(mode="python"))
        return buffer.getvalue()

    # -- reading ----------------------------------------------------------------------------

    def _writer_schema(self, schema_id: int) -> tuple[type[Event], Any, Any]:
        if schema_id not in self._by_id:
            try:
                registered = self.registry.get_schema(schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    self._unknown(schema_id, exc)
                raise RegistryUnavailableError(str(exc)) from exc
            except REGISTRY_UNREACHABLE as exc:
                raise RegistryUnavailableError(str(exc)) from exc
            self._unknown_since.pop(schema_id, None)
            raw = json.loads(registered.schema_str or "{}")
            full_name = f"{raw.get('namespace', '')}.{raw.get('name', '')}"
            if full_name not in BY_FULL_NAME:
                raise PoisonRecordError(f"schema id {schema_id} is {full_name}, not a Golive event")
            cls = BY_FULL_NAME[full_name]
            writer, reader = fastavro.parse_schema(raw), self._reader(cls)
            with self._lock:
                self._by_id[schema_id] = (cls, writer, None if writer == reader else reader)
        return self._by_id[schema_id]

    def _unknown(self, schema_id: int, exc: SchemaRegistryError) -> None:
        """Raise: transient within the grace for this id, poison after it."""
        now = self._clock()
        first = self._unknown_since.setdefault(schema_id, now)
        if now - first >= self.unknown_schema_grace_s:
            raise PoisonRecordError(f"unknown schema id {schema_id}") from exc
        raise RegistryUnavailableError(
            f"the registry does not know schema id {schema_id} (yet: it may still be reading "
            f"its storage back); poison if it still does not in "
            f"{first + self.unknown_schema_grace_s - now:.0f} s"
        ) from exc

    def _reader(self, event: type[Event]) -> Any:
        if event not in self._readers:
            with self._lock:
                self._readers[event] = fastavro.parse_schema(avro_schema(event))
        return self._readers[event]

    def _decode(self, data: bytes | None) -> tuple[type[Event], Any]:
        if data is None or len(data) < _HEADER.size:
            raise PoisonRecordError("record too short for the wire format (no magic byte and id)")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise PoisonRecordError(f"magic byte {magic} is not {MAGIC}: not the registry's format")
        cls, writer, reader = self._writer_schema(schema_id)
        try:
            return cls, fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), writer, reader)
        except (EOFError, ValueError, IndexError, struct.error) as exc:
            raise PoisonRecordError(f"cannot decode {cls.type_name()}: {exc}") from exc

    def deserialize(self, data: bytes | None) -> Event:
        """The event as this build reads it: the writer's version resolved to the current model."""
        cls, record = self._decode(data)
        try:
            return cls.model_validate(record)
        except ValidationError as exc:
            # Valid Avro, invalid fact (a writer that skipped validation): no retry can fix it.
            raise PoisonRecordError(
                f"{cls.type_name()} fails validation: {exc.errors()[0]['msg']}"
            ) from exc
