"""The broker is a real Kafka: records flow, transactions commit, consumer groups form quickly."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import ConfigResource
from golive_eventing import clients
from golive_platform.testing import Cluster

from tests.helpers import create_topic, eventually

pytestmark = pytest.mark.integration


def _consumer(cluster: Cluster, group: str, **extra: str) -> Consumer:
    return clients.consumer(
        cluster.connection,
        **{
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **extra,
        },
    )


def _drain(
    consumer: Consumer, want: int, timeout_s: float = 15
) -> list[tuple[bytes | None, bytes | None]]:
    got: list[tuple[bytes | None, bytes | None]] = []

    def more() -> bool:
        for msg in consumer.consume(num_messages=100, timeout=0.05):
            if msg.error() is None:
                got.append((msg.key(), msg.value()))
        return len(got) >= want

    eventually(more, timeout_s, f"{want} records")
    return got


def test_produce_and_consume_a_record(cluster: Cluster, unique: str) -> None:
    topic = f"test.broker.{unique}"
    create_topic(cluster.connection, topic)
    producer = clients.producer(cluster.connection, **{"acks": "all", "enable.idempotence": True})
    delivered: list[KafkaError | None] = []
    producer.produce(
        topic, key=b"order-1", value=b"hello", on_delivery=lambda err, _msg: delivered.append(err)
    )
    assert producer.flush(10) == 0
    assert delivered == [None]

    consumer = _consumer(cluster, f"test.group.{unique}")
    consumer.subscribe([topic])
    try:
        assert _drain(consumer, 1) == [(b"order-1", b"hello")]
    finally:
        consumer.close()


def test_transactional_produce_is_read_committed(cluster: Cluster, unique: str) -> None:
    topic = f"test.tx.{unique}"
    create_topic(cluster.connection, topic)
    producer = clients.producer(cluster.connection, **{"transactional.id": f"test-tx-{unique}"})
    producer.init_transactions(15)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"aborted")
    producer.flush(10)
    producer.abort_transaction(15)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"committed")
    producer.commit_transaction(15)

    committed = _consumer(cluster, f"test.rc.{unique}", **{"isolation.level": "read_committed"})
    committed.subscribe([topic])
    try:
        assert _drain(committed, 1) == [(b"k", b"committed")]
        # Nothing more shows up: the aborted record stays invisible to read_committed readers.
        assert not [m for m in committed.consume(num_messages=10, timeout=1.0) if m.error() is None]
    finally:
        committed.close()

    uncommitted = _consumer(cluster, f"test.ru.{unique}", **{"isolation.level": "read_uncommitted"})
    uncommitted.subscribe([topic])
    try:
        values = sorted(v or b"" for _, v in _drain(uncommitted, 2))
        assert values == [b"aborted", b"committed"]
    finally:
        uncommitted.close()


def test_consumer_group_joins_within_two_seconds(cluster: Cluster, unique: str) -> None:
    topic = f"test.join.{unique}"
    create_topic(cluster.connection, topic, partitions=3)
    consumer = _consumer(cluster, f"test.join.{unique}")
    assigned: list[TopicPartition] = []
    consumer.subscribe([topic], on_assign=lambda _c, parts: assigned.extend(parts))
    started = time.monotonic()
    try:
        # A broker assembled from jars defaults to a 3 s initial rebalance delay; ours is 0.
        eventually(
            lambda: consumer.poll(0.05) is None and assigned, 2.5, "the group to assign partitions"
        )
        assert {p.partition for p in assigned} == {0, 1, 2}
        assert time.monotonic() - started < 2.5
    finally:
        consumer.close()


def test_broker_refuses_to_create_topics_by_accident(cluster: Cluster, unique: str) -> None:
    if cluster.source != "local":
        pytest.skip("checks the local broker's own configuration")
    admin = clients.admin(cluster.connection)
    broker = ConfigResource(ConfigResource.Type.BROKER, "1")
    configs = admin.describe_configs([broker])[broker].result(timeout=10)
    assert configs["auto.create.topics.enable"].value == "false"
    assert configs["group.initial.rebalance.delay.ms"].value == "0"
    assert configs["transaction.state.log.min.isr"].value == "1"
    assert configs["offsets.topic.replication.factor"].value == "1"

    producer = clients.producer(cluster.connection, **{"message.timeout.ms": 3000})
    errors: list[KafkaError | None] = []
    producer.produce(f"test.typo.{unique}", b"x", on_delivery=lambda err, _m: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
    assert f"test.typo.{unique}" not in admin.list_topics(timeout=10).topics
