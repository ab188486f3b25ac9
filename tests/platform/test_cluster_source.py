"""The one fixture picks an external cluster, then testcontainers, then the local platform."""

from __future__ import annotations

from pathlib import Path

import pytest
from golive_platform.testing import choose_source, docker_answers, provide_cluster

pytestmark = pytest.mark.unit


def test_external_cluster_wins_over_everything() -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "broker:9092", "SCHEMA_REGISTRY_URL": "http://reg:8081"}
    assert choose_source(env, docker_answers=True) == "external"


def test_testcontainers_when_a_docker_engine_answers() -> None:
    assert choose_source({}, docker_answers=True) == "testcontainers"


def test_local_platform_otherwise() -> None:
    assert choose_source({"KAFKA_BOOTSTRAP_SERVERS": ""}, docker_answers=False) == "local"


def test_a_docker_client_without_an_engine_is_not_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOLIVE_TESTS_NO_DOCKER", raising=False)  # probe for real
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert docker_answers() is False


def test_external_cluster_is_used_as_given() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "broker-1:9092,broker-2:9092",
        "SCHEMA_REGISTRY_URL": "https://registry.example/apis/ccompat/v7",
        "DATABASE_URL": "postgresql://app@db/golive",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_USERNAME": "tests",
        "KAFKA_SASL_PASSWORD": "s3cret",
    }
    with provide_cluster(env) as cluster:
        assert cluster.source == "external"
        assert cluster.bootstrap_servers == "broker-1:9092,broker-2:9092"
        assert cluster.registry_url == env["SCHEMA_REGISTRY_URL"]
        assert cluster.postgres_url == env["DATABASE_URL"]
        # Its security from the same environment.
        assert cluster.connection.principal == "tests"
        assert cluster.connection.kafka_security_protocol == "SASL_SSL"


def test_external_cluster_without_a_registry_is_a_clear_error() -> None:
    with (
        pytest.raises(RuntimeError, match="SCHEMA_REGISTRY_URL is not"),
        provide_cluster({"KAFKA_BOOTSTRAP_SERVERS": "broker:9092"}),
    ):
        pass
