"""OrderPlaced v1 records on the topic (the registry's v1 id, v1's bytes), read by today's services:
the order read model, payment (processor and read model), the process manager and the recorder."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema
from fastapi.testclient import TestClient
from golive_audit.bootstrap import audit_app
from golive_audit.settings import AuditSettings
from golive_contracts.avro import subject_for
from golive_contracts.events import OrderPlaced
from golive_contracts.scopes import Scope
from golive_eventing import clients
from golive_order.bootstrap import order_app, process_manager_app
from golive_order.settings import OrderSettings
from golive_payment.bootstrap import payment_app, slot_app
from golive_payment.settings import PaymentSettings
from golive_platform.testing import Cluster

from tests.factories import order_placed
from tests.helpers import Topics, eventually, issuer
from tests.upcasting import encode_v1, fixture_bytes, read_as_current, v1_schema_text

pytestmark = pytest.mark.integration


def _ready(client: TestClient) -> bool:
    return client.get("/readyz").status_code == 200


@pytest.fixture
def services(
    cluster: Cluster, topics: Topics, tmp_path: Path, unique: str
) -> Iterator[dict[str, TestClient]]:
    """The four services of today's build on this test's topics, each on its own SQLite file."""
    env = {**topics.env(cluster), "instance_id": unique}
    apps = {
        "order": order_app(
            OrderSettings.model_validate(
                {**env, "order_database_url": f"sqlite:///{tmp_path / 'order.db'}"}
            )
        ),
        "manager": process_manager_app(OrderSettings.model_validate(env)),
        "payment": payment_app(
            PaymentSettings.model_validate(
                {**env, "payment_database_url": f"sqlite:///{tmp_path / 'payment.db'}"}
            )
        ),
        "payment-blue": slot_app(PaymentSettings.model_validate(env)),
        "audit": audit_app(
            AuditSettings.model_validate(
                {**env, "audit_database_url": f"sqlite:///{tmp_path / 'audit.db'}"}
            )
        ),
    }
    with ExitStack() as stack:
        # Every scope but audit:pii: a read of personal data would join the timeline below.
        headers = issuer().headers(*(s for s in Scope if s is not Scope.READ_PERSONAL_DATA))
        clients = {
            name: stack.enter_context(TestClient(app, headers=headers))
            for name, app in apps.items()
        }
        for name, client in clients.items():
            eventually(partial(_ready, client), 30, f"{name} to be ready")
        yield clients


def test_v1_records_on_the_topic_flow_through_every_service(
    services: dict[str, TestClient], cluster: Cluster, topics: Topics
) -> None:
    registry = clients.registry(cluster.connection)
    subject = subject_for(topics.orders, OrderPlaced)
    v1 = registry.lookup_schema(subject, Schema(v1_schema_text(), "AVRO"))
    assert v1.version == 1 and v1.schema_id is not None
    header = struct.pack(">bI", 0, v1.schema_id)

    from_fixture = read_as_current(fixture_bytes())
    declined = order_placed(card="tok_visa_0002")
    producer = clients.producer(cluster.connection)
    for event, body in ((from_fixture, fixture_bytes()), (declined, encode_v1(declined))):
        producer.produce(topics.orders, key=str(event.order_id), value=header + body)
    assert producer.flush(10) == 0

    def status(order_id: Any) -> str | None:
        found = services["order"].get(f"/orders/{order_id}")
        return found.json()["status"] if found.status_code == 200 else None

    def settled() -> bool:
        return (status(from_fixture.order_id), status(declined.order_id)) == (
            "CONFIRMED",
            "CANCELLED",
        )

    eventually(settled, 30, "both v1 orders to reach their outcome in the order read model")
    payment = services["payment"].get(f"/payments/{from_fixture.order_id}").json()
    assert (payment["status"], payment["amount_minor"]) == ("AUTHORIZED", from_fixture.total_minor)
    assert services["payment"].get(f"/payments/{declined.order_id}").json()["status"] == "DECLINED"

    def timeline() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = (
            services["audit"].get(f"/orders/{from_fixture.order_id}/timeline").json()
        )
        return found if len(found) >= 3 else None

    recorded = eventually(timeline, 30, "the recorder's timeline of the v1 order")
    assert [r["event_type"] for r in recorded] == [
        "OrderPlaced",
        "PaymentAuthorized",
        "OrderConfirmed",
    ]
    placed = recorded[0]
    assert placed["payload"]["channel"] == "api"  # read as v2: the default fills v1's gap
    assert placed["decode_error"] is None
