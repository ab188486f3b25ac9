"""Apicurio Registry 3.x with kafkasql storage on the same Kafka: schemas survive restarts."""

from __future__ import annotations

import httpx
from golive_contracts.access import Grant
from golive_eventing import clients
from golive_eventing.clients import Connection

from golive_platform import credentials
from golive_platform.acls import registry_grants
from golive_platform.artifacts import Artifacts
from golive_platform.config import PlatformConfig
from golive_platform.java import Java, required_java
from golive_platform.process import Launch

REGISTRY_GROUP_PREFIX = "golive-registry-"


def grants(config: PlatformConfig) -> list[Grant]:
    """What the registry of `config` may do on Kafka: its storage topics and groups."""
    return registry_grants(
        config.registry_journal_topic,
        config.registry_snapshots_topic,
        config.registry_events_topic,
        REGISTRY_GROUP_PREFIX,
    )


class RegistryNode:
    name = "registry"

    def __init__(self, config: PlatformConfig, artifacts: Artifacts) -> None:
        self.config = config
        self.artifacts = artifacts
        self.home = config.data_dir / "registry"
        self.log = self.home / "registry.log"

    def minimum_java(self) -> int:
        return max(17, required_java(self.artifacts.registry_app_jar))

    def _class_data_sharing(self, java: Java) -> list[str]:
        """A class-data archive made on first start and reused after (JDK 19+): a faster warm start."""
        if java.version < 19:
            return []
        archive = (
            self.config.cache_dir
            / f"apicurio-registry-{self.config.apicurio_version}-jdk{java.version}.jsa"
        )
        return ["-XX:+AutoCreateSharedArchive", f"-XX:SharedArchiveFile={archive}"]

    def launch(self, java: Java) -> Launch:
        c = self.config
        self.home.mkdir(parents=True, exist_ok=True)
        props = {
            "quarkus.http.host": c.host,
            "quarkus.http.port": c.registry_port,
            "quarkus.management.host": c.host,
            "quarkus.management.port": c.registry_management_port,
            "quarkus.http.access-log.enabled": "false",
            "apicurio.storage.kind": "kafkasql",
            "apicurio.kafkasql.bootstrap.servers": c.bootstrap_servers,
            "apicurio.kafkasql.topic": c.registry_journal_topic,
            "apicurio.kafkasql.snapshots.topic": c.registry_snapshots_topic,
            "apicurio.events.kafka.topic": c.registry_events_topic,
            # Topics are declared in infra/topics.yaml and applied before the registry starts.
            "apicurio.kafkasql.topic.auto-create": "false",
            "apicurio.kafkasql.consumer.group-prefix": REGISTRY_GROUP_PREFIX,
            # The journal consumer's poll timeout gates every bootstrap step: 5 s by default.
            "apicurio.kafkasql.consumer.poll.timeout": "500",
            "apicurio.storage.snapshot.location": str(self.home),
            "golive.instance": str(c.data_dir),
        }
        argv = [
            str(java.executable),
            "-Xms64m",
            f"-Xmx{c.registry_heap}",
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Xss512k",
            # The registry sees little traffic: C1 alone starts faster and holds less code cache.
            "-XX:TieredStopAtLevel=1",
            *self._class_data_sharing(java),
            f"-Djava.io.tmpdir={self.home}",
            *(f"-D{k}={v}" for k, v in props.items()),
            "-jar",
            str(self.artifacts.registry_jar),
        ]
        return Launch(
            self.name,
            argv,
            self.log,
            marker=f"-Dgolive.instance={c.data_dir}",
            env=kafka_login(c.connection(credentials.REGISTRY)),
            cwd=self.home,
        )


def kafka_login(connection: Connection) -> dict[str, str]:
    """The registry's kafkasql login, for every Kafka client it makes (apicurio.kafka.common.*:
    producer, consumer, admin). As environment variables: a -D option would show the password
    in the process list."""
    user, password = connection.kafka_sasl_username, connection.kafka_sasl_password
    # The local platform's connections always carry both (PlatformConfig.connection).
    assert user is not None
    assert password is not None
    return {
        "APICURIO_KAFKA_COMMON_SECURITY_PROTOCOL": connection.kafka_security_protocol,
        "APICURIO_KAFKA_COMMON_SASL_MECHANISM": connection.kafka_sasl_mechanism,
        "APICURIO_KAFKA_COMMON_SASL_JAAS_CONFIG": credentials.scram_login(
            user, password.get_secret_value()
        ),
    }


def registry_ready(config: PlatformConfig) -> bool:
    """Ready when the management health check and the ccompat API both answer."""
    try:
        health = httpx.get(
            f"http://{config.host}:{config.registry_management_port}/health/ready", timeout=2
        )
        with clients.registry_http(config.connection(), timeout_s=2) as registry:
            api = registry.get("/subjects")
    except httpx.HTTPError:
        return False
    return health.status_code == 200 and api.status_code == 200
