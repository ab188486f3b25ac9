"""After the broker went away, a processor's producer commits nothing more: it is replaced, and the
new one's sweep settles, as aborted, what the old one left, before anything else commits.

An idle processor learns of a broker restart only when it polls its producer (librdkafka serves
the error then); a commit straight after would settle the old producer's markerless records
committed where the sweep settles them aborted (docs/reliability.md, "A broker stopped
mid-commit"). Real broker of the test's own, stopped and started.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_eventing.errors import RetryBatchError
from golive_eventing.producer import produce_bounded
from golive_eventing.recovery import SWEEP_KEY, Transactions
from golive_eventing.settings import KafkaSettings

from tests.helpers import create_topic, eventually
from tests.instances import Broker

pytestmark = pytest.mark.reliability

COORDINATOR_NOT_YET = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._TIMED_OUT,
}


def _committed(connection: Connection, topic: str) -> list[bytes | None]:
    """Every committed record's key on the topic's one partition, read to its end."""
    consumer = clients.consumer(
        connection,
        **{
            "group.id": f"sweep-reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        },
    )
    keys: list[bytes | None] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        while True:
            message = consumer.poll(30)
            assert message is not None, f"{topic} not read to its end in 30 s"
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                return keys
            assert error is None, error
            keys.append(message.key())
    finally:
        consumer.close()


def _coordinated(group: Consumer, read: TopicPartition) -> list[int] | None:
    """The group's committed offsets, or None while its coordinator is not there yet."""
    try:
        return [position.offset for position in group.committed([read], timeout=10)]
    except KafkaException as exc:
        if exc.args[0].code() in COORDINATOR_NOT_YET:
            return None
        raise


def test_no_commit_after_the_broker_went_away_and_the_sweep_settles_every_partition_alike(
    own_broker: Broker,
) -> None:
    connection = own_broker.config.connection()
    unique = uuid.uuid4().hex[:8]
    inputs, outputs = f"sweep-in-{unique}", f"sweep-out-{unique}"
    create_topic(connection, inputs)
    create_topic(connection, outputs)
    settings = KafkaSettings.exactly(**dict(connection))
    transactions = Transactions(settings, f"sweep-{unique}", "0")
    group = clients.consumer(connection, **{"group.id": f"sweep-{unique}"})
    read = TopicPartition(inputs, 0)
    try:
        # A processor commits only once its group has joined, so its group coordinator is found
        # and loaded. This broker, new, may not be the coordinator yet (NOT_COORDINATOR while it
        # creates and loads __consumer_offsets): a send_offsets_to_transaction then has blocked
        # past its timeout for good (librdkafka issues 5456 and 5511; in a processor the
        # Watchdog ends the process). So wait for the coordinator first, as joining would.
        assert eventually(lambda: _coordinated(group, read), 60, "the group coordinator") == [
            OFFSET_INVALID
        ]
        # What a processor commits: its output and its input's offset, in one transaction.
        transactions.producer.begin_transaction()
        produce_bounded(transactions.producer, topic=outputs, key=b"before", value=b"1")
        transactions.producer.send_offsets_to_transaction(
            [TopicPartition(inputs, 0, 1)], group.consumer_group_metadata(), 10
        )
        transactions.commit()

        own_broker.stop()  # idle meanwhile: nothing polls the producer
        own_broker.start()

        transactions.producer.begin_transaction()
        produce_bounded(transactions.producer, topic=outputs, key=b"after", value=b"2")
        with pytest.raises(RetryBatchError, match="went away"):
            transactions.commit()
        transactions.failed(RetryBatchError("the broker went away"))
        assert transactions.broken

        transactions.replace(RetryBatchError("the broker went away"))
        staged = [TopicPartition(inputs, 0, 0)]  # as a processor stages them: discarded
        transactions.sweep([outputs], group.consumer_group_metadata(), staged)
        transactions.repaired()
        transactions.usable()  # the new producer may commit again

        committed = _committed(connection, outputs)
        position = group.committed([read], timeout=30)[0].offset
    finally:
        group.close()
    assert b"after" not in committed, "a transaction begun before the broker went away committed"
    assert SWEEP_KEY not in committed
    # The stop may have cost the first transaction its markers (Kafka drops those of a partition
    # it finds leaderless as the broker starts): then the sweep aborted it on both partitions,
    # and its input is read again. Either way, output and offset agree.
    agreeing = [([b"before"], 1), ([], OFFSET_INVALID)]
    assert (committed, position) in agreeing, (committed, position)
