"""The broker refuses whoever has no login, and lets each service do only its part (ACLs)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import AclBinding
from golive_cli.main import app
from golive_contracts.access import Grant, Operation, Resource, grants, resources
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_eventing.exits import EXIT_CONFIG
from golive_platform import acls
from golive_platform.kafka import admin_client
from golive_platform.testing import Cluster
from typer.testing import CliRunner

from tests.helpers import Topics, eventually, free_port, issuer

pytestmark = pytest.mark.integration


def _refused(connection: Connection) -> None:
    with pytest.raises(KafkaException, match="transport failure"):
        clients.admin(connection).list_topics(timeout=3)


def test_no_login_or_a_wrong_password_is_refused(cluster: Cluster) -> None:
    if cluster.source != "local":
        pytest.skip("the local platform's broker; another cluster's listeners are its own")
    _refused(Connection.exactly(kafka_bootstrap_servers=cluster.bootstrap_servers))
    wrong = {**dict(cluster.services["payment"]), "kafka_sasl_password": "not-the-password"}
    _refused(Connection.exactly(**wrong))
    assert clients.admin(cluster.services["payment"]).list_topics(timeout=10).brokers


def _produce(connection: Connection, topic: str) -> KafkaError | None:
    """One record to `topic` as `connection`'s principal: its delivery error, or None."""
    errors: list[KafkaError | None] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        errors.append(err)

    producer = clients.producer(connection, **{"message.timeout.ms": 10000})
    producer.produce(topic, key=b"k", value=b"v", on_delivery=delivered)
    producer.flush(15)
    assert errors, "no delivery report"
    return errors[0]


def test_a_service_writes_its_own_topics_and_no_other(cluster: Cluster, topics: Topics) -> None:
    if not cluster.services:
        pytest.skip("a cluster with a login per service")
    payment, order = cluster.services["payment"], cluster.services["order"]
    assert _produce(payment, topics.payments) is None
    refused = _produce(payment, topics.orders)
    assert refused is not None
    assert refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert _produce(order, topics.orders) is None


def test_a_service_cannot_join_another_service_s_group(cluster: Cluster, topics: Topics) -> None:
    if not cluster.services:
        pytest.skip("a cluster with a login per service")
    group = topics.group("payment-blue")
    audit = clients.consumer(
        cluster.services["audit"], **{"group.id": group, "auto.offset.reset": "earliest"}
    )
    try:
        audit.subscribe([topics.orders])
        errors = [m.error() for m in audit.consume(10, timeout=10) if m.error() is not None]
    finally:
        audit.close()
    assert [e.code() for e in errors if e is not None][:1] == [
        KafkaError.GROUP_AUTHORIZATION_FAILED
    ]


def test_acls_apply_is_idempotent_and_removes_drift(cluster: Cluster, topics: Topics) -> None:
    if not cluster.services:
        pytest.skip("a cluster with a login per service")
    admin = admin_client(cluster.connection)
    declared, scope = grants(topics.names), resources(topics.names)
    again = acls.apply(admin, declared, scope)
    assert (again.created, again.deleted, again.unchanged) == ([], [], len(declared))

    foreign = Grant("audit", Resource.TOPIC, topics.orders, Operation.WRITE)
    unrelated = Grant("audit", Resource.TOPIC, f"elsewhere.{uuid.uuid4().hex[:8]}", Operation.WRITE)
    made = admin.create_acls([acls.binding(foreign), acls.binding(unrelated)], request_timeout=30)
    for future in made.values():
        future.result(timeout=30)
    # The controller commits an ACL at once; the broker's authorizer, which describe reads,
    # applies it from the metadata log a moment later. Drift not yet applied is not yet seen.
    [foreign_only] = acls.exact([acls.binding(foreign)])
    eventually(
        lambda: admin.describe_acls(foreign_only, request_timeout=30).result(timeout=30),
        30,
        "the broker to apply the foreign grant",
    )
    fixed = acls.apply(admin, declared, scope)
    assert fixed.deleted == [str(foreign)]  # on this environment's resources only
    assert acls.apply(admin, declared, scope).deleted == []
    [only_it] = acls.exact([acls.binding(unrelated)])
    left: list[AclBinding] = admin.describe_acls(only_it, request_timeout=30).result(timeout=30)
    assert len(left) == 1  # another environment's grant is not this one's drift
    for future in admin.delete_acls([only_it], request_timeout=30).values():
        future.result(timeout=30)


def test_golive_acls_apply_reports_what_it_would_do(cluster: Cluster) -> None:
    if cluster.source != "local":
        pytest.skip("the local platform")
    shown = CliRunner().invoke(app, ["acls", "apply", "--dry-run"], env=cluster.connection.env())
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[-1].endswith("unchanged")
    assert "0 removed" in shown.output


def test_a_refused_login_is_said_once_in_words_not_once_per_attempt(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    if not cluster.services:
        pytest.skip("a cluster with a login per service")
    wrong = Connection.exactly(
        **{**dict(cluster.services["payment"]), "kafka_sasl_password": "not-the-password"}
    )
    caplog.set_level(logging.WARNING)
    consumer = clients.consumer(wrong, **{"group.id": f"refused-{uuid.uuid4().hex[:8]}"})
    try:
        consumer.subscribe(["orders"])
        deadline = time.monotonic() + 8  # librdkafka tries again several times a second
        while time.monotonic() < deadline:
            consumer.poll(0.5)
    finally:
        consumer.close()
    said = [r.getMessage() for r in caplog.records if r.name == "golive_eventing.clients"]
    assert len(said) == 1, said
    assert f"Kafka at {cluster.bootstrap_servers} refused the login of 'payment'" in said[0]
    attempts = [
        r for r in caplog.records if r.name == "librdkafka" and "authentication" in r.getMessage()
    ]
    assert len(attempts) <= 1, [r.getMessage() for r in attempts]


def _run_as(
    principal: Connection, script: str, topics: Topics, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """A service process of this build, logged in as `principal`, on these topics."""
    settings = {name.upper(): topic for name, topic in topics.names.settings().items()}
    return subprocess.run(
        [str(Path(sys.executable).parent / script)],
        cwd=tmp_path,
        env={
            **os.environ,
            **principal.env(),
            **settings,
            **issuer().env(),
            "KAFKA_GROUP_PREFIX": topics.group_prefix,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("script", "principal", "refused"),
    [
        # At start: payment's transactional id is not audit's to use.
        ("golive-payment", "audit", "Transactional Id authorization failed"),
        # Running: the order read model's group is not payment's to join.
        ("golive-order", "payment", "Group authorization failed"),
    ],
)
def test_a_service_under_another_principal_says_so_once_and_exits_78(
    cluster: Cluster, topics: Topics, tmp_path: Path, script: str, principal: str, refused: str
) -> None:
    """Not a retry loop: one line naming the refusal, and the configuration-error exit code,
    which make run's supervisor does not restart."""
    if not cluster.services:
        pytest.skip("a cluster with a login per service")
    done = _run_as(
        cluster.services[principal],
        script,
        topics,
        tmp_path,
        PAYMENT_PORT=str(free_port()),
        ORDER_PORT=str(free_port()),
    )
    assert done.returncode == EXIT_CONFIG, done.stderr[-3000:]
    assert refused in done.stderr, done.stderr[-3000:]
    said = [line for line in done.stderr.splitlines() if refused in line]
    assert 1 <= len(said) <= 2, said  # the client's line, and the exit's
    assert "Traceback" not in done.stderr
