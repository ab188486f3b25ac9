"""The registry is a real Apicurio Registry on the Confluent-compatible API, and it never forgets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema
from golive_eventing import clients
from golive_platform import process
from golive_platform.testing import Cluster

from tests.instances import Registry, own_registry

pytestmark = pytest.mark.integration


def _avro(name: str) -> Schema:
    record = {
        "type": "record",
        "name": name,
        "namespace": "dev.golive.test",
        "fields": [
            {"name": "order_id", "type": "string"},
            {"name": "amount_minor", "type": "long"},
        ],
    }
    return Schema(json.dumps(record), "AVRO")


def test_register_and_read_back_through_confluent_client(cluster: Cluster, unique: str) -> None:
    client = clients.registry(cluster.connection)
    subject = f"test.registry.{unique}-value"
    schema_id = client.register_schema(subject, _avro(f"Registered{unique}"))

    by_id = client.get_schema(schema_id)
    latest = client.get_latest_version(subject)
    assert json.loads(by_id.schema_str or "{}")["name"] == f"Registered{unique}"
    assert latest.schema_id == schema_id
    assert latest.version == 1
    # Apicurio lists 1,000 subjects unless asked for more, and the suite's registry keeps every run's.
    assert subject in client.get_subjects(limit=1_000_000)


@pytest.fixture
def registry(cluster: Cluster, tmp_path: Path) -> Iterator[Registry]:
    """A second registry on other ports with a journal of its own, so restarting it disturbs nobody."""
    if cluster.source != "local":
        pytest.skip("restarts a registry process of the local platform")
    found = own_registry(cluster, tmp_path / "registry-instance")
    yield found
    process.stop(found.config.run_dir, found.node.name, found.config.stop_timeout_s)


def test_schemas_survive_a_registry_restart(registry: Registry, unique: str) -> None:
    config = registry.config
    registry.start()
    subject = f"test.durable.{unique}-value"
    schema_id = clients.registry(config.connection()).register_schema(
        subject, _avro(f"Durable{unique}")
    )

    registry.stop()
    registry.start()

    client = clients.registry(config.connection())  # a fresh client: no cache
    assert client.get_latest_version(subject).schema_id == schema_id
    assert json.loads(client.get_schema(schema_id).schema_str or "{}")["name"] == f"Durable{unique}"
