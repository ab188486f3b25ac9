"""The testcontainers path (golive_platform.containers): no Docker engine answers on this
machine, so what it would start is checked here, as configuration. docker-compose.yml is held
to the local broker by tests/platform/test_compose.py; these hold the containers to it."""

from __future__ import annotations

from typing import Any

import pytest
from golive_platform.config import PlatformConfig
from golive_platform.containers import ComposeError, container_platform, load_compose

CONFIG = PlatformConfig()
COMPOSE = load_compose(CONFIG.root / "docker-compose.yml")


@pytest.fixture
def found() -> Any:
    return container_platform(COMPOSE, "docker-host", kafka_port=40001, registry_port=40002)


def test_the_broker_is_the_apache_kafka_image_of_the_pom_configured_for_kraft(found: Any) -> None:
    kafka = found.kafka
    assert kafka.image == f"apache/kafka:{CONFIG.kafka_version}"
    assert kafka.env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka.env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert kafka.env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    # The apache/kafka image's own settings: nothing of Confluent's start scripts.
    assert not any("confluent" in f"{k}={v}" for k, v in kafka.env.items())
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kafka.env


def test_the_broker_advertises_the_host_port_it_is_published_on(found: Any) -> None:
    kafka = found.kafka
    assert kafka.ports == {9092: 40001}
    advertised = kafka.env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "PLAINTEXT://docker-host:40001" in advertised
    assert "INTERNAL://kafka:29092" in advertised  # the registry's way in, on the network
    assert found.bootstrap_servers == "docker-host:40001"
    assert "kafka" in kafka.aliases


def test_every_other_broker_setting_is_compose_s(found: Any) -> None:
    compose = {k: str(v) for k, v in COMPOSE["kafka"]["environment"].items()}
    changed = {k for k in compose if compose[k] != found.kafka.env[k]}
    assert changed == {"KAFKA_ADVERTISED_LISTENERS"}
    assert set(found.kafka.env) == set(compose)


def test_the_registry_stores_in_kafka_over_the_internal_listener(found: Any) -> None:
    registry = found.registry
    assert registry.image == f"apicurio/apicurio-registry:{CONFIG.apicurio_version}"
    assert registry.env["APICURIO_STORAGE_KIND"] == "kafkasql"
    assert registry.env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"] == "kafka:29092"
    assert registry.env["APICURIO_KAFKASQL_TOPIC"] == CONFIG.registry_journal_topic
    assert registry.ports == {8080: 40002}
    assert found.registry_url == "http://docker-host:40002/apis/ccompat/v7"
    assert found.postgres_image == COMPOSE["postgres"]["image"]


def test_a_compose_file_without_what_the_containers_need_is_named() -> None:
    with pytest.raises(ComposeError, match="no service 'registry'"):
        container_platform({"kafka": COMPOSE["kafka"]}, "h", 1, 2)
    plain = {**COMPOSE["kafka"], "environment": {"KAFKA_ADVERTISED_LISTENERS": "INTERNAL://k:1"}}
    with pytest.raises(ComposeError, match="advertises no PLAINTEXT listener"):
        container_platform({**COMPOSE, "kafka": plain}, "h", 1, 2)
