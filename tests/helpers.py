"""Small helpers shared by the tests: polling with a deadline, topics of one's own."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from confluent_kafka.admin import NewTopic
from golive_cli.operations import unread
from golive_cli.system import Cluster as Where
from golive_cli.system import create_topics
from golive_contracts.events import Event
from golive_contracts.topology import ORDERS, PAYMENTS, Names
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_eventing.producer import Delivered, EventProducer
from golive_eventing.serde import EventSerde
from golive_eventing.settings import KafkaSettings
from golive_platform.config import SERVICE_PORTS, PlatformConfig
from golive_platform.process import free_port
from golive_platform.testing import Cluster, suite_config
from golive_platform.tokens import Issuer

if TYPE_CHECKING:
    from confluent_kafka import Message

__all__ = [
    "Topics",
    "create_topic",
    "events_on",
    "eventually",
    "free_port",
    "issuer",
    "lag",
    "make_topics",
    "publish_events",
    "publisher",
    "read_messages",
    "read_topic",
    "service_ports",
]

T = TypeVar("T")


def service_ports() -> dict[str, int]:
    """Free ports for the service processes, as suite_config overrides: a test's own instances."""
    return {name: free_port() for name in SERVICE_PORTS}


@dataclass(frozen=True)
class Topics:
    """A test's own topics and consumer groups (golive_contracts.topology.Names): a group shared
    with a test on another xdist worker would rebalance both (and, for a stateful processor,
    restore its state)."""

    names: Names

    @property
    def orders(self) -> str:
        return self.names.topic(ORDERS)

    @property
    def payments(self) -> str:
        return self.names.topic(PAYMENTS)

    @property
    def group_prefix(self) -> str:
        return self.names.group_prefix

    def env(self, cluster: Cluster) -> dict[str, object]:
        """Settings for a service wired to these topics on this cluster."""
        return {
            **dict(cluster.connection),
            **self.names.settings(),
            "auth_jwks_file": issuer().jwks_path,
            "kafka_group_prefix": self.group_prefix,
            # The committed flags: payment's route sends every order to the blue slot.
            "flags_file": PlatformConfig().flags_source,
        }

    def group(self, name: str) -> str:
        """The consumer group id of the logical group `name` for these topics' services."""
        return self.names.group_id(name)

    def as_map(self) -> dict[str, str]:
        return dict(self.names.topics)


def issuer() -> Issuer:
    """The tests' token issuer (golive_platform.tokens): services wired by `Topics.env` take
    its tokens."""
    return Issuer.ensure(suite_config().data_dir / "test-issuer")


def make_topics(cluster: Cluster, suffix: str, partitions: int = 3) -> Topics:
    """Every topic the topology derives, of one's own, with the schemas registered."""
    names = Names.suffixed(suffix)
    create_topics(Where(cluster.connection, cluster.services), names, partitions)
    return Topics(names)


def run_python(script: str, env: Mapping[str, str] | None = None) -> str:
    """`script` run by this interpreter in a process of its own, with nothing set but PATH and
    `env` (as the platform sets up a service): its standard output; a failure shows its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def eventually(
    probe: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.05
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)  # the polling interval of a deadline-bounded wait


def create_topic(
    connection: Connection, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> None:
    admin = clients.admin(connection)
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1, config=configs or {})], operation_timeout=15
    )
    futures[name].result(timeout=20)


def read_messages(connection: Connection, topic: str, timeout_s: float = 15.0) -> list[Message]:
    """Every record of a topic as read_committed consumers see it, read to the end it had."""
    from confluent_kafka import TopicPartition  # noqa: PLC0415

    consumer = clients.consumer(
        connection,
        **{
            "group.id": "test-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        },
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while any(
            consumer.position([TopicPartition(topic, p)])[0].offset < end
            for p, end in ends.items()
            if end > 0
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout_s}s")
            messages += [m for m in consumer.consume(500, timeout=0.05) if m.error() is None]
        return messages
    finally:
        consumer.close()


def read_topic(
    connection: Connection, topic: str, timeout_s: float = 15.0
) -> list[tuple[str | None, bytes | None]]:
    """Every record of a topic (committed, as read_committed consumers see them), key and value."""
    return [
        ((m.key() or b"").decode() or None, m.value())
        for m in read_messages(connection, topic, timeout_s)
    ]


def lag(connection: Connection, group: str, topics: list[str]) -> int:
    """How many committed records `group` has yet to read on `topics` (golive_cli.operations)."""
    return unread(connection, group, topics)


def events_on(cluster: Cluster, topics: Topics, topic: str) -> list[Event]:
    """Every committed event of one of these topics, decoded."""
    serde = EventSerde(clients.registry(cluster.connection), topics.as_map())
    return [serde.deserialize(v) for _, v in read_topic(cluster.connection, topic)]


def publisher(cluster: Cluster, topics: Topics) -> EventProducer:
    """The services' own producer, on these topics."""
    settings = KafkaSettings.model_validate(topics.env(cluster))
    serde = EventSerde(clients.registry(cluster.connection), topics.as_map())
    return EventProducer(settings, serde, client_id="test-publisher")


def publish_events(cluster: Cluster, topics: Topics, *events: Event) -> list[Delivered]:
    """Each event on its topic, keyed by its journey, acknowledged one by one."""
    producer = publisher(cluster, topics)
    delivered = [producer.publish_sync(e, key=e.envelope.correlation_id) for e in events]
    producer.close()
    return delivered
