"""Where tests get Kafka, the registry and PostgreSQL: an external cluster, testcontainers, or the local platform."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from golive_eventing.clients import Connection

from golive_platform.config import SERVICE_PORTS, PlatformConfig
from golive_platform.containers import ContainerSpec, container_platform, load_compose
from golive_platform.kafka import admin_client
from golive_platform.platform import Platform
from golive_platform.process import free_port
from golive_platform.topics import apply as apply_topics
from golive_platform.topics import load_catalogue, resolve

Source = Literal["external", "testcontainers", "local"]

POSTGRES_IMAGE = "postgres:16-alpine"  # docker-compose.yml's (tests/platform/test_compose.py)


@dataclass(frozen=True)
class Cluster:
    """What a test talks to, whichever way it was provided."""

    source: Source
    connection: Connection
    postgres_url: str | None
    # Each service's own login on the local platform; elsewhere every process uses `connection`.
    services: Mapping[str, Connection] = field(default_factory=dict)

    @property
    def bootstrap_servers(self) -> str:
        return self.connection.kafka_bootstrap_servers

    @property
    def registry_url(self) -> str:
        return self.connection.schema_registry_url


def suite_config(**overrides: object) -> PlatformConfig:
    """The test suite's own platform instance: its own data dir and ports, never the one `make run` uses."""
    values: dict[str, object] = {
        "data_dir": "var/test-platform",
        "kafka_port": 19092,
        "kafka_controller_port": 19093,
        "registry_port": 18081,
        "registry_management_port": 19001,
        "postgres_port": 15433,
        # GOLIVE_VIEWERS (.env) is for `make run`: its viewers, on their ports.
        "viewers": False,
        **overrides,
    }
    return PlatformConfig(**values)  # type: ignore[arg-type]


def config_env(config: PlatformConfig) -> dict[str, str]:
    """The GOLIVE_* environment that makes a `golive` subprocess use `config`."""
    fields = (
        "root",
        "data_dir",
        "cache_dir",
        "kafka_port",
        "kafka_controller_port",
        "registry_port",
        "registry_management_port",
        "postgres_port",
        *SERVICE_PORTS,
        "kafka_heap",
        "kafka_initial_heap",
        "registry_heap",
        "kafka_version",
        "apicurio_version",
        "ready_timeout_s",
        "viewers",
        "zipkin_port",
        "victoriametrics_port",
    )
    env = {f"GOLIVE_{name.upper()}": str(getattr(config, name)) for name in fields}
    if config.java_home is not None:
        env["GOLIVE_JAVA_HOME"] = str(config.java_home)
    return env


def choose_source(environ: Mapping[str, str], docker_answers: bool) -> Source:
    """KAFKA_BOOTSTRAP_SERVERS wins; else testcontainers when a Docker engine answers; else local."""
    if environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external"
    if docker_answers:
        return "testcontainers"
    return "local"


def docker_answers() -> bool:
    """True if a Docker engine answers a ping (the client alone is not enough)."""
    if os.environ.get("GOLIVE_TESTS_NO_DOCKER"):
        return False
    try:
        import docker  # noqa: PLC0415 (testcontainers' dependency; only needed for this probe)

        client = docker.from_env(timeout=2)
        return bool(client.ping())
    except Exception:  # any failure to reach an engine means "no Docker"
        return False


@contextmanager
def provide_cluster(environ: Mapping[str, str] | None = None) -> Iterator[Cluster]:
    env = os.environ if environ is None else environ
    source = choose_source(
        env, docker_answers() if not env.get("KAFKA_BOOTSTRAP_SERVERS") else False
    )
    if source == "external":
        if not env.get("SCHEMA_REGISTRY_URL"):
            raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is set but SCHEMA_REGISTRY_URL is not")
        # Security protocol, SASL credentials and TLS from the same environment.
        connection = Connection.exactly(
            **{name: env[name.upper()] for name in Connection.model_fields if name.upper() in env}
        )
        yield Cluster("external", connection, env.get("DATABASE_URL"))
    elif source == "testcontainers":
        with _containers() as cluster:
            yield cluster
    else:
        with local_cluster(keep=bool(env.get("GOLIVE_KEEP_TEST_PLATFORM"))) as cluster:
            yield cluster


@contextmanager
def local_cluster(keep: bool = False) -> Iterator[Cluster]:
    """The local platform in the test instance; reused if already up, stopped after if we started it.

    One this call starts begins on fresh data: a broker and registry reloading an earlier run's
    topics, groups, transactions and schemas took 33 s to start here, against 10 s fresh, and
    the tests meet the state CI meets."""
    config = suite_config()
    platform = Platform(config, with_postgres=True)
    started = platform.ensure_up(fresh=True)
    try:
        yield Cluster("local", config.connection(), config.postgres_url, config.service_logins())
    finally:
        if started and not keep:
            platform.down()


@contextmanager
def _containers() -> Iterator[Cluster]:
    """The same platform from the official images, for machines with a Docker engine: the
    containers docker-compose.yml describes (golive_platform.containers), topics applied from
    infra/topics.yaml before the registry starts, as compose does. Plain Kafka (no SASL):
    the apache/kafka image formats its storage itself, without SCRAM users."""
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.docker_client import DockerClient  # noqa: PLC0415
    from testcontainers.core.network import Network  # noqa: PLC0415
    from testcontainers.core.waiting_utils import wait_for_logs  # noqa: PLC0415
    from testcontainers.postgres import PostgresContainer  # noqa: PLC0415

    config = PlatformConfig()
    found = container_platform(
        load_compose(config.root / "docker-compose.yml"),
        DockerClient().host(),
        kafka_port=free_port(),
        registry_port=free_port(),
    )

    def container(spec: ContainerSpec, network: Network) -> DockerContainer:
        made = DockerContainer(spec.image).with_network(network)
        made = made.with_network_aliases(*spec.aliases)
        for key, value in spec.env.items():
            made = made.with_env(key, value)
        for inside, outside in spec.ports.items():
            made = made.with_bind_ports(inside, outside)
        return made

    with Network() as network, container(found.kafka, network) as kafka:
        wait_for_logs(kafka, found.kafka.ready_log, timeout=120)
        connection = Connection.exactly(
            kafka_bootstrap_servers=found.bootstrap_servers,
            schema_registry_url=found.registry_url,
        )
        catalogue = load_catalogue(config.topics_file)
        apply_topics(admin_client(connection), resolve(catalogue, config.environment))
        with (
            container(found.registry, network) as registry,
            PostgresContainer(found.postgres_image) as postgres,
        ):
            wait_for_logs(registry, found.registry.ready_log, timeout=120)
            yield Cluster("testcontainers", connection, postgres.get_connection_url(driver=None))
