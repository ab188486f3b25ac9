"""golive replay: publish a capture into a test environment, its schemas registered there.

Each record's schema id is rewritten to the target registry's id of the embedded writer schema
(registered under the target topic's subject), so the target needs no knowledge of the source.
Records go out in capture order (per partition in offset order, hence per key in order), keyed
as captured so the murmur2 partitioner puts each key where the services expect it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_eventing.producer import produce_bounded
from golive_eventing.serde import REGISTRY_UNREACHABLE

from golive_cli.recorder.archive import Capture, CapturedRecord, CaptureFile, EmbeddedSchema
from golive_cli.recorder.wire import RegistryError, with_schema_id

# A cluster declares itself a test environment by holding this (empty) topic. Replay refuses
# any other target unless told explicitly; `golive environment mark-test` creates it.
TEST_ENVIRONMENT_MARKER = "_golive.test-environment"
REPLAYED_FROM_HEADER = "golive.replayed-from"
_SPEED = re.compile(r"^(\d+(?:\.\d+)?)x$")


class ReplayError(RuntimeError):
    """The target refused (not a test environment, topic missing, schema rejected, no ack)."""


def parse_speed(text: str) -> float | None:
    """'1x' -> 1.0, '10x' -> 10.0, 'max' -> None (as fast as the broker takes them)."""
    if text == "max":
        return None
    found = _SPEED.match(text)
    if not found or float(found.group(1)) <= 0:
        raise ValueError(f"speed {text!r}: use a positive multiple such as 1x or 10x, or max")
    return float(found.group(1))


def parse_topic_map(pairs: Iterable[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source or not target:
            raise ValueError(f"topic map {pair!r}: expected source=target, e.g. orders=orders.ci")
        mapping[source] = target
    return mapping


def topic_names(target: Connection) -> set[str]:
    try:
        return set(clients.admin(target).list_topics(timeout=10).topics)
    except KafkaException as exc:
        raise ReplayError(
            f"Kafka at {target.kafka_bootstrap_servers} does not answer: {exc}"
        ) from exc


def mark_test_environment(target: Connection, marker: str = TEST_ENVIRONMENT_MARKER) -> bool:
    """Declare a cluster a test environment; True if it was not declared before."""
    if marker in topic_names(target):
        return False
    admin = clients.admin(target)  # kept alive until the future resolves
    futures = admin.create_topics([NewTopic(marker, 1, 1)], operation_timeout=15)
    try:
        futures[marker].result(timeout=20)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise ReplayError(
                f"could not create {marker} on {target.kafka_bootstrap_servers}: {exc}"
            ) from exc
    return True


class TargetSchemas:
    """The target registry's id of each embedded writer schema, under each target topic's subject."""

    def __init__(self, target: Connection) -> None:
        self.url = target.schema_registry_url
        self.registry = clients.registry(target)
        self._ids: dict[tuple[int, str], int] = {}

    def id_for(self, schema: EmbeddedSchema, topic: str) -> int:
        if (schema.id, topic) not in self._ids:
            subject = f"{topic}-{schema.full_name}"  # TopicRecordNameStrategy (ADR 0004)
            try:
                found = self.registry.register_schema(subject, Schema(schema.schema, "AVRO"))
            except SchemaRegistryError as exc:
                raise RegistryError(f"{self.url} refused the schema for {subject}: {exc}") from exc
            except REGISTRY_UNREACHABLE as exc:
                raise RegistryError(f"registry {self.url} does not answer: {exc}") from exc
            self._ids[(schema.id, topic)] = found
        return self._ids[(schema.id, topic)]


@dataclass
class ReplayResult:
    published: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.published.values())


Select = Callable[[CapturedRecord, EmbeddedSchema], bool]


def replay(
    capture: Capture | CaptureFile,
    target: Connection,
    *,
    topic_map: Mapping[str, str] | None = None,
    speed: float | None = None,
    keep_timestamps: bool = False,
    select: Select | None = None,
    allow_any_target: bool = False,
    marker: str = TEST_ENVIRONMENT_MARKER,
) -> ReplayResult:
    mapping = dict(topic_map or {})
    schemas = capture.schemas
    if select is None:
        sources = capture.topics()
    else:
        sources = {r.topic for r in capture.iter_records() if select(r, schemas[r.schema_id])}
    bootstrap = target.kafka_bootstrap_servers
    existing = topic_names(target)
    if not allow_any_target and marker not in existing:
        raise ReplayError(
            f"{bootstrap} is not declared a test environment (no topic {marker}): run "
            "`golive environment mark-test --bootstrap ...` there if it is one, or pass "
            "--allow-any-target if you really mean to publish into it"
        )
    missing = sorted({mapping.get(t, t) for t in sources} - existing)
    if missing:
        raise ReplayError(
            f"target topics missing on {bootstrap}: {', '.join(missing)} (use --topic-map a=b)"
        )
    records = (
        r for r in capture.iter_records() if select is None or select(r, schemas[r.schema_id])
    )
    return _publish(
        records,
        schemas,
        target,
        TargetSchemas(target),
        mapping,
        speed,
        keep_timestamps,
        sources,
    )


def _publish(
    records: Iterable[CapturedRecord],
    schemas: Mapping[int, EmbeddedSchema],
    connection: Connection,
    target: TargetSchemas,
    mapping: Mapping[str, str],
    speed: float | None,
    keep_timestamps: bool,
    sources: set[str],
) -> ReplayResult:
    producer = clients.producer(
        connection,
        **{
            "client.id": "golive-replay",
            "enable.idempotence": True,  # per-partition order holds across retries
            "acks": "all",
            "partitioner": "murmur2_random",  # the services' partitioner (ADR 0005)
            "linger.ms": 5,
        },
    )
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        del msg
        if err is not None:
            failures.append(str(err))

    result = ReplayResult()
    started = time.monotonic()
    first: int | None = None
    latest = 0
    for record in records:
        if first is None:
            first = latest = record.timestamp_ms
        if speed is not None:
            latest = max(latest, record.timestamp_ms)  # timestamps may step back; time does not
            wait = started + (latest - first) / 1000 / speed - time.monotonic()
            if wait > 0:
                producer.poll(wait)  # keep the relative timing, serving delivery reports meanwhile
        if record.topic not in sources:  # the file changed since its topics were checked
            raise ReplayError(f"a record from {record.topic}, a topic the capture did not hold")
        topic = mapping.get(record.topic, record.topic)
        extra: dict[str, Any] = {"timestamp": record.timestamp_ms} if keep_timestamps else {}
        origin = f"{record.topic}/{record.partition}/{record.offset}".encode()
        produce_bounded(
            producer,
            topic=topic,
            key=record.key,
            value=with_schema_id(record.value, target.id_for(schemas[record.schema_id], topic)),
            headers=[*record.headers, (REPLAYED_FROM_HEADER, origin)],
            on_delivery=on_delivery,
            **extra,
        )
        result.published[topic] = result.published.get(topic, 0) + 1
    left = producer.flush(60)
    result.seconds = time.monotonic() - started
    if left or failures:
        detail = failures[0] if failures else f"{left} records not acknowledged in 60 s"
        raise ReplayError(f"replay into {connection.kafka_bootstrap_servers} incomplete: {detail}")
    return result
