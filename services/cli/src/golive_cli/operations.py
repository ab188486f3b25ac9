"""Day-2 operations on the running system: rebuild a read model, redrive a dead-letter topic."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from golive_audit.service import AuditSettings
from golive_audit.service import read_model as audit_read_model
from golive_eventing.app import make_serde
from golive_eventing.db import make_engine
from golive_eventing.producer import producer_config
from golive_eventing.rebuild import Progress, ReadModel, Rebuilt, rebuild
from golive_eventing.runner import REDRIVE_HEADER, dlq_topic
from golive_eventing.settings import KafkaSettings
from golive_order.bootstrap import read_model as order_read_model
from golive_order.settings import OrderSettings
from golive_payment.service import PaymentSettings
from golive_payment.service import read_model as payment_read_model
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
    values = {k.lower(): v for k, v in spec.env.items()}
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
        model.metadata.create_all(engine)  # a first run before the service ever started
        return rebuild(
            settings=settings,
            serde=make_serde(settings),
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
    bootstrap: str, topic: str, group: str, *, dry_run: bool = False, timeout_s: float = 60.0
) -> Redriven:
    """Put every dead letter of `group` on `topic` not redriven before back on its source
    partition, addressed to `group` only (header redrive.group); other groups pass over it.

    Progress is the consumer group `<group>.redrive` on the DLQ: each dead letter goes back once.
    """
    dlq = dlq_topic(topic, group)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{group}.redrive",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    producer = (
        None if dry_run else Producer(producer_config(_settings(bootstrap), f"{group}-redrive"))
    )
    try:
        found = consumer.list_topics(dlq, timeout=10).topics.get(dlq)
        if found is None or found.error is not None:
            raise PlatformError(
                f"no dead-letter topic {dlq} (is {group!r} a consumer group of {topic!r}?)"
            )
        places = [TopicPartition(dlq, p) for p in found.partitions]
        committed = consumer.committed(places, timeout=10)
        consumer.assign(
            [
                TopicPartition(dlq, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                for tp in committed
            ]
        )
        at_end: set[int] = set()
        by_source: dict[str, int] = {}
        last: dict[int, int] = {}
        deadline = time.monotonic() + timeout_s
        while len(at_end) < len(places):
            if time.monotonic() > deadline:
                raise PlatformError(f"could not read {dlq} to its end in {timeout_s}s")
            for message in consumer.consume(500, timeout=0.5):
                error = message.error()
                partition = message.partition() or 0
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(partition)
                    continue
                at_end.discard(partition)
                raw = [(str(h[0]), _bytes(h[1])) for h in message.headers() or []]
                headers = dict(raw)
                source = headers.get("dlq.source.topic", topic.encode()).decode()
                source_partition = int(headers.get("dlq.source.partition", b"-1") or -1)
                by_source[source] = by_source.get(source, 0) + 1
                last[partition] = message.offset() or 0
                if producer is None:
                    continue
                kept: list[tuple[str, str | bytes | None]] = [
                    (k, v) for k, v in raw if not k.startswith(("dlq.", "redrive."))
                ]
                kept += [
                    (REDRIVE_HEADER, group.encode()),
                    ("redrive.from", f"{dlq}:{partition}:{message.offset()}".encode()),
                ]
                producer.produce(
                    source,
                    key=message.key(),
                    value=message.value(),
                    headers=kept,
                    partition=source_partition,  # -1: the partitioner's choice (by key)
                )
                producer.poll(0)
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


def _bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


def _settings(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(kafka_bootstrap_servers=bootstrap)
