"""A batch that writes no record makes no transaction on the broker; its positions are owed to the
next one that writes, or committed alone once owed for OWED_COMMIT_S, and the state it changed
goes with them. On the real broker, with the order process manager: an OrderPlaced changes only
its state, and the end it writes comes back to it on the orders topic and changes nothing there.
Every transactional call the processor makes is recorded on its way through.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
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
from tests.helpers import Topics, events_on, eventually, lag, publish_events, read_topic

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


@dataclass
class Manager:
    """A process manager instance running on its own thread."""

    processor: TransactionalProcessor[Settlement]
    transactions: _Transactions
    clock: _Clock
    thread: threading.Thread

    def stop(self) -> None:
        self.processor.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the processor did not stop"


@pytest.fixture
def start(cluster: Cluster, topics: Topics, unique: str) -> Iterator[Callable[[str], Manager]]:
    """Start a process manager instance (each its own transactional id) on the test's topics;
    every one started is stopped at the end."""
    running: list[Manager] = []

    def started(instance: str) -> Manager:
        settings = OrderSettings.model_validate(
            {**topics.env(cluster), "instance_id": f"{unique}-{instance}"}
        )
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
        running.append(Manager(processor, transactions, clock, thread))
        return running[-1]

    yield started
    for manager in running:
        manager.stop()


@pytest.fixture
def manager(start: Callable[[str], Manager]) -> Manager:
    return start("a")


def test_an_end_read_back_commits_nothing_until_its_position_is_owed_long_enough(
    manager: Manager,
    cluster: Cluster,
    topics: Topics,
) -> None:
    (producer,) = manager.transactions.recorded
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

    manager.clock.now = OWED_COMMIT_S  # owed long enough: committed in a transaction of its own
    eventually(
        lambda: lag(cluster.connection, group, [topics.orders, topics.payments]) == 0,
        30,
        "the owed position to be committed",
    )
    alone = [t for t in producer.transactions if t.committed and t.positions and not t.produced]
    assert len(alone) == 1
    assert {topic for topic, _ in alone[0].positions or {}} == {topics.orders}


def _held(processor: TransactionalProcessor[Settlement], key: str) -> Callable[[], bool]:
    """Whether the processor holds `key`'s state unwritten (read from the test's thread: a
    dict lookup, atomic under the GIL)."""
    state = processor.state
    assert state is not None, "the process manager keeps state"
    return lambda: key in state.unwritten


def test_an_order_placed_changes_only_state_which_waits_for_its_position_to_be_committed(
    manager: Manager, cluster: Cluster, topics: Topics
) -> None:
    processor, clock = manager.processor, manager.clock
    (producer,) = manager.transactions.recorded
    order = placed_now()
    publish_events(cluster, topics, order)
    key = str(order.order_id)
    eventually(_held(processor, key), 30, "the process manager to take the order")

    committed = [t for t in producer.transactions if t.committed]  # not the sweep, aborted
    assert not [t for t in committed if t.produced or t.positions is not None]
    changelog = topics.names.state_topic(PROCESS_MANAGER)
    assert changelog is not None
    assert read_topic(cluster.connection, changelog) == [], "the state went to the broker alone"
    group = topics.group(PROCESS_MANAGER.name)
    assert lag(cluster.connection, group, [topics.orders]) == 1, "its position was committed"

    clock.now = OWED_COMMIT_S  # owed long enough: the state and the position, together
    eventually(
        lambda: lag(cluster.connection, group, [topics.orders]) == 0,
        30,
        "the owed position to be committed",
    )
    (written,) = [t for t in producer.transactions if t.committed and t.produced]
    assert written.produced == [changelog]
    assert {topic for topic, _ in written.positions or {}} == {topics.orders}
    ((stored_key, value),) = read_topic(cluster.connection, changelog)
    assert stored_key == key and value is not None
    assert json.loads(value)["status"] == "PLACED"
    assert not _held(processor, key)()


def test_state_left_unwritten_goes_in_the_next_transaction_that_writes(
    manager: Manager, cluster: Cluster, topics: Topics
) -> None:
    """The payment outcome's transaction carries the order's state: its last value only."""
    processor = manager.processor
    (producer,) = manager.transactions.recorded
    order = placed_now()
    publish_events(cluster, topics, order)
    eventually(_held(processor, str(order.order_id)), 30, "the process manager to take the order")
    publish_events(cluster, topics, outcome_for(order.order_id, authorized=True))

    changelog = topics.names.state_topic(PROCESS_MANAGER)
    assert changelog is not None
    records = eventually(
        lambda: read_topic(cluster.connection, changelog), 30, "the state to be written"
    )
    assert [(k, json.loads(v or b"{}")["status"]) for k, v in records] == [
        (str(order.order_id), "CONFIRMED")
    ]
    (written,) = [t for t in producer.transactions if t.committed and t.produced]
    assert sorted(set(written.produced)) == sorted({topics.orders, changelog})
    assert {topic for topic, _ in written.positions or {}} == {topics.orders, topics.payments}
    assert [type(e) for e in events_on(cluster, topics, topics.orders)][1:] == [OrderConfirmed]


def test_an_instance_that_stops_with_state_unwritten_leaves_its_records_to_be_read_again(
    start: Callable[[str], Manager], cluster: Cluster, topics: Topics
) -> None:
    """State and positions are lost together: whoever takes over decides the order again from
    its OrderPlaced, and the order ends once."""
    first = start("first")
    order = placed_now()
    publish_events(cluster, topics, order)
    eventually(_held(first.processor, str(order.order_id)), 30, "the first to take the order")
    first.stop()

    successor = start("successor").processor
    publish_events(cluster, topics, outcome_for(order.order_id, authorized=True))

    def ends() -> list[object]:
        return [e for e in events_on(cluster, topics, topics.orders) if type(e) is OrderConfirmed]

    assert len(eventually(ends, 30, "the order to be confirmed")) == 1
    assert successor.state is not None and str(order.order_id) in successor.state.values
