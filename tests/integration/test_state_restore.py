"""A processor's state restored from its changelog, on the real broker: read to the log's end,
open transactions included, never to the last stable offset alone."""

from __future__ import annotations

import threading
import uuid

import pytest
from confluent_kafka import Producer
from golive_eventing import clients
from golive_eventing.settings import KafkaSettings
from golive_eventing.state import KeyedState, StateRestoreError
from golive_platform.testing import Cluster

from tests.helpers import create_topic

pytestmark = pytest.mark.integration


def _changelog(cluster: Cluster) -> tuple[KeyedState, Producer]:
    """A changelog of one partition holding one committed key, and a transactional producer on
    it (its transactional id fresh, so nothing of an earlier run is aborted or fenced)."""
    topic = f"orders.{uuid.uuid4().hex[:12]}.group.state"
    create_topic(cluster.connection, topic, configs={"cleanup.policy": "compact"})
    producer = clients.producer(
        cluster.connection,
        **{
            "transactional.id": f"restore-test-{uuid.uuid4()}",
        },
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"committed", value=b'{"v": 1, "status": "PLACED"}', partition=0)
    producer.commit_transaction(30)
    settings = KafkaSettings.exactly(**dict(cluster.connection))
    return KeyedState(settings, topic, "group"), producer


def test_a_transaction_open_at_the_start_is_waited_for(cluster: Cluster) -> None:
    """What an open transaction holds may yet commit: the restore ends only once it has, and
    then knows its keys (a restore that stopped at the last stable offset decided them twice)."""
    state, producer = _changelog(cluster)
    producer.begin_transaction()
    producer.produce(
        state.topic, key=b"pending", value=b'{"v": 1, "status": "PLACED"}', partition=0
    )
    assert producer.flush(10) == 0  # in the log, inside a transaction still open

    restored = threading.Event()

    def restore() -> None:
        state.restore([0])
        restored.set()

    restoring = threading.Thread(target=restore)
    restoring.start()
    try:
        assert not restored.wait(3), "the restore ended while a transaction was open"
        producer.commit_transaction(30)
        assert restored.wait(30), "the restore did not end once the transaction committed"
    finally:
        restoring.join(60)
    assert set(state.values) == {"committed", "pending"}


def test_a_transaction_that_stays_open_fails_the_restore_naming_it(cluster: Cluster) -> None:
    state, producer = _changelog(cluster)
    producer.begin_transaction()
    producer.produce(state.topic, key=b"hanging", value=b'{"v": 1}', partition=0)
    assert producer.flush(10) == 0
    try:
        with pytest.raises(
            StateRestoreError, match=r"0 \(a transaction open from offset 2, end 3\)"
        ):
            state.restore([0], timeout_s=3)
    finally:
        producer.abort_transaction(30)
