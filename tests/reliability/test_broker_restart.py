"""A broker stopped (SIGTERM) while transactions commit keeps every acknowledged one, whole.

The local platform's single broker once lost them: a controlled shutdown left every partition
leaderless while the transaction coordinator still answered, so a commit in that window was
logged complete with its markers skipped; its records stayed pending until a later transaction
of the same producer resolved them, committed or aborted. That is what duplicated payments and
stalled the process manager in test_outages (docs/reliability.md, "A broker stopped
mid-commit"). golive_platform.kafka turns controlled shutdown off.

The window is a fraction of a second of each stop, so one stop catches the regression about one
time in five: this runs under `make stress-outage`, not `make test`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from functools import partial

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from golive_eventing import clients
from golive_eventing.clients import Connection

from tests.helpers import create_topic, eventually
from tests.instances import Broker

pytestmark = [pytest.mark.reliability, pytest.mark.stress]

PRODUCERS = 6
STOPS = 2
COMMITS_BEFORE_STOP = 300
quiet = logging.getLogger("tests.broker-restart")  # librdkafka's refused connections go here


@pytest.fixture
def broker(own_broker: Broker) -> Broker:
    create_topic(own_broker.config.connection(), "padding", partitions=60)  # more to hand over
    return own_broker


def _commit_until(
    connection: Connection,
    topic: str,
    transactional_id: str,
    stop: threading.Event,
    acknowledged: set[str],
) -> None:
    """Transactions of one record on each of the topic's three partitions, until the broker
    goes; each acknowledged one is named in `acknowledged`."""
    producer = clients.producer(
        connection,
        **{
            "transactional.id": transactional_id,
            "linger.ms": 1,
            "logger": quiet,
        },
    )
    producer.init_transactions(30)
    number = 0
    while not stop.is_set():
        number += 1
        name = f"{transactional_id}:{number}"
        try:
            producer.begin_transaction()
            for partition in range(3):
                producer.produce(topic, name.encode(), partition=partition)
            producer.commit_transaction(10)
        except KafkaException:
            return  # the broker is stopping
        acknowledged.add(name)


def _at_least(acknowledged: set[str], count: int) -> bool:
    return len(acknowledged) >= count


def _committed(connection: Connection, topic: str) -> dict[str, set[int]]:
    """Each transaction's records as read_committed consumers see them: name -> partitions."""
    consumer = clients.consumer(
        connection,
        **{
            "group.id": "broker-restart-reader",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            "logger": quiet,
        },
    )
    seen: dict[str, set[int]] = collections.defaultdict(set)
    at_end: set[int] = set()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        deadline = time.monotonic() + 30
        while len(at_end) < 3:
            assert time.monotonic() < deadline, f"{topic} not read to its end"
            for message in consumer.consume(1000, timeout=0.05):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition() or 0)
                    continue
                seen[(message.value() or b"").decode()].add(message.partition() or 0)
    finally:
        consumer.close()
    return seen


def test_transactions_committed_as_the_broker_stops_stay_whole(broker: Broker) -> None:
    connection = broker.config.connection()
    for stop_number in range(STOPS):
        topic = f"stop-{stop_number}-{uuid.uuid4().hex[:8]}"
        create_topic(connection, topic, partitions=3)
        ids = [f"{topic}-{i}" for i in range(PRODUCERS)]
        stop, acknowledged = threading.Event(), set[str]()
        writers = [
            threading.Thread(target=_commit_until, args=(connection, topic, i, stop, acknowledged))
            for i in ids
        ]
        for writer in writers:
            writer.start()
        eventually(partial(_at_least, acknowledged, COMMITS_BEFORE_STOP), 60, "commits to start")
        broker.stop()  # SIGTERM while they commit
        stop.set()
        for writer in writers:
            writer.join(30)
        broker.start()
        for transactional_id in ids:  # what a processor does next: a new epoch, then commits
            producer = clients.producer(
                connection,
                **{
                    "transactional.id": transactional_id,
                    "logger": quiet,
                },
            )
            producer.init_transactions(60)
            producer.begin_transaction()
            for partition in range(3):
                producer.produce(topic, b"after", partition=partition)
            producer.commit_transaction(30)

        seen = _committed(connection, topic)
        seen.pop("after", None)
        assert sorted(n for n, parts in seen.items() if len(parts) != 3) == [], "partly committed"
        assert sorted(acknowledged - set(seen)) == [], "acknowledged, then lost"
