"""The order process manager: payment outcomes in, order outcomes out, in Kafka transactions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from golive_contracts.envelope import event_id_for
from golive_contracts.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    PaymentAuthorized,
    PaymentDeclined,
)
from golive_order.bootstrap import process_manager_app
from golive_order.settings import OrderSettings
from golive_platform.testing import Cluster

from tests.conftest import Topics, make_topics
from tests.factories import payment_outcome
from tests.helpers import eventually
from tests.integration.test_payment import events_on, publisher

pytestmark = pytest.mark.integration


@pytest.fixture
def manager(cluster: Cluster, topics: Topics, unique: str) -> Iterator[TestClient]:
    settings = OrderSettings.model_validate({**topics.env(cluster), "instance_id": unique})
    with TestClient(process_manager_app(settings)) as client:
        eventually(
            lambda: client.get("/readyz").status_code == 200, 30, "the process manager to be ready"
        )
        yield client


def _outcome(authorized: bool) -> PaymentAuthorized | PaymentDeclined:
    return payment_outcome(uuid.uuid4(), authorized, reason="expired_card", amount_minor=100)


def test_outcomes_become_confirmed_or_cancelled(
    manager: TestClient, cluster: Cluster, topics: Topics
) -> None:
    paid, refused = _outcome(True), _outcome(False)
    producer = publisher(cluster, topics)
    for event in (paid, refused):
        producer.publish_sync(event, key=str(event.order_id))
    producer.close()

    def outcomes() -> list[Event] | None:
        found = events_on(cluster, topics, topics.orders)
        return found if len(found) >= 2 else None

    found = eventually(outcomes, 30, "two order outcomes")
    by_order = {str(e.order_id): e for e in found}  # type: ignore[attr-defined]
    confirmed, cancelled = by_order[str(paid.order_id)], by_order[str(refused.order_id)]
    assert isinstance(confirmed, OrderConfirmed)
    assert confirmed.envelope.event_id == event_id_for(
        str(paid.envelope.event_id), "OrderConfirmed"
    )
    assert confirmed.envelope.correlation_id == str(paid.order_id)
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.reason == "payment_declined:expired_card"


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
