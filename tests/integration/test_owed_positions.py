"""A batch that changes nothing makes no transaction on the broker; its positions are owed to the
next one that writes, or committed alone once owed for OWED_COMMIT_S. On the real broker, with
the order process manager: the end it writes comes back to it on the orders topic, and changes
nothing there. Every transactional call the processor makes is recorded on its way through.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import pytest
from confluent_kafka import Producer, TopicPartition
from golive_contracts.events import OrderConfirmed
from golive_contracts.topology import ORDER_PROCESS_MANAGER as PROCESS_MANAGER
from golive_eventing.app import make_serde
from golive_eventing.processor import OWED_COMMIT_S, TransactionalProcessor
from golive_eventing.records import Owed
from golive_eventing.recovery import Transactions
from golive_order.domain.settlement import Settlement
from golive_order.entrypoints.consumers import SettleOrders
from golive_order.settings import OrderSettings
from golive_platform.testing import Cluster

from tests.factories import outcome_for, placed_now
from tests.helpers import Topics, events_on, eventually, lag, publish_events

pytestmark = pytest.mark.integration


@dataclass
class _Transaction:
    produced: list[str] = field(default_factory=list)  # the topics it wrote to
    positions: dict[tuple[str, int], int] | None = None  # what it sent as consumed
    committed: bool = False


class _Recorded:
    """The processor's own transactional producer, every transaction it makes noted."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.transactions: list[_Transaction] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.producer, name)

    def begin_transaction(self, *args: Any) -> None:
        self.producer.begin_transaction(*args)
        self.transactions.append(_Transaction())

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self.producer.produce(*args, **kwargs)
        self.transactions[-1].produced.append(kwargs.get("topic", args[0] if args else ""))

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], *args: Any, **kwargs: Any
    ) -> None:
        self.producer.send_offsets_to_transaction(positions, *args, **kwargs)
        self.transactions[-1].positions = {(p.topic, p.partition): p.offset for p in positions}

    def commit_transaction(self, *args: Any) -> None:
        self.producer.commit_transaction(*args)
        self.transactions[-1].committed = True


class _Transactions(Transactions):
    def __init__(self, settings: OrderSettings) -> None:
        self.recorded: list[_Recorded] = []
        super().__init__(settings, PROCESS_MANAGER.name, settings.instance_id)

    def _new_producer(self) -> Producer:
        self.recorded.append(_Recorded(super()._new_producer()))
        return cast(Producer, self.recorded[-1])  # it answers to every call the processor makes


@dataclass
class _Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def manager(
    cluster: Cluster, topics: Topics, unique: str
) -> Iterator[tuple[TransactionalProcessor[Settlement], _Transactions, _Clock]]:
    settings = OrderSettings.model_validate({**topics.env(cluster), "instance_id": unique})
    transactions = _Transactions(settings)
    processor = TransactionalProcessor(
        settings,
        make_serde(settings),
        PROCESS_MANAGER,
        SettleOrders(settings.version, timedelta(seconds=300)),
        settings.instance_id,
        transactions=transactions,
    )
    clock = _Clock()
    processor.owed = Owed(clock)  # owed positions fall due when the test says
    thread = threading.Thread(target=processor.run, name="processor", daemon=True)
    thread.start()
    yield processor, transactions, clock
    processor.stop()
    thread.join(30)
    assert not thread.is_alive(), "the processor did not stop"


def test_an_end_read_back_commits_nothing_until_its_position_is_owed_long_enough(
    manager: tuple[TransactionalProcessor[Settlement], _Transactions, _Clock],
    cluster: Cluster,
    topics: Topics,
) -> None:
    _, transactions, clock = manager
    (producer,) = transactions.recorded
    order = placed_now()
    publish_events(cluster, topics, order, outcome_for(order.order_id, authorized=True))
    group = topics.group(PROCESS_MANAGER.name)

    def ended() -> bool:
        return any(isinstance(e, OrderConfirmed) for e in events_on(cluster, topics, topics.orders))

    eventually(ended, 30, "the order to be confirmed")
    # Its end comes back on the orders topic: a transaction with nothing in it, ended locally.
    empty = eventually(
        lambda: [t for t in producer.transactions if t.committed and not t.produced],
        30,
        "the process manager to read its end back",
    )
    assert empty[0].positions is None, "a batch that changed nothing committed its positions"
    writing = [t for t in producer.transactions if t.produced]
    assert writing and all(t.positions is not None for t in writing)
    assert lag(cluster.connection, group, [topics.orders]) > 0, "the end's position was committed"

    clock.now = OWED_COMMIT_S  # owed long enough: committed in a transaction of its own
    eventually(
        lambda: lag(cluster.connection, group, [topics.orders, topics.payments]) == 0,
        30,
        "the owed position to be committed",
    )
    alone = [t for t in producer.transactions if t.committed and t.positions and not t.produced]
    assert len(alone) == 1
    assert {topic for topic, _ in alone[0].positions or {}} == {topics.orders}
