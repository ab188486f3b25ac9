"""The platform from the official images, for the tests on a machine with a Docker engine.

The containers are configured from docker-compose.yml, which tests/platform/test_compose.py
holds to the local broker's settings, the pom's versions and the declared topics: one
description of the container platform, not two. Only what a test container must change is
changed: the host ports (free ones, chosen before the start) and the listener the broker
advertises to the host, which must name that port.

testcontainers' KafkaContainer is not used: it runs Confluent's start scripts
(/etc/confluent/docker/configure, cp-kafka paths the apache/kafka image does not have), and
its with_kraft() compares the tag with Confluent Platform versions, so it refuses `4.4.0`.
A plain DockerContainer with the apache/kafka image's own KAFKA_* settings needs neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HOST_LISTENER = "PLAINTEXT"  # the listener compose publishes to the host (9092)


class ComposeError(ValueError):
    """docker-compose.yml does not describe the services the containers are made from."""


@dataclass(frozen=True)
class ContainerSpec:
    """One container: what testcontainers' DockerContainer is given."""

    image: str
    env: Mapping[str, str]
    ports: Mapping[int, int]  # container port -> host port
    aliases: tuple[str, ...]  # names on the containers' network
    ready_log: str  # the line that says it is ready


@dataclass(frozen=True)
class ContainerPlatform:
    kafka: ContainerSpec
    registry: ContainerSpec
    postgres_image: str
    host: str
    kafka_port: int
    registry_port: int

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def registry_url(self) -> str:
        return f"http://{self.host}:{self.registry_port}/apis/ccompat/v7"


def load_compose(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
        return dict(loaded["services"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ComposeError(f"cannot read the services of {path}: {exc}") from exc


def _env(service: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


def _listeners(value: str) -> dict[str, str]:
    """`INTERNAL://kafka:29092,PLAINTEXT://127.0.0.1:9092` -> {INTERNAL: kafka:29092, ...}."""
    found = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        found[name] = address
    return found


def _container_port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def container_platform(
    services: Mapping[str, Any], host: str, kafka_port: int, registry_port: int
) -> ContainerPlatform:
    """The containers for compose's `services`, reachable from this host at `host` on these
    ports (chosen free by the caller: the broker must advertise its port before it starts)."""
    try:
        kafka, registry, postgres = services["kafka"], services["registry"], services["postgres"]
    except KeyError as exc:
        raise ComposeError(f"docker-compose.yml has no service {exc}") from exc
    kafka_env = _env(kafka)
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    if HOST_LISTENER not in advertised:
        raise ComposeError(f"the kafka service advertises no {HOST_LISTENER} listener")
    broker_port = _container_port(advertised[HOST_LISTENER])
    advertised[HOST_LISTENER] = f"{host}:{kafka_port}"
    kafka_env["KAFKA_ADVERTISED_LISTENERS"] = ",".join(f"{n}://{a}" for n, a in advertised.items())
    registry_env = _env(registry)
    return ContainerPlatform(
        kafka=ContainerSpec(
            image=str(kafka["image"]),
            env=kafka_env,
            ports={broker_port: kafka_port},
            aliases=("kafka",),
            ready_log="Kafka Server started",
        ),
        registry=ContainerSpec(
            image=str(registry["image"]),
            env=registry_env,
            ports={8080: registry_port},
            aliases=("registry",),
            ready_log="Listening on",
        ),
        postgres_image=str(postgres["image"]),
        host=host,
        kafka_port=kafka_port,
        registry_port=registry_port,
    )
