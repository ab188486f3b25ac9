"""Payment on the real broker: OrderPlaced in, a decision out (transactionally), readable over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from fastapi.testclient import TestClient
from golive_contracts.events import Event, PaymentAuthorized, PaymentDeclined
from golive_contracts.scopes import Scope
from golive_payment.bootstrap import payment_app, slot_app
from golive_payment.settings import PaymentSettings
from golive_platform.testing import Cluster

from tests.factories import order_placed
from tests.helpers import Topics, events_on, eventually, issuer, publisher

pytestmark = pytest.mark.integration


def _ready(client: TestClient) -> bool:
    return client.get("/readyz").status_code == 200


@pytest.fixture
def payment(
    cluster: Cluster, topics: Topics, database_url: str, unique: str
) -> Iterator[TestClient]:
    settings = PaymentSettings.model_validate(
        {**topics.env(cluster), "payment_database_url": database_url, "instance_id": unique}
    )
    headers = issuer().headers(Scope.READ_PAYMENTS)
    # The router, read model and API; and the blue version slot, where the route sends orders.
    with (
        TestClient(payment_app(settings), headers=headers) as client,
        TestClient(slot_app(settings)) as blue,
    ):
        for app in (client, blue):
            eventually(partial(_ready, app), 30, "payment to be ready")
        yield client


def test_orders_are_decided_by_the_rules_once_each(
    payment: TestClient, cluster: Cluster, topics: Topics
) -> None:
    orders = {
        "tok_visa_4242": order_placed(card="tok_visa_4242"),
        "tok_visa_9995": order_placed(card="tok_visa_9995"),
        "over-limit": order_placed(card="tok_visa_4242", total_minor=2_000_000),
    }
    producer = publisher(cluster, topics)
    for event in orders.values():
        producer.publish_sync(event, key=str(event.order_id))
    producer.close()

    def decided() -> list[Event] | None:
        found = events_on(cluster, topics, topics.payments)
        return found if len(found) >= len(orders) else None

    by_order = {str(e.order_id): e for e in eventually(decided, 30, "three payment decisions")}  # type: ignore[attr-defined]
    assert len(by_order) == 3
    authorized = by_order[str(orders["tok_visa_4242"].order_id)]
    assert isinstance(authorized, PaymentAuthorized)
    assert authorized.amount_minor == 2500
    assert authorized.envelope.causation_id == str(orders["tok_visa_4242"].envelope.event_id)
    declined = by_order[str(orders["tok_visa_9995"].order_id)]
    assert isinstance(declined, PaymentDeclined)
    assert declined.reason == "insufficient_funds"
    assert (
        getattr(by_order[str(orders["over-limit"].order_id)], "reason", None) == "amount_over_limit"
    )

    order_id = str(orders["tok_visa_9995"].order_id)
    eventually(
        lambda: payment.get(f"/payments/{order_id}").status_code == 200,
        15,
        "the payment read model",
    )
    response = payment.get(f"/payments/{order_id}")
    assert response.json()["status"] == "DECLINED"
    assert response.json()["reason"] == "insufficient_funds"
    assert payment.get("/payments/00000000-0000-0000-0000-000000000000").status_code == 404
