"""docker-compose.yml describes the same platform as infra/local: versions, ports, broker settings, topics."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from golive_platform.config import PlatformConfig
from golive_platform.kafka import server_properties
from golive_platform.testing import POSTGRES_IMAGE

pytestmark = pytest.mark.unit

CONFIG = PlatformConfig()
# Settings that differ by design: Docker's listeners, paths and quorum addresses.
NETWORK_KEYS = {
    "controller.quorum.voters",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "log.dirs",
}
# The local broker authenticates every client (docs/security.md); the compose file's broker does
# not yet: the apache/kafka image formats its storage itself, without SCRAM users.
SECURITY_KEYS = {
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.mechanism.controller.protocol",
    "listener.name.controller.sasl.enabled.mechanisms",
    "super.users",
    "authorizer.class.name",
    "allow.everyone.if.no.acl.found",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CONFIG.root / "docker-compose.yml").read_text())
    services: dict[str, Any] = loaded["services"]
    return services


def _host_ports(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port, from "127.0.0.1:HOST:CONTAINER"."""
    pairs = (entry.split(":")[-2:] for entry in service["ports"])
    return {int(container): int(host) for host, container in pairs}


def test_images_are_the_versions_the_pom_pins(compose: dict[str, Any]) -> None:
    assert compose["kafka"]["image"] == f"apache/kafka:{CONFIG.kafka_version}"
    assert compose["registry"]["image"] == f"apicurio/apicurio-registry:{CONFIG.apicurio_version}"
    assert compose["postgres"]["image"] == POSTGRES_IMAGE


def test_ports_are_the_local_defaults_on_loopback(compose: dict[str, Any]) -> None:
    assert _host_ports(compose["kafka"]) == {9092: CONFIG.kafka_port}
    assert _host_ports(compose["registry"]) == {
        8080: CONFIG.registry_port,
        9000: CONFIG.registry_management_port,
    }
    assert _host_ports(compose["postgres"]) == {5432: CONFIG.postgres_port}
    for service in ("kafka", "registry", "postgres"):
        assert all(p.startswith("127.0.0.1:") for p in compose[service]["ports"])


def test_broker_settings_agree_with_the_local_broker(compose: dict[str, Any]) -> None:
    env = compose["kafka"]["environment"]
    local = server_properties(CONFIG, CONFIG.data_dir)
    for key, value in local.items():
        if key in NETWORK_KEYS | SECURITY_KEYS:
            continue
        assert env.get("KAFKA_" + key.upper().replace(".", "_")) == value, key
    assert env["KAFKA_HEAP_OPTS"] == f"-Xms{CONFIG.kafka_initial_heap} -Xmx{CONFIG.kafka_heap}"


def test_registry_uses_kafkasql_on_the_declared_topics(compose: dict[str, Any]) -> None:
    env = compose["registry"]["environment"]
    assert env["APICURIO_STORAGE_KIND"] == "kafkasql"
    assert env["APICURIO_KAFKASQL_TOPIC"] == CONFIG.registry_journal_topic
    assert env["APICURIO_KAFKASQL_SNAPSHOTS_TOPIC"] == CONFIG.registry_snapshots_topic
    assert env["APICURIO_EVENTS_KAFKA_TOPIC"] == CONFIG.registry_events_topic
    assert env["APICURIO_KAFKASQL_TOPIC_AUTO_CREATE"] == "false"
    assert f"-Xmx{CONFIG.registry_heap}" in env["JAVA_OPTS_APPEND"]


def test_topics_are_applied_before_the_registry_starts(compose: dict[str, Any]) -> None:
    assert compose["topics"]["command"][:3] == ["golive", "topics", "apply"]
    assert compose["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (
        compose["registry"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    )


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for service in ("kafka", "registry", "postgres"):
        assert compose[service]["healthcheck"]["test"], service


def test_services_run_after_the_schemas_are_registered(compose: dict[str, Any]) -> None:
    assert compose["schemas"]["command"] == ["golive", "schemas", "register"]
    assert compose["schemas"]["depends_on"]["registry"]["condition"] == "service_healthy"
    ports = {
        "order": CONFIG.order_port,
        "order-pm": CONFIG.order_process_manager_port,
        "payment": CONFIG.payment_port,
        "payment-blue": CONFIG.payment_blue_port,
        "payment-green": CONFIG.payment_green_port,
        "audit": CONFIG.audit_port,
    }
    for service, port in ports.items():
        spec = compose[service]
        assert spec["depends_on"]["schemas"]["condition"] == "service_completed_successfully", (
            service
        )
        assert _host_ports(spec) == {port: port}, service
        assert f"localhost:{port}/readyz" in " ".join(spec["healthcheck"]["test"]), service
        dockerfile = CONFIG.root / spec["build"]["dockerfile"]
        assert dockerfile.is_file(), service
        assert "uv sync --frozen" in dockerfile.read_text()


def test_what_dies_is_started_again_and_one_shot_steps_are_not(compose: dict[str, Any]) -> None:
    """The compose file's match for make run's supervisor (golive_platform.platform.Supervisor)."""
    one_shot = {"topics", "schemas", "api-keys"}
    for name, service in compose.items():
        expected = None if name in one_shot else "unless-stopped"
        assert service.get("restart") == expected, name


def test_services_verify_tokens_with_the_public_keys_only(compose: dict[str, Any]) -> None:
    """The services take the local issuer's tokens (golive_platform.tokens), and see its public
    JWKS, never the volume that holds the signing key."""
    assert "credentials init" in " ".join(compose["api-keys"]["command"])
    for name in ("order", "order-pm", "payment", "payment-blue", "payment-green", "audit"):
        service = compose[name]
        env = service["environment"]
        assert env["AUTH_JWKS_FILE"] == "/keys/token-keys.json", name
        assert "api-public-keys:/keys:ro" in service["volumes"], name
        assert not any(v.startswith("api-keys:") for v in service["volumes"]), name
        assert service["depends_on"]["api-keys"]["condition"] == "service_completed_successfully"
