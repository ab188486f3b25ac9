"""The Kafka broker: KRaft, one combined broker+controller node on loopback, assembled from jars."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from functools import partial
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)
from golive_eventing import clients
from golive_eventing.clients import Connection

from golive_platform import credentials
from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError
from golive_platform.java import Java
from golive_platform.polling import until
from golive_platform.process import Launch

MINIMUM_JAVA = 17
# Written beside meta.properties when the storage was formatted with its SCRAM users.
SECURED_MARKER = "golive-sasl"
_quiet = logging.getLogger("golive.platform.probe")


def server_properties(config: PlatformConfig, log_dirs: Path) -> dict[str, str]:
    """A broker from jars has none of the shipped config: every single-node value, set explicitly."""
    host = config.host
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{config.kafka_controller_port}",
        "listeners": f"CLIENT://{host}:{config.kafka_port},CONTROLLER://{host}:{config.kafka_controller_port}",
        "advertised.listeners": f"CLIENT://{host}:{config.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "CLIENT",
        "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
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
        # The log cleaner (compacted topics: the consumer offsets, the processors' changelogs)
        # keeps its key index on the heap, 128 MB by default whatever it has to clean: two
        # thirds of the broker's live heap here (jcmd GC.class_histogram after wrk: 154 MB of
        # byte[] live). 16 MB indexes 0.7 million keys a pass; more passes clean the rest.
        "log.cleaner.dedupe.buffer.size": str(16 * 2**20),
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
        # Every client authenticates (docs/security.md): SCRAM on the client listener, which the
        # broker also uses to reach itself; PLAIN on the controller listener, where KRaft cannot
        # use SCRAM (its credentials live in the metadata the controller serves).
        "sasl.enabled.mechanisms": credentials.MECHANISM,
        "sasl.mechanism.inter.broker.protocol": credentials.MECHANISM,
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "super.users": ";".join(f"User:{p}" for p in credentials.SUPER_USERS),
        # Everyone else may do only what an ACL allows (golive_contracts.access, `golive acls
        # apply`): nothing at all without one.
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
    }


def secret_properties(passwords: credentials.Credentials) -> dict[str, str]:
    """The broker's own logins (server.properties is its owner's only)."""
    controller = passwords.password(credentials.CONTROLLER)
    broker = passwords.password(credentials.BROKER)
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    return {
        "listener.name.controller.plain.sasl.jaas.config": (
            f'{plain} required username="{credentials.CONTROLLER}" password="{controller}" '
            f'user_{credentials.CONTROLLER}="{controller}";'
        ),
        f"listener.name.client.{credentials.MECHANISM.lower()}.sasl.jaas.config": (
            credentials.scram_login(credentials.BROKER, broker)
        ),
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

    def _java_args(self, java: Java, heap: str, initial: str | None = None) -> list[str]:
        log4j = self.config.root / "infra" / "local" / "log4j2.xml"
        return [
            str(java.executable),
            f"-Xms{initial or heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            # C1 only. A broker here lives minutes to hours on two cores shared with everything
            # else, and C2 spent 21 of its first 57 CPU seconds compiling (jstack's per-thread
            # cpu=, under make bench's load). Measured with make bench, one run each: the
            # broker's CPU per order 6.6 -> 4.4 ms, sustained 138 -> 158 orders/s, journey
            # p50/p99 206/628 -> 144/319 ms; raw produce unchanged (115k, 110k msg/s).
            "-XX:TieredStopAtLevel=1",
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
        passwords = credentials.load(self.config.credentials_home)
        props = server_properties(self.config, self.log_dirs) | secret_properties(passwords)
        credentials.write_secret(self.properties, "".join(f"{k}={v}\n" for k, v in props.items()))
        secured = self.log_dirs / SECURED_MARKER
        if (self.log_dirs / "meta.properties").exists():
            if not secured.exists():
                raise PlatformError(
                    f"{self.log_dirs} was formatted before the broker required SASL, so it holds "
                    f"no SCRAM users: `make clean` (or delete {self.config.data_dir}) starts it "
                    "afresh; its topics and data are lost"
                )
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # The users the broker and the operator authenticate as must exist before the first
        # start (KIP-900); the operator adds the rest (ensure_users) once it is up.
        scram = [
            f"--add-scram={credentials.MECHANISM}=[name={p},password={passwords.password(p)}]"
            for p in (credentials.BROKER, credentials.OPERATOR)
        ]
        argv = [
            *self._java_args(java, "128m"),
            "kafka.tools.StorageTool",
            "format",
            # --cluster-id=: an id that starts with "-" (1 in 64) is not taken for an option
            f"--cluster-id={cluster_id}",
            *scram,
            "-c",
            str(self.properties),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PlatformError(
                "kafka storage format failed", detail=(done.stdout + done.stderr)[-2000:]
            )
        secured.write_text(f"{credentials.MECHANISM}\n")

    def launch(self, java: Java) -> Launch:
        heap = self._java_args(java, self.config.kafka_heap, self.config.kafka_initial_heap)
        argv = [*heap, "kafka.Kafka", str(self.properties)]
        return Launch(
            self.name, argv, self.home / "logs" / "stdout.log", marker=str(self.properties)
        )


def server_log(config: PlatformConfig) -> Path:
    """The broker's own log (log4j2); its stdout only ever holds JVM start-up failures."""
    return config.data_dir / "kafka" / "logs" / "server.log"


def admin_client(connection: Connection, **extra: str) -> AdminClient:
    # librdkafka logs every refused connection to stderr; readiness polling expects refusals.
    return clients.admin(connection, logger=_quiet, **extra)


def ensure_users(config: PlatformConfig, timeout_s: float = 30.0) -> None:
    """Every SCRAM user but the two made at format time, with its password from the
    credentials file (an upsert: rotated passwords take effect), and able to log in."""
    passwords = credentials.load(config.credentials_home)
    users = [
        u for u in credentials.SCRAM_USERS if u not in (credentials.BROKER, credentials.OPERATOR)
    ]
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(u, info, passwords.password(u).encode()) for u in users
    ]
    admin = admin_client(config.connection())  # kept alive until every future resolves
    futures = admin.alter_user_scram_credentials(upserts)
    for user, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            raise PlatformError(
                f"could not store the SCRAM credentials of {user!r}: {exc}"
            ) from exc
    for user in users:  # the broker applies them from the metadata log a moment later
        ready = partial(metadata_ready, config.connection(user))
        until(ready, f"the broker to accept {user!r}'s login", timeout_s)


def metadata_ready(connection: Connection, timeout_s: float = 1.0) -> bool:
    admin = admin_client(connection, **{"socket.connection.setup.timeout.ms": "1000"})
    try:
        return bool(admin.list_topics(timeout=timeout_s).brokers)
    except KafkaException:
        return False
