"""The registry is a real Apicurio Registry on the Confluent-compatible API, and it never forgets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from golive_platform import process
from golive_platform.artifacts import locate
from golive_platform.java import find_java
from golive_platform.registry import RegistryNode, registry_ready
from golive_platform.testing import Cluster, suite_config

from tests.helpers import create_topic, free_port

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
    client = SchemaRegistryClient({"url": cluster.registry_url})
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
def own_registry(cluster: Cluster, unique: str, tmp_path: Path) -> Iterator[RegistryNode]:
    """A second registry on other ports with a journal of its own, so restarting it disturbs nobody."""
    if cluster.source != "local":
        pytest.skip("restarts a registry process of the local platform")
    journal = f"test.registry-journal.{unique}"
    config = suite_config(
        data_dir=tmp_path / "registry-instance",
        registry_port=free_port(),
        registry_management_port=free_port(),
        registry_journal_topic=journal,
        registry_snapshots_topic=f"test.registry-snapshots.{unique}",
        registry_events_topic=f"test.registry-events.{unique}",
    )
    for topic in (journal, config.registry_snapshots_topic, config.registry_events_topic):
        create_topic(cluster.bootstrap_servers, topic, configs={"retention.ms": "-1"})
    node = RegistryNode(config, locate(config))
    yield node
    process.stop(config.run_dir, node.name, config.stop_timeout_s)


def _start(node: RegistryNode) -> None:
    config = node.config
    java = find_java(node.minimum_java(), config.java_home, "Apicurio Registry")
    running, _ = process.start(config.run_dir, node.launch(java))
    process.wait_ready(running, lambda: registry_ready(config), config.ready_timeout_s)


def test_schemas_survive_a_registry_restart(own_registry: RegistryNode, unique: str) -> None:
    config = own_registry.config
    _start(own_registry)
    subject = f"test.durable.{unique}-value"
    schema_id = SchemaRegistryClient({"url": config.registry_url}).register_schema(
        subject, _avro(f"Durable{unique}")
    )

    assert process.stop(config.run_dir, own_registry.name, config.stop_timeout_s)
    _start(own_registry)

    client = SchemaRegistryClient({"url": config.registry_url})  # a fresh client: no cache
    assert client.get_latest_version(subject).schema_id == schema_id
    assert json.loads(client.get_schema(schema_id).schema_str or "{}")["name"] == f"Durable{unique}"
