"""A broker or a registry of a test's own, on ports of its own, to stop and start again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from golive_contracts.access import scope
from golive_platform import acls, process
from golive_platform.artifacts import locate
from golive_platform.config import PlatformConfig
from golive_platform.java import find_java
from golive_platform.kafka import (
    MINIMUM_JAVA,
    KafkaNode,
    admin_client,
    ensure_users,
    metadata_ready,
)
from golive_platform.registry import RegistryNode, registry_ready
from golive_platform.registry import grants as registry_grants
from golive_platform.testing import Cluster, suite_config

from tests.helpers import create_topic, free_port


@dataclass
class Broker:
    """A Kafka broker of an instance's own, to stop and start again (its data dir is kept)."""

    config: PlatformConfig
    node: KafkaNode = field(init=False)

    def __post_init__(self) -> None:
        self.node = KafkaNode(self.config, locate(self.config).kafka_libs)

    def start(self) -> None:
        java = find_java(MINIMUM_JAVA, self.config.java_home, "Kafka")
        self.node.prepare(java)
        running, _ = process.start(self.config.run_dir, self.node.launch(java))
        process.wait_ready(
            running,
            lambda: metadata_ready(self.config.connection()),
            self.config.ready_timeout_s,
            self.node.log,
        )
        ensure_users(self.config)

    def stop(self) -> None:
        assert process.stop(self.config.run_dir, self.node.name, self.config.stop_timeout_s)


@dataclass
class Registry:
    """An Apicurio Registry with a journal of its own (on the given cluster's Kafka), so
    restarting it disturbs nobody; made by `own_registry`."""

    config: PlatformConfig
    node: RegistryNode = field(init=False)

    def __post_init__(self) -> None:
        self.node = RegistryNode(self.config, locate(self.config))

    def start(self) -> None:
        java = find_java(self.node.minimum_java(), self.config.java_home, "Apicurio Registry")
        running, _ = process.start(self.config.run_dir, self.node.launch(java))
        process.wait_ready(
            running, lambda: registry_ready(self.config), self.config.ready_timeout_s
        )

    def stop(self) -> None:
        assert process.stop(self.config.run_dir, self.node.name, self.config.stop_timeout_s)


def own_registry(cluster: Cluster, data_dir: Path, **overrides: object) -> Registry:
    """A registry of its own on other ports, its storage topics created on `cluster` (not started)."""
    unique = uuid.uuid4().hex[:8]
    config = suite_config(
        data_dir=data_dir,
        credentials_dir=suite_config().data_dir,  # its Kafka is the suite's
        registry_port=free_port(),
        registry_management_port=free_port(),
        registry_journal_topic=f"test.registry-journal.{unique}",
        registry_snapshots_topic=f"test.registry-snapshots.{unique}",
        registry_events_topic=f"test.registry-events.{unique}",
        **overrides,
    )
    for topic in (
        config.registry_journal_topic,
        config.registry_snapshots_topic,
        config.registry_events_topic,
    ):
        create_topic(cluster.connection, topic, configs={"retention.ms": "-1"})
    own = registry_grants(config)
    acls.apply(admin_client(cluster.connection), own, scope(own))
    return Registry(config)
