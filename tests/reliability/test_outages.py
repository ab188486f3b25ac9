"""The broker and the registry go away and come back. Each test starts the one it stops on ports
of its own (a broker with its own data dir; a registry with its own journal topic), so the rest of
the suite never notices."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from confluent_kafka.schema_registry import Schema
from golive_contracts import topology
from golive_contracts.avro import subject_for
from golive_contracts.events import OrderPlaced
from golive_eventing import clients
from golive_eventing.serde import EventSerde
from golive_platform import process
from golive_platform.testing import Cluster

from tests.factories import order_placed, order_request
from tests.helpers import Topics, eventually, make_topics, read_topic, service_ports
from tests.instances import Broker, Registry, own_registry
from tests.reliability.harness import (
    ANSWER_WITHIN_S,
    PIPELINE,
    Answer,
    Clients,
    Outcome,
    Services,
    outcome,
    place,
    serde_for,
)
from tests.upcasting import encode_v1, v1_schema_text

pytestmark = pytest.mark.reliability


def _exactly_once(found: Outcome, order_ids: list[str]) -> None:
    assert [i for i in order_ids if found.payments[i] != 1] == [], "not exactly one payment"
    assert [i for i in order_ids if found.terminal[i] != 1] == [], "not exactly one end"


def _ended(found: Outcome, order_ids: list[str]) -> bool:
    return all(found.payments[i] and found.terminal[i] for i in order_ids)


def _settled(
    cluster: Cluster, topics: Topics, order_ids: list[str], serde: EventSerde | None = None
) -> Outcome | None:
    found = outcome(cluster, topics, serde)
    return found if _ended(found, order_ids) else None


# -- a broker of its own (the own_broker fixture) ---------------------------------------------------


def test_broker_stopped_while_orders_are_placed(own_broker: Broker, cluster: Cluster) -> None:
    """Accepted orders all end once; refused ones got 503 + Retry-After in time, never a 500
    or a hang; retried with the same key each one becomes exactly one order."""
    config = own_broker.config
    registry = {"schema_registry_url": cluster.registry_url}
    logins = {s: config.connection(s).model_copy(update=registry) for s in cluster.services}
    own = Cluster(
        "local", config.connection().model_copy(update=registry), cluster.postgres_url, logins
    )
    topics = make_topics(own, f"brk{uuid.uuid4().hex[:8]}", partitions=3)
    services = Services.on(own, topics, config)
    services.start(*PIPELINE)
    try:
        with Clients(services.url("order"), services.headers) as clients:
            eventually(lambda: clients.count(202, "up") >= 30, 60, "30 orders accepted")
            clients.phase = "down"
            own_broker.stop()
            eventually(lambda: clients.count(503, "down") >= 8, 60, "8 orders refused")
            clients.phase = "restarting"
            own_broker.start()
            clients.phase = "back"
            eventually(lambda: clients.count(202, "back") >= 20, 90, "20 orders accepted again")
        answers = clients.answers

        assert [a for a in answers if a.status not in (202, 503)] == [], "neither 202 nor 503"
        refused = [a for a in answers if a.status == 503]
        assert all(a.retry_after for a in refused), "a 503 without Retry-After"

        with httpx.Client(
            base_url=services.url("order"), timeout=ANSWER_WITHIN_S, headers=services.headers
        ) as client:

            def retried(a: Answer) -> Answer | None:
                again = place(client, a.key, a.body, "retry")
                return again if again.status == 202 else None

            retries = [eventually(partial(retried, a), 60, f"retry of {a.key}") for a in refused]
            twice = [place(client, a.key, a.body, "retry") for a in retries[:5]]
        assert [t.order_id for t in twice] == [r.order_id for r in retries[:5]]

        accepted = [a.order_id for a in answers if a.status == 202]
        accepted += [r.order_id for r in retries]
        order_ids = [i for i in accepted if i is not None]
        assert len(order_ids) == len(set(order_ids)), "two keys gave the same order"

        last: list[Outcome] = []
        revived: list[str] = []

        def settled() -> Outcome | None:
            # A processor that cannot recover from a broker restart in-process exits (crash-only:
            # runner.Watchdog, runner.RECOVERY_LIMIT_S); restart it as the supervisor would.
            revived.extend(services.revive())
            last[:] = [outcome(own, topics)]
            return last[0] if _ended(last[0], order_ids) else None

        try:
            found = eventually(settled, 150, "every order to end", every_s=1.0)
        except AssertionError as exc:
            seen = last[0].gaps(order_ids) if last else "no outcome read"
            raise AssertionError(f"{exc}: {seen}; revived: {revived or 'none'}") from None
        _exactly_once(found, order_ids)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{services.log_tails()}") from None
    finally:
        services.stop_all()


# -- a registry of its own -------------------------------------------------------------------------


@pytest.fixture
def registry(
    cluster: Cluster, tmp_path: Path, keep_logs: Callable[[Path], None]
) -> Iterator[Registry]:
    if cluster.source != "local":
        pytest.skip("restarts a registry process of the local platform")
    found = own_registry(cluster, tmp_path / "registry-instance", **service_ports())
    keep_logs(found.config.data_dir)
    found.start()
    yield found
    process.stop(found.config.run_dir, found.node.name, found.config.stop_timeout_s)


def _publish_v1(cluster: Cluster, topics: Topics, schema_id: int) -> str:
    """An OrderPlaced as an older build wrote it: under v1's schema id, which no service has
    looked up yet. Returns its order id."""
    event = order_placed(str(uuid.uuid4()))
    producer = clients.producer(cluster.connection)
    producer.produce(
        topics.orders,
        key=event.envelope.correlation_id.encode(),
        value=struct.pack(">bI", 0, schema_id) + encode_v1(event),
        headers=[("event_type", b"OrderPlaced")],
    )
    assert producer.flush(15) == 0
    return str(event.order_id)


def test_registry_restarted_mid_stream(registry: Registry, cluster: Cluster) -> None:
    """While the registry is down the services run on the schemas they cached; a record under a
    schema they have not seen waits (never dead-lettered) and flows once the registry is back."""
    config = registry.config
    moved = {"schema_registry_url": config.registry_url}
    logins = {s: c.model_copy(update=moved) for s, c in cluster.services.items()}
    own = Cluster(
        "local", cluster.connection.model_copy(update=moved), cluster.postgres_url, logins
    )
    topics = make_topics(own, f"reg{uuid.uuid4().hex[:8]}", partitions=3)
    subject = subject_for(topics.orders, OrderPlaced)
    v1 = clients.registry(config.connection()).lookup_schema(
        subject, Schema(v1_schema_text(), "AVRO")
    )
    assert v1.schema_id is not None
    services = Services.on(own, topics, config)
    services.start(*PIPELINE)
    order_ids: list[str] = []
    try:
        with httpx.Client(
            base_url=services.url("order"), timeout=ANSWER_WITHIN_S, headers=services.headers
        ) as client:

            def place_all(count: int, phase: str) -> list[str]:
                answers = [
                    place(client, f"reg-{uuid.uuid4()}", order_request(), phase)
                    for _ in range(count)
                ]
                assert [a.status for a in answers] == [202] * count, phase
                return [a.order_id for a in answers if a.order_id]

            warm = place_all(10, "warm")  # every service has now cached what it needs
            reader = serde_for(own, topics)  # and so has the test's reader, once this is done:
            eventually(lambda: _settled(own, topics, warm, reader), 60, "warm-up", every_s=0.5)

            def registry_ready() -> bool:
                return bool(client.get("/readyz").json()["checks"]["registry"])

            registry.stop()
            eventually(lambda: not registry_ready(), 10, "/readyz to report the registry down")
            down = place_all(10, "registry down")
            eventually(
                lambda: _settled(own, topics, down, reader),
                60,
                "orders without a registry",
                every_s=0.5,
            )
            waiting = _publish_v1(own, topics, v1.schema_id)

            registry.start()
            eventually(registry_ready, 30, "/readyz to report the registry back")
            after = place_all(10, "registry back")
            order_ids = [*warm, *down, waiting, *after]
            found = eventually(
                lambda: _settled(own, topics, order_ids), 60, "every order to end", every_s=1.0
            )
        _exactly_once(found, order_ids)
        for dlq in (t for g in topology.GROUPS for t in topics.names.dead_letter_topics(g)):
            assert read_topic(cluster.connection, dlq) == [], f"{dlq} is not empty"
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{services.log_tails()}") from None
    finally:
        services.stop_all()
