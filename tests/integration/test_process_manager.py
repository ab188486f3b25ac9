"""The order process manager on the real broker: every journey ends, once, deadline included."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Message
from fastapi.testclient import TestClient
from golive_contracts.envelope import event_id_for
from golive_contracts.events import (
    JOURNEY_ENDS,
    Event,
    OrderCancelled,
    OrderConfirmed,
)
from golive_contracts.topology import ORDER_PROCESS_MANAGER
from golive_eventing import clients
from golive_eventing.producer import produce_bounded, record_headers
from golive_eventing.serde import EventSerde
from golive_order.bootstrap import process_manager_app
from golive_order.settings import OrderSettings
from golive_platform.testing import Cluster

from tests.factories import outcome_for, placed_now
from tests.helpers import (
    Topics,
    create_topic,
    events_on,
    eventually,
    lag,
    make_topics,
    publish_events,
)

pytestmark = pytest.mark.integration

PROCESS_MANAGER = ORDER_PROCESS_MANAGER.name


PAYMENT_TIMEOUT_S = 3.0


@pytest.fixture
def manager(
    request: pytest.FixtureRequest, cluster: Cluster, topics: Topics, unique: str
) -> Iterator[TestClient]:
    timeout_s = getattr(request, "param", PAYMENT_TIMEOUT_S)
    settings = OrderSettings.model_validate(
        {**topics.env(cluster), "instance_id": unique, "payment_timeout_s": timeout_s}
    )
    with TestClient(process_manager_app(settings)) as client:
        eventually(
            lambda: client.get("/readyz").status_code == 200, 30, "the process manager to be ready"
        )
        yield client


def _terminal(cluster: Cluster, topics: Topics) -> dict[str, list[Event]]:
    by_order: dict[str, list[Event]] = {}
    for event in events_on(cluster, topics, topics.orders):
        if isinstance(event, JOURNEY_ENDS):
            by_order.setdefault(str(event.order_id), []).append(event)
    return by_order


def _wait_terminal(cluster: Cluster, topics: Topics, count: int) -> dict[str, list[Event]]:
    def enough() -> dict[str, list[Event]] | None:
        found = _terminal(cluster, topics)
        return found if len(found) >= count else None

    return eventually(enough, 30, f"{count} orders to end")


def test_outcomes_confirm_or_cancel_even_when_they_come_first(
    manager: TestClient, cluster: Cluster, topics: Topics
) -> None:
    paid, refused, early = placed_now(), placed_now(), placed_now()
    paid_outcome, refused_outcome = (
        outcome_for(paid.order_id, True),
        outcome_for(refused.order_id, False),
    )
    early_outcome = outcome_for(early.order_id, True)
    # The two topics are read independently: an outcome may be seen before its OrderPlaced.
    publish_events(cluster, topics, early_outcome, paid, refused, paid_outcome, refused_outcome)
    publish_events(cluster, topics, early)

    by_order = _wait_terminal(cluster, topics, 3)
    [confirmed] = by_order[str(paid.order_id)]
    assert isinstance(confirmed, OrderConfirmed)
    assert confirmed.envelope.event_id == event_id_for(
        str(paid_outcome.envelope.event_id), "OrderConfirmed"
    )
    assert confirmed.envelope.correlation_id == str(paid.order_id)
    [cancelled] = by_order[str(refused.order_id)]
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.reason == "payment_declined:expired_card"
    [late_order_placed] = by_order[str(early.order_id)]
    assert isinstance(late_order_placed, OrderConfirmed)


def test_no_outcome_by_the_deadline_cancels_and_late_outcomes_change_nothing(
    manager: TestClient, cluster: Cluster, topics: Topics
) -> None:
    forgotten, settled = placed_now(), placed_now()
    publish_events(cluster, topics, forgotten, settled, outcome_for(settled.order_id, True))

    by_order = _wait_terminal(cluster, topics, 2)
    [expired] = by_order[str(forgotten.order_id)]
    assert isinstance(expired, OrderCancelled)
    assert expired.reason == "payment_timeout"
    # A late authorisation and a repeated outcome: neither reopens nor re-ends a journey.
    publish_events(
        cluster, topics, outcome_for(forgotten.order_id, True), outcome_for(settled.order_id, False)
    )
    eventually(
        lambda: lag(cluster.connection, topics.group(PROCESS_MANAGER), [topics.payments]) == 0,
        20,
        "the process manager to read the late outcomes",
    )
    by_order = _terminal(cluster, topics)
    assert [type(e) for e in by_order[str(forgotten.order_id)]] == [OrderCancelled]
    assert [type(e) for e in by_order[str(settled.order_id)]] == [OrderConfirmed]


REBALANCE_TIMEOUT_S = 10.0


@pytest.mark.parametrize("manager", [REBALANCE_TIMEOUT_S], indirect=True)
def test_a_rebalance_after_an_order_was_read_does_not_stop_its_timer(
    manager: TestClient, cluster: Cluster, topics: Topics, unique: str
) -> None:
    """Another member joins the group and leaves: every partition is revoked and assigned again,
    and the manager resumes at its committed offsets with nothing new to read. Its timers must
    still fire: a partition it has read to the end is caught up, not behind."""
    forgotten = placed_now()
    published = time.time()  # its log time is later: the deadline is later than published + timeout
    publish_events(cluster, topics, forgotten)
    eventually(
        lambda: lag(cluster.connection, topics.group(PROCESS_MANAGER), [topics.orders]) == 0,
        20,
        "the process manager to commit past the order",
    )
    elsewhere = f"rebalance.{unique}"
    create_topic(cluster.connection, elsewhere)
    joiner = clients.consumer(
        cluster.connection,
        **{
            "group.id": topics.group(PROCESS_MANAGER),
            "partition.assignment.strategy": "range",
        },
    )
    joiner.subscribe([elsewhere])

    def joined() -> bool:
        joiner.poll(0.1)
        return bool(joiner.assignment())

    eventually(joined, 30, "the joiner to be given a partition (the group rebalanced)")
    joiner.close()  # and a second rebalance as it leaves
    assert time.time() < published + REBALANCE_TIMEOUT_S, (
        "the rebalance ended after the deadline: the test proves nothing; raise its timeout"
    )
    by_order = _wait_terminal(cluster, topics, 1)
    [expired] = by_order[str(forgotten.order_id)]
    assert isinstance(expired, OrderCancelled)
    assert expired.reason == "payment_timeout"


def test_an_outcome_in_a_transaction_open_at_the_deadline_holds_the_timer(
    manager: TestClient, cluster: Cluster, topics: Topics, unique: str
) -> None:
    """A read_committed consumer reaches a partition's end at the first record of an open
    transaction. The payment service authorised this order before its deadline, in a
    transaction still open when the deadline passes: the order waits for the transaction and is
    confirmed, not cancelled for a payment it was given in time."""
    held = placed_now()
    outcome = outcome_for(held.order_id, True)
    # Everything slow before the clock starts: the payment must be logged well before the deadline.
    serde = EventSerde(clients.registry(cluster.connection), topics.as_map())
    value = serde.serialize(outcome)
    payment = clients.producer(
        cluster.connection,
        **{
            "partitioner": "murmur2_random",
            "transactional.id": f"open-payment-{unique}",
        },
    )
    payment.init_transactions(30)
    payment.begin_transaction()
    try:
        published = time.time()
        [partition] = {d.partition for d in publish_events(cluster, topics, held)}
        delivered: list[Message] = []
        produce_bounded(
            payment,
            topic=topics.payments,
            key=outcome.envelope.correlation_id.encode(),
            value=value,
            headers=record_headers(outcome),
            on_delivery=lambda err, msg: delivered.append(msg),
        )
        payment.flush(10)
        [logged] = delivered
        assert logged.error() is None and logged.partition() == partition  # co-partitioned
        assert logged.timestamp()[1] / 1000 < published + PAYMENT_TIMEOUT_S, (
            "logged after the deadline"
        )

        # An order on another partition, placed later: once its timer fired, the held one's had to.
        control = placed_now()
        other = clients.producer(cluster.connection)
        produce_bounded(
            other,
            topic=topics.orders,
            key=str(control.order_id).encode(),
            value=serde.serialize(control),
            headers=record_headers(control),
            partition=(partition + 1) % 3,
        )
        assert other.flush(10) == 0

        def control_ended() -> dict[str, list[Event]] | None:
            found = _terminal(cluster, topics)
            return found if str(control.order_id) in found else None

        by_order = eventually(control_ended, 30, "the order on the other partition to time out")
        assert [type(e) for e in by_order[str(control.order_id)]] == [OrderCancelled]
        assert str(held.order_id) not in by_order, "cancelled while its payment was in flight"
        payment.commit_transaction(30)
    except BaseException:
        payment.abort_transaction(30)  # or it holds its partition for transaction.timeout.ms
        raise
    by_order = _wait_terminal(cluster, topics, 2)
    assert [type(e) for e in by_order[str(held.order_id)]] == [OrderConfirmed]


def test_an_instance_holding_no_partition_is_still_ready(cluster: Cluster, unique: str) -> None:
    """Two instances, one partition: the idle one joined its group, so it is ready, not stuck."""
    topics = make_topics(cluster, f"idle{unique}", partitions=1)
    apps = [
        process_manager_app(
            OrderSettings.model_validate({**topics.env(cluster), "instance_id": f"{unique}-{i}"})
        )
        for i in (1, 2)
    ]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:

        def both_ready() -> bool:
            return all(c.get("/readyz").status_code == 200 for c in (first, second))

        eventually(both_ready, 30, "both instances to be ready")
        assert first.get("/readyz").json()["checks"]["consumer"] is True
        assert second.get("/readyz").json()["checks"]["consumer"] is True
