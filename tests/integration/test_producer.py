"""The order API's producer after a fatal error, on the real broker: the publish it hits fails as
unacknowledged (503 and a retry with the same key, never a 500), and the next one goes through a
new producer and lands.

A fatal error cannot be provoked on demand from Python, so the first producer is one that is
fatal from its first produce on, as librdkafka's is after one (every produce raises _FATAL).
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from golive_eventing import clients
from golive_eventing.producer import DeliveryFailedError, EventProducer
from golive_eventing.serde import EventSerde
from golive_eventing.settings import KafkaSettings
from golive_platform.testing import Cluster

from tests.factories import order_placed
from tests.helpers import Topics, read_topic

pytestmark = pytest.mark.integration


class _Fatal(Producer):
    def produce(self, *args: Any, **kwargs: Any) -> None:
        raise KafkaException(KafkaError(KafkaError._FATAL, "injected: fatal", fatal=True))


class _FirstFatal(EventProducer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.made: list[Producer] = []
        super().__init__(*args, **kwargs)

    def _new_producer(self) -> Producer:
        config = clients.kafka_config(self.settings)
        made = _Fatal(config) if not self.made else super()._new_producer()
        self.made.append(made)
        return made


def test_a_fatal_producer_is_replaced_and_the_next_publish_lands(
    cluster: Cluster, topics: Topics
) -> None:
    settings = KafkaSettings.model_validate(topics.env(cluster))
    serde = EventSerde(clients.registry(cluster.connection), topics.as_map())
    producer = _FirstFatal(settings, serde, client_id="test-fatal")
    refused, accepted = order_placed(), order_placed()
    try:
        with pytest.raises(DeliveryFailedError, match="fatal"):
            producer.publish_sync(refused, key=str(refused.order_id))
        delivered = producer.publish_sync(accepted, key=str(accepted.order_id))
    finally:
        producer.close()

    assert len(producer.made) == 2, "the fatal producer was not replaced"
    assert delivered.topic == topics.orders
    landed = [
        serde.deserialize(value) for _, value in read_topic(cluster.connection, topics.orders)
    ]
    assert [e.envelope.event_id for e in landed] == [accepted.envelope.event_id]
