"""Day-2 operations on the running system: rebuild a read model, redrive a dead-letter topic."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from golive_audit.bootstrap import read_model as audit_read_model
from golive_audit.settings import AuditSettings
from golive_contracts import topology
from golive_contracts.topology import dlq_topic
from golive_eventing import clients
from golive_eventing.app import make_serde
from golive_eventing.clients import Connection
from golive_eventing.db import create_tables, make_engine
from golive_eventing.producer import service_producer
from golive_eventing.rebuild import Progress, ReadModel, Rebuilt, rebuild
from golive_eventing.records import REDRIVE_FROM, REDRIVE_HEADER
from golive_eventing.settings import KafkaSettings
from golive_order.bootstrap import read_model as order_read_model
from golive_order.settings import OrderSettings
from golive_payment.bootstrap import read_model as payment_read_model
from golive_payment.settings import PaymentSettings
from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError

from golive_cli.system import service_specs

SERVICES = ("order", "payment", "audit")


def service_settings(
    service: str, config: PlatformConfig, *, postgres: bool, database_url: str | None
) -> tuple[KafkaSettings, ReadModel]:
    """The settings `make run` gives that service (its database, topics, broker), and its read model."""
    if service not in SERVICES:
        raise PlatformError(f"unknown service {service!r}: choose one of {', '.join(SERVICES)}")
    spec = next(s for s in service_specs(config, postgres=postgres) if s.name == service)
    # The environment wins (as it does for the service itself): topics, broker, registry.
    values = {k.lower(): v for k, v in spec.env.items() if k not in os.environ}
    if database_url is not None:
        values[f"{service}_database_url"] = database_url
    if service == "order":
        order = OrderSettings.model_validate(values)
        return order, order_read_model(order)
    if service == "payment":
        payment = PaymentSettings.model_validate(values)
        return payment, payment_read_model(payment)
    audit = AuditSettings.model_validate(values)
    return audit, audit_read_model(audit)


def rebuild_service(
    settings: KafkaSettings, model: ReadModel, on_progress: Callable[[Progress], None]
) -> Rebuilt:
    engine = make_engine(model.database_url)
    try:
        create_tables(model.metadata, engine)  # a first run before the service ever started
        return rebuild(
            settings=settings,
            # An operator's run: the registry is up, and what it lacks is poison at once.
            serde=make_serde(settings.model_copy(update={"unknown_schema_grace_s": 0.0})),
            engine=engine,
            metadata=model.metadata,
            projection=model.projection,
            group=model.group,
            topics=model.topics(),
            on_progress=on_progress,
        )
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Redriven:
    dlq: str
    records: int
    by_source: dict[str, int]


def redrive(
    connection: Connection,
    topic: str,
    group: str,
    *,
    dry_run: bool = False,
    timeout_s: float = 60.0,
) -> Redriven:
    """Put every dead letter of `group` on `topic` not redriven before back on its source
    partition, addressed to `group` only (header redrive.group); other groups pass over it.

    Progress is the consumer group `<group>.redrive` on the DLQ: each dead letter goes back once.
    """
    _dead_lettering(group)
    dlq = dlq_topic(topic, group)
    consumer = clients.consumer(
        connection,
        **{
            "group.id": f"{group}.redrive",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        },
    )
    settings = KafkaSettings.exactly(**dict(connection))
    producer = None if dry_run else service_producer(settings, f"{group}-redrive")
    try:
        found = consumer.list_topics(dlq, timeout=10).topics.get(dlq)
        if found is None or found.error is not None:
            raise PlatformError(
                f"no dead-letter topic {dlq} (is {group!r} a consumer group of {topic!r}?)"
            )
        places = [TopicPartition(dlq, p) for p in found.partitions]
        # Only what is dead already: a redriven record that fails again lands behind these ends
        # and waits for the next redrive, instead of going round in a loop.
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in places}
        starts = {
            tp.partition: tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            for tp in consumer.committed(places, timeout=10)
        }
        pending = {p for p, end in ends.items() if end > 0 and starts[p] < end}
        consumer.assign([TopicPartition(dlq, p, starts[p]) for p in pending])
        by_source: dict[str, int] = {}
        last: dict[int, int] = {}
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise PlatformError(f"could not read {dlq} to its end in {timeout_s}s")
            for message in consumer.consume(500, timeout=0.05):
                error = message.error()
                partition = message.partition() or 0
                offset = message.offset() or 0
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(partition)
                    continue
                if offset >= ends[partition]:
                    pending.discard(partition)
                    continue
                source = _send_back(producer, message, topic, group)
                by_source[source] = by_source.get(source, 0) + 1
                last[partition] = offset
            for tp in consumer.position([TopicPartition(dlq, p) for p in pending]):
                if tp.offset >= ends[tp.partition]:  # past the last record (and any marker)
                    pending.discard(tp.partition)
        if producer is not None and last:
            if producer.flush(30) != 0:
                raise PlatformError(
                    "the broker did not acknowledge every redriven record; nothing was marked done, run it again"
                )
            consumer.commit(
                offsets=[TopicPartition(dlq, p, o + 1) for p, o in last.items()], asynchronous=False
            )
        return Redriven(dlq, sum(by_source.values()), by_source)
    finally:
        consumer.close()


def _dead_lettering(group: str) -> None:
    """A group of the topology that dead-letters, or a PlatformError naming the ones there are."""
    try:
        declared = topology.group(group)
    except KeyError as exc:
        raise PlatformError(str(exc.args[0])) from None
    if declared.routes is not None:
        slots = ", ".join(topology.slot_group(declared.routes, s).name for s in topology.SLOTS)
        raise PlatformError(
            f"{group!r} hands every record to a version slot: no dead letters (its slots' are "
            f"theirs: {slots})"
        )
    if not declared.dead_letters:
        raise PlatformError(f"{group!r} keeps every record, undecodable ones too: no dead letters")


def _send_back(producer: Producer | None, message: Message, topic: str, group: str) -> str:
    """Produce a dead letter back to its source partition, addressed to `group`; its source topic."""
    raw = [(str(h[0]), _bytes(h[1])) for h in message.headers() or []]
    headers = dict(raw)
    source = headers.get("dlq.source.topic", topic.encode()).decode()
    if producer is None:
        return source
    kept: list[tuple[str, str | bytes | None]] = [
        (k, v) for k, v in raw if not k.startswith(("dlq.", "redrive."))
    ]
    kept += [
        (REDRIVE_HEADER, group.encode()),
        (REDRIVE_FROM, f"{message.topic()}:{message.partition()}:{message.offset()}".encode()),
    ]
    producer.produce(
        source,
        key=message.key(),
        value=message.value(),
        headers=kept,
        # The partition it came from (per-key order, co-partitioned state); -1: by key.
        partition=int(headers.get("dlq.source.partition", b"-1") or -1),
    )
    producer.poll(0)
    return source


def _bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


def unread(connection: Connection, group: str, topics: list[str]) -> int:
    """How many committed records `group` has yet to read on `topics` (0: it has read them all).

    A group's committed offset can stop short of the high watermark without anything left to
    read: transaction markers (commit/abort) take offsets too. So behind the committed offset,
    only records a read_committed consumer would get count.
    """
    consumer = clients.consumer(connection, **{"group.id": group, "enable.auto.commit": False})
    reader = clients.consumer(
        connection,
        **{
            "group.id": f"{group}-lag-probe",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        },
    )
    try:
        places = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        behind = []
        for tp in consumer.committed(places, timeout=10):
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            start = max(tp.offset, 0)
            if start < high:
                behind.append(TopicPartition(tp.topic, tp.partition, start))
        if not behind:
            return 0
        reader.assign(behind)
        unread, at_end = 0, set[tuple[str | None, int | None]]()
        deadline = time.monotonic() + 10
        while len(at_end) < len(behind) and time.monotonic() < deadline:
            for msg in reader.consume(500, timeout=0.05):
                error = msg.error()
                if error is None:
                    unread += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add((msg.topic(), msg.partition()))
        return unread if len(at_end) == len(behind) else max(unread, 1)
    finally:
        consumer.close()
        reader.close()
