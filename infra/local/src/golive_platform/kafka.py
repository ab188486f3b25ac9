"""The Kafka broker: KRaft, one combined broker+controller node on loopback, assembled from jars."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from golive_eventing import clients
from golive_eventing.clients import Connection

from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError
from golive_platform.java import Java
from golive_platform.process import Launch

MINIMUM_JAVA = 17
_quiet = logging.getLogger("golive.platform.probe")


def server_properties(config: PlatformConfig, log_dirs: Path) -> dict[str, str]:
    """A broker from jars has none of the shipped config: every single-node value, set explicitly."""
    host = config.host
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{config.kafka_controller_port}",
        "listeners": f"PLAINTEXT://{host}:{config.kafka_port},CONTROLLER://{host}:{config.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{config.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dirs),
        # One node: internal topics cannot have more replicas than brokers.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "12",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "12",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # Topics come from infra/topics.yaml only; a typo must fail, not create a topic.
        "auto.create.topics.enable": "false",
        # Locally there is nobody to wait for: a group's first member starts at once.
        "group.initial.rebalance.delay.ms": "0",
        "num.partitions": "1",
        "log.retention.check.interval.ms": "300000",
        # A controlled shutdown moves leadership to another replica; on the only broker there is
        # none, so every partition goes leaderless while the coordinators still answer. A
        # transaction committed in that window gets PrepareCommit, then its markers are skipped
        # ("partitions likely deleted") and it is logged complete: its records stay pending
        # until a later transaction of the same producer resolves them, committed or aborted.
        # That lost acknowledged commits and duplicated payments after a restart
        # (docs/reliability.md, "A broker stopped mid-commit"). Without it the broker stops
        # serving first. Starting, a single broker is still fenced for a moment, and a commit
        # it completes then can lose its markers the same way: the processors settle those
        # themselves (golive_eventing.recovery.Transactions.sweep).
        "controlled.shutdown.enable": "false",
    }


class KafkaNode:
    name = "kafka"

    def __init__(self, config: PlatformConfig, libs: Path) -> None:
        self.config = config
        self.libs = libs
        self.home = config.data_dir / "kafka"
        self.properties = self.home / "server.properties"
        self.log_dirs = self.home / "data"
        self.log = server_log(config)

    def _java_args(self, java: Java, heap: str) -> list[str]:
        log4j = self.config.root / "infra" / "local" / "log4j2.xml"
        return [
            str(java.executable),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.log.parent}",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dgolive.instance={self.config.data_dir}",
            "-cp",
            f"{self.libs}/*",
        ]

    def prepare(self, java: Java) -> None:
        """Write server.properties; format the storage on first start only (data survives restarts)."""
        self.log_dirs.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        props = server_properties(self.config, self.log_dirs)
        self.properties.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        if (self.log_dirs / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        argv = [
            *self._java_args(java, "128m"),
            "kafka.tools.StorageTool",
            "format",
            # --cluster-id=: an id that starts with "-" (1 in 64) is not taken for an option
            f"--cluster-id={cluster_id}",
            "-c",
            str(self.properties),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PlatformError(
                "kafka storage format failed", detail=(done.stdout + done.stderr)[-2000:]
            )

    def launch(self, java: Java) -> Launch:
        argv = [*self._java_args(java, self.config.kafka_heap), "kafka.Kafka", str(self.properties)]
        return Launch(
            self.name, argv, self.home / "logs" / "stdout.log", marker=str(self.properties)
        )


def server_log(config: PlatformConfig) -> Path:
    """The broker's own log (log4j2); its stdout only ever holds JVM start-up failures."""
    return config.data_dir / "kafka" / "logs" / "server.log"


def admin_client(connection: Connection, **extra: str) -> AdminClient:
    # librdkafka logs every refused connection to stderr; readiness polling expects refusals.
    return clients.admin(connection, logger=_quiet, **extra)


def metadata_ready(connection: Connection, timeout_s: float = 1.0) -> bool:
    admin = admin_client(connection, **{"socket.connection.setup.timeout.ms": "1000"})
    try:
        return bool(admin.list_topics(timeout=timeout_s).brokers)
    except KafkaException:
        return False
