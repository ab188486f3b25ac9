"""A transaction that fails in Kafka, on the real broker: the processor replaces its producer and
starts over from what is committed, so every journey still ends exactly once.

The failure is injected into commit_transaction (a broker restart makes it fail at random); the
broker, the transactions and the fencing are real. Two cases: the commit never reached the
broker (the transaction is left open), and the commit landed but the caller got an error (the
outcome is unknown to it: a retry on the same producer would do the batch twice).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from golive_contracts.events import JOURNEY_ENDS, OrderCancelled, OrderConfirmed
from golive_contracts.topology import ORDER_PROCESS_MANAGER as PROCESS_MANAGER
from golive_eventing.app import make_serde
from golive_eventing.processor import TransactionalProcessor
from golive_eventing.recovery import Transactions
from golive_order.domain.settlement import Settlement
from golive_order.entrypoints.consumers import SettleOrders
from golive_order.settings import OrderSettings
from golive_platform.testing import Cluster

from tests.factories import outcome_for, placed_now
from tests.helpers import Topics, events_on, eventually, lag, publish_events

pytestmark = pytest.mark.integration

ORDERS = 20


class _CommitFails:
    """The processor's own transactional producer, except that the first commit of a
    transaction that ends a journey (writes to `outputs`) raises a retriable KafkaError, after
    committing (`landed`) or without (the transaction stays open on the broker)."""

    def __init__(self, producer: Producer, outputs: str, landed: bool) -> None:
        self.producer = producer
        self.outputs = outputs
        self.landed = landed
        self.failed = False
        self.ending = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.producer, name)

    def begin_transaction(self, *args: Any) -> None:
        self.ending = False
        self.producer.begin_transaction(*args)

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self.ending |= kwargs.get("topic", args[0] if args else None) == self.outputs
        self.producer.produce(*args, **kwargs)

    def commit_transaction(self, *args: Any) -> None:
        if self.failed or not self.ending:
            self.producer.commit_transaction(*args)
            return
        self.failed = True
        if self.landed:
            self.producer.commit_transaction(*args)
        error = KafkaError(KafkaError.REQUEST_TIMED_OUT, "injected: commit outcome unknown")
        raise KafkaException(error)


class _Transactions(Transactions):
    """The process manager's transactional producers, the first one's first commit failing."""

    def __init__(self, settings: OrderSettings, landed: bool) -> None:
        self.landed = landed
        self.producers: list[Producer | _CommitFails] = []
        super().__init__(settings, PROCESS_MANAGER.name, settings.instance_id)

    def _new_producer(self) -> Producer:
        producer = super()._new_producer()
        if self.producers:
            self.producers.append(producer)
            return producer
        orders = self.settings.orders_topic
        failing = _CommitFails(producer, orders, self.landed)
        self.producers.append(failing)
        return cast(Producer, failing)  # it answers to every call the processor makes


class _Processor(TransactionalProcessor[Settlement]):
    """The order process manager, its first producer one whose first commit fails."""

    def __init__(self, settings: OrderSettings, landed: bool) -> None:
        self.failing = _Transactions(settings, landed)
        super().__init__(
            settings,
            make_serde(settings),
            PROCESS_MANAGER,
            SettleOrders(settings.version, timedelta(seconds=300)),
            settings.instance_id,
            transactions=self.failing,
        )

    @property
    def producers(self) -> list[Producer | _CommitFails]:
        return self.failing.producers


@pytest.fixture(params=[False, True], ids=["commit-lost", "commit-landed"])
def processor(
    request: pytest.FixtureRequest, cluster: Cluster, topics: Topics, unique: str
) -> Iterator[_Processor]:
    settings = OrderSettings.model_validate({**topics.env(cluster), "instance_id": unique})
    found = _Processor(settings, landed=request.param)
    thread = threading.Thread(target=found.run, name="processor", daemon=True)
    thread.start()
    yield found
    found.stop()
    thread.join(30)
    assert not thread.is_alive(), "the processor did not stop"
    found.producers.clear()  # the failed one too: its threads end with it


def test_a_failed_commit_replaces_the_producer_and_every_order_ends_once(
    processor: _Processor, cluster: Cluster, topics: Topics
) -> None:
    orders = [placed_now() for _ in range(ORDERS)]
    outcomes = [outcome_for(o.order_id, authorized=i % 2 == 0) for i, o in enumerate(orders)]
    publish_events(cluster, topics, *orders, *outcomes)

    def ended() -> list[OrderConfirmed | OrderCancelled] | None:
        found = [
            e for e in events_on(cluster, topics, topics.orders) if isinstance(e, JOURNEY_ENDS)
        ]
        return found if len({str(e.order_id) for e in found}) == ORDERS else None

    eventually(ended, 60, f"{ORDERS} orders to end")
    eventually(
        lambda: (
            lag(
                cluster.connection,
                topics.group(PROCESS_MANAGER.name),
                [topics.orders, topics.payments],
            )
            == 0
        ),
        30,
        "the process manager to commit past every record",
    )
    found = ended()
    assert found is not None
    ends = sorted(str(e.order_id) for e in found)
    assert ends == sorted(str(o.order_id) for o in orders), "an order ended twice, or not at all"
    confirmed = {str(e.order_id) for e in found if isinstance(e, OrderConfirmed)}
    assert confirmed == {str(o.order_id) for o in orders[::2]}
    assert len(processor.producers) == 2, "the failed producer was not replaced"
    assert isinstance(processor.producers[0], _CommitFails) and processor.producers[0].failed
