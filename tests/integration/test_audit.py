"""The recorder keeps every record of every topic, dead letters and poison included, raw and decoded."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from golive_audit.bootstrap import audit_app
from golive_audit.settings import AuditSettings
from golive_contracts.topology import dlq_topic
from golive_eventing import clients
from golive_platform.testing import Cluster

from tests.factories import order_placed
from tests.helpers import Topics, eventually, publisher

pytestmark = pytest.mark.integration


@pytest.fixture
def audit(cluster: Cluster, topics: Topics, database_url: str) -> Iterator[TestClient]:
    settings = AuditSettings.model_validate(
        # An unknown schema id is recorded as undecodable after 1 s here, not 30 (serde.py).
        {**topics.env(cluster), "audit_database_url": database_url, "unknown_schema_grace_s": 1}
    )
    with TestClient(audit_app(settings)) as client:
        eventually(lambda: client.get("/readyz").status_code == 200, 30, "audit to be ready")
        yield client


def test_recorder_keeps_events_poison_and_dead_letters(
    audit: TestClient, cluster: Cluster, topics: Topics
) -> None:
    first, second = order_placed(), order_placed(card="tok_visa_0002")
    producer = publisher(cluster, topics)
    for event in (first, second):
        producer.publish_sync(event, key=str(event.order_id))
    producer.close()
    raw = clients.producer(cluster.connection)
    raw.produce(topics.orders, key=b"poison-key", value=b"not avro at all")
    raw.produce(
        dlq_topic(topics.orders, "payment"),
        key=str(first.order_id).encode(),
        value=b"\x00dead",
        headers=[("dlq.error", b"boom")],
    )
    assert raw.flush(10) == 0

    def recorded() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = audit.get("/events", params={"limit": 1000}).json()["items"]
        return items if len(items) >= 4 else None

    items = eventually(recorded, 30, "four recorded records")
    assert len(items) == 4
    decoded = [i for i in items if i["event_type"] == "OrderPlaced"]
    assert {i["payload"]["order_id"] for i in decoded} == {
        str(first.order_id),
        str(second.order_id),
    }
    assert all(i["decode_error"] is None and i["raw_base64"] for i in decoded)

    poison = next(i for i in items if i["key"] == "poison-key")
    assert "magic byte" in poison["decode_error"]
    assert base64.b64decode(poison["raw_base64"]) == b"not avro at all"
    assert poison["payload"] is None

    dead = next(i for i in items if i["topic"] == dlq_topic(topics.orders, "payment"))
    assert ["dlq.error", "boom"] in dead["headers"]

    # Filters: type, key, correlation id, and a time window that excludes everything.
    assert len(audit.get("/events", params={"type": "OrderPlaced"}).json()["items"]) == 2
    assert len(audit.get("/events", params={"key": "poison-key"}).json()["items"]) == 1
    by_journey = audit.get("/events", params={"correlation_id": str(second.order_id)}).json()[
        "items"
    ]
    assert [i["event_type"] for i in by_journey] == ["OrderPlaced"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert audit.get("/events", params={"from": future}).json()["items"] == []
    assert audit.get("/events", params={"from": future, "to": future}).status_code == 422
    page = audit.get("/events", params={"limit": 3}).json()
    rest = audit.get("/events", params={"limit": 3, "cursor": page["next_cursor"]}).json()
    assert len(page["items"]) + len(rest["items"]) == 4
    # A dead letter keyed by the order belongs to its journey, even when it cannot be decoded.
    timeline = audit.get(f"/orders/{first.order_id}/timeline").json()
    assert [(i["topic"], i["event_type"]) for i in timeline] == [
        (topics.orders, "OrderPlaced"),
        (dlq_topic(topics.orders, "payment"), None),
    ]
