"""A clean environment for a build: fresh topics on a cluster, the four real service processes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from golive_eventing.runner import dlq_topic
from golive_eventing.schemas import register_all
from golive_eventing.state import state_topic
from golive_platform.config import PlatformConfig
from golive_platform.platform import Platform
from golive_platform.process import free_port
from golive_platform.services import ServiceSpec

from golive_cli.system import service_specs

# Consumer groups per logical topic (lag is watched for each), and those with a dead-letter topic.
GROUPS = {
    "orders": ("payment", "order-projector", "audit"),
    "payments": ("order-process-manager", "payment-projector", "audit"),
}
DEAD_LETTER_GROUPS = {
    "orders": ("payment", "order-projector", "order-process-manager"),
    "payments": ("order-process-manager", "payment-projector"),
}
STATEFUL_GROUPS = ("payment", "order-process-manager")

Customise = Callable[[list[ServiceSpec]], list[ServiceSpec]]


class EnvironmentSetupError(RuntimeError):
    """The environment could not be made (topics, schemas, a service that did not start)."""


@dataclass(frozen=True)
class Cluster:
    bootstrap: str
    registry_url: str


@dataclass(frozen=True)
class RunningSystem:
    cluster: Cluster
    topics: dict[str, str]  # logical -> this environment's topic
    order_url: str
    audit_url: str
    group_prefix: str  # of its consumer groups and transactional ids

    def group_id(self, group: str) -> str:
        return f"{self.group_prefix}{group}"


def make_topics(cluster: Cluster, suffix: str, partitions: int = 6) -> dict[str, str]:
    """The one place this environment's topics are made: event topics, dead letters, the
    stateful groups' changelogs (`<input topic>.<group>.state`, compacted), schemas."""
    topics = {"orders": f"orders.{suffix}", "payments": f"payments.{suffix}"}
    names = list(topics.values())
    for logical, groups in DEAD_LETTER_GROUPS.items():
        names += [dlq_topic(topics[logical], group) for group in groups]
    new = [NewTopic(n, partitions, 1) for n in names]
    new += [
        NewTopic(state_topic(topics["orders"], group), partitions, 1,
                 config={"cleanup.policy": "compact"})
        for group in STATEFUL_GROUPS
    ]  # fmt: skip
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    futures = admin.create_topics(new, operation_timeout=15)
    try:
        for future in futures.values():
            future.result(timeout=20)
    except KafkaException as exc:
        raise EnvironmentSetupError(
            f"could not create topics on {cluster.bootstrap}: {exc}"
        ) from exc
    register_all(SchemaRegistryClient({"url": cluster.registry_url}), topics)
    return topics


@contextmanager
def running_system(
    cluster: Cluster,
    topics: dict[str, str],
    data_dir: Path,
    instance: str,
    customise: Customise | None = None,
) -> Iterator[RunningSystem]:
    """The candidate build's four service processes on `topics`, stopped on exit. Their consumer
    groups and transactional ids are prefixed with `instance`: the same cluster may run the real
    services, and a group shared with them would rebalance both at every start and stop."""
    config = PlatformConfig(
        data_dir=data_dir,
        order_port=free_port(),
        order_process_manager_port=free_port(),
        payment_port=free_port(),
        audit_port=free_port(),
    )
    group_prefix = f"{instance}."
    where = {
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
        "SCHEMA_REGISTRY_URL": cluster.registry_url,
        "INSTANCE_ID": instance,
    }
    specs = [dataclasses.replace(s, env={**s.env, **where})
             for s in service_specs(config, topics=topics, group_prefix=group_prefix)]  # fmt: skip
    platform = Platform(config, services=customise(specs) if customise else specs,
                        echo=lambda _line: None)  # fmt: skip
    platform.start_services()
    try:
        yield RunningSystem(
            cluster,
            topics,
            order_url=f"http://{config.host}:{config.order_port}",
            audit_url=f"http://{config.host}:{config.audit_port}",
            group_prefix=group_prefix,
        )
    finally:
        platform.stop_services()
