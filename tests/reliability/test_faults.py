"""Faults against the running system (real processes, the real broker): each guarantee of
docs/reliability.md holds while something breaks. The tests share one system and run in order;
the last one checks the audit store after all of them."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from confluent_kafka import TopicPartition
from golive_contracts import topology
from golive_contracts.events import PaymentDeclined
from golive_contracts.topology import dlq_topic
from golive_eventing import clients
from golive_platform.testing import Cluster, suite_config

from tests.helpers import (
    Topics,
    eventually,
    lag,
    make_topics,
    read_messages,
    read_topic,
    service_ports,
)
from tests.otlp import Receiver, receiving
from tests.reliability.harness import (
    PIPELINE,
    Services,
    all_settled,
    new_orders,
    outcome,
    publish,
    serde_for,
)

pytestmark = pytest.mark.reliability

DEADLINE_S = 6.0


@pytest.fixture(scope="module")
def topics(cluster: Cluster) -> Topics:
    return make_topics(cluster, f"rel{uuid.uuid4().hex[:8]}", partitions=6)


@pytest.fixture(scope="module")
def traces() -> Iterator[tuple[Receiver, str]]:
    """Where the services export their spans (a timer's firing is traced too)."""
    with receiving() as found:
        yield found


@pytest.fixture(scope="module")
def system(
    cluster: Cluster,
    topics: Topics,
    tmp_path_factory: pytest.TempPathFactory,
    keep_logs: Callable[[Path], None],
    traces: tuple[Receiver, str],
) -> Iterator[Services]:
    config = suite_config(data_dir=tmp_path_factory.mktemp("faults"), **service_ports())
    keep_logs(config.data_dir)
    # An unknown schema id is poison after a short grace here (30 s in production: serde.py).
    services = Services.on(
        cluster,
        topics,
        config,
        PAYMENT_TIMEOUT_S=str(DEADLINE_S),
        UNKNOWN_SCHEMA_GRACE_S=str(UNKNOWN_SCHEMA_GRACE_S),
        OTEL_EXPORTER_OTLP_ENDPOINT=traces[1],
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    services.start(*PIPELINE, "audit")
    try:
        yield services
    finally:
        services.stop_all()


def _wait_settled(
    cluster: Cluster, topics: Topics, orders: list[Any], timeout_s: float = 90
) -> Any:
    return eventually(
        lambda: all_settled(cluster, topics, orders),
        timeout_s,
        f"{len(orders)} orders to end",
        every_s=1.0,
    )


def _exactly_once(found: Any, orders: list[Any]) -> None:
    ids = [str(o.order_id) for o in orders]
    assert [i for i in ids if found.payments[i] != 1] == [], "orders without exactly one payment"
    assert [i for i in ids if found.terminal[i] != 1] == [], "orders without exactly one end"


def test_kill_9_payment_mid_stream_then_restart(
    system: Services, cluster: Cluster, topics: Topics
) -> None:
    orders = new_orders(1000)
    publish(cluster, topics, orders[:300], per_second=200)
    eventually(lambda: outcome(cluster, topics).payments, 30, "the first payments", every_s=0.5)
    system.kill("payment-blue")  # the slot deciding: mid-batch, mid-transaction
    publish(cluster, topics, orders[300:600], per_second=400)
    system.start("payment-blue")
    system.kill("payment")  # the router handing it the orders, mid-transaction too
    publish(cluster, topics, orders[600:], per_second=400)
    system.start("payment")

    _exactly_once(_wait_settled(cluster, topics, orders), orders)


def test_a_duplicated_order_placed_and_a_replayed_partition_pay_once(
    system: Services, cluster: Cluster, topics: Topics
) -> None:
    orders = new_orders(30)
    publish(cluster, topics, orders)
    _wait_settled(cluster, topics, orders)
    publish(cluster, topics, orders[:5])  # the same OrderPlaced again (a producer's retry)
    # Replay a whole partition's inputs: every OrderPlaced of orders partition 0, byte for byte.
    replayed = _copy_partition(cluster, topics.orders, 0)
    assert replayed > 0
    eventually(
        lambda: (
            lag(cluster.connection, topics.group("payment-router"), [topics.orders]) == 0
            and lag(cluster.connection, topics.group("payment-blue"), _slot_input(topics)) == 0
        ),
        30,
        "payment to read the duplicates",
        every_s=0.5,
    )
    eventually(
        lambda: (
            lag(
                cluster.connection,
                topics.group("order-process-manager"),
                [topics.orders, topics.payments],
            )
            == 0
        ),
        30,
        "the process manager to read them",
        every_s=0.5,
    )
    found = outcome(cluster, topics)
    assert max(found.payments.values()) == 1, "a duplicate input made a second payment"
    assert max(found.terminal.values()) == 1, "a duplicate input ended a journey twice"


def _copy_partition(cluster: Cluster, topic: str, partition: int) -> int:
    consumer = clients.consumer(
        cluster.connection,
        **{
            "group.id": "test-replay",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        },
    )
    producer = clients.producer(cluster.connection, **{"enable.idempotence": True})
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        consumer.assign([TopicPartition(topic, partition, 0)])
        copied = 0
        deadline = time.monotonic() + 30
        while consumer.position([TopicPartition(topic, partition)])[0].offset < high:
            assert time.monotonic() < deadline, "could not read the partition to copy"
            for msg in consumer.consume(500, timeout=0.05):
                headers = {str(h[0]): _text(h[1]) for h in msg.headers() or []}
                placed = headers.get("event_type") == "OrderPlaced"
                if msg.error() is None and placed and (msg.offset() or 0) < high:
                    producer.produce(
                        topic,
                        key=msg.key(),
                        value=msg.value(),
                        headers=msg.headers(),
                        partition=partition,
                    )
                    copied += 1
        assert producer.flush(30) == 0
        return copied
    finally:
        consumer.close()


UNKNOWN_SCHEMA_GRACE_S = 2.0
POISON = {
    "no magic byte": b'{"order_id": "not avro"}',
    "unknown schema id": b"\x00" + struct.pack(">I", 987_654_321) + b"\x02\x04",
    "truncated": None,  # a real OrderPlaced cut short, filled in below
}


def test_poison_records_go_to_each_groups_dlq_and_the_line_keeps_moving(
    system: Services, cluster: Cluster, topics: Topics
) -> None:
    serde = serde_for(cluster, topics)
    [sample] = new_orders(1)
    poison = {**POISON, "truncated": serde.serialize(sample)[:20]}
    keys = {kind: str(uuid.uuid4()) for kind in poison}
    producer = clients.producer(cluster.connection)
    for kind, value in poison.items():
        producer.produce(topics.orders, key=keys[kind].encode(), value=value)
    assert producer.flush(10) == 0
    later = new_orders(10)
    publish(cluster, topics, later)

    _wait_settled(cluster, topics, later)  # later records still flow
    for group in ("payment-blue", "order-projector", "order-process-manager"):
        dead = _records(cluster, dlq_topic(topics.orders, group))
        by_key = {d["key"]: d for d in dead}
        for kind, key in keys.items():
            assert key in by_key, f"{kind}: not in {group}'s DLQ"
            headers = by_key[key]["headers"]
            # Where it read it: the blue slot, what the router handed it.
            assert headers["dlq.source.topic"] == topics.names.inputs(topology.group(group))[0]
            assert headers["dlq.group"] == group
            assert {"dlq.error", "dlq.source.partition", "dlq.source.offset"} <= headers.keys()
    # The journey each belonged to still ends: payment declined it as unprocessable.
    declined = eventually(
        lambda: _declined_unprocessable(cluster, topics, set(keys.values())),
        20,
        "unprocessable declines",
    )
    assert declined == set(keys.values())


def _slot_input(topics: Topics) -> list[str]:
    return topics.names.inputs(topology.PAYMENT_BLUE)


def _declined_unprocessable(cluster: Cluster, topics: Topics, keys: set[str]) -> set[str] | None:
    serde = serde_for(cluster, topics)
    found = {
        str(e.order_id)
        for _k, v in read_topic(cluster.connection, topics.payments)
        if isinstance(e := serde.deserialize(v), PaymentDeclined) and e.reason == "unprocessable"
    }
    return found & keys if keys <= found else None


def _records(cluster: Cluster, topic: str) -> list[dict[str, Any]]:
    """Every committed record of a topic: partition, offset, key and headers (as text)."""
    return [
        {
            "partition": msg.partition() or 0,
            "offset": msg.offset() or 0,
            "key": (msg.key() or b"").decode(),
            "headers": {str(h[0]): _text(h[1]) for h in msg.headers() or []},
        }
        for msg in read_messages(cluster.connection, topic, timeout_s=30)
    ]


def test_redrive_reaches_only_its_group(
    system: Services, cluster: Cluster, topics: Topics, traces: tuple[Receiver, str]
) -> None:
    payment_dlq, projector_dlq = (
        dlq_topic(topics.orders, "payment-blue"),
        dlq_topic(topics.orders, "order-projector"),
    )
    before_payment, before_projector = (
        len(_records(cluster, payment_dlq)),
        len(_records(cluster, projector_dlq)),
    )
    assert before_payment > 0  # the poison test's dead letters
    env = cluster.connection.env()
    done = _golive(["dlq", "redrive", "--topic", topics.orders, "--group", "payment-blue"], env)
    assert f"redrove {before_payment} record(s)" in done.stdout
    # Still poison: payment dead-letters them again; no other group takes them.
    eventually(
        lambda: len(_records(cluster, payment_dlq)) == 2 * before_payment,
        30,
        "payment to dead-letter the redriven records again",
    )
    eventually(
        lambda: lag(cluster.connection, topics.group("order-projector"), [topics.orders]) == 0,
        30,
        "the projector to pass them",
    )
    assert len(_records(cluster, projector_dlq)) == before_projector
    again = _golive(
        ["dlq", "redrive", "--topic", topics.orders, "--group", "payment-blue", "--dry-run"], env
    )
    assert f"would redrive {before_payment} record(s)" in again.stdout  # only the new dead letters
    # Each dead letter is in its journey's trace, marked; redriven, it is there again.
    eventually(
        partial(_redriven_in_their_traces, traces[0], before_payment),
        30,
        "each redriven dead letter's span in the trace of its first",
    )


def _redriven_in_their_traces(receiver: Receiver, redriven: int) -> bool:
    dead = [
        s
        for s in receiver.spans()
        if s.attributes.get("messaging.consumer.group.name") == "payment-blue"
        and "golive.dead_letter.reason" in s.attributes
    ]
    first = {(s.trace_id, s.parent_id) for s in dead if "golive.redrive.from" not in s.attributes}
    again = [s for s in dead if "golive.redrive.from" in s.attributes]
    return len(again) >= redriven and all((s.trace_id, s.parent_id) in first for s in again)


def _golive(
    args: list[str], env: dict[str, str], ok: bool = True
) -> subprocess.CompletedProcess[str]:
    import os  # noqa: PLC0415

    done = subprocess.run(
        [str(Path(sys.executable).parent / "golive"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if ok:
        assert done.returncode == 0, f"golive {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


def test_payment_down_past_the_deadline_cancels_and_late_payments_change_nothing(
    system: Services, cluster: Cluster, topics: Topics, traces: tuple[Receiver, str]
) -> None:
    system.stop("payment-blue")  # the slot that decides
    orders = new_orders(5)
    publish(cluster, topics, orders)

    def timed_out() -> bool:
        found = outcome(cluster, topics)
        return all(found.cancel_reasons.get(str(o.order_id)) == "payment_timeout" for o in orders)

    eventually(timed_out, DEADLINE_S + 20, "the deadline to cancel the orders", every_s=0.5)
    system.start("payment-blue")  # the late payments arrive now
    found = _wait_settled(cluster, topics, orders)
    _exactly_once(found, orders)
    assert all(found.cancel_reasons[str(o.order_id)] == "payment_timeout" for o in orders)
    eventually(
        lambda: lag(cluster.connection, topics.group("order-projector"), [topics.orders]) == 0,
        30,
        "the orders read model to catch up",
    )
    for order in orders:
        body = httpx.get(
            f"{system.url('order')}/orders/{order.order_id}", timeout=10, headers=system.headers
        ).json()
        assert (body["status"], body["cancel_reason"]) == ("CANCELLED", "payment_timeout")
    # Each cancellation is in its order's trace: the timer fired in the trace of the OrderPlaced
    # that armed it, and what it published was read on in that trace too.
    for order in orders:
        eventually(
            partial(_cancelled_in_its_trace, traces[0], topics, str(order.order_id)),
            30,
            f"the trace of {order.order_id}'s cancellation",
        )


def _cancelled_in_its_trace(receiver: Receiver, topics: Topics, order_id: str) -> bool:
    manager = "order-process-manager"
    armed = [
        s
        for s in receiver.spans()
        if s.attributes.get("messaging.kafka.message.key") == order_id
        and s.attributes.get("messaging.consumer.group.name") == manager
        and s.attributes.get("golive.event_type") == "OrderPlaced"
    ]
    if not armed:
        return False
    trace = receiver.trace(armed[0].trace_id)

    def child(parent: str, name: str) -> Any:
        return next((s for s in trace if s.parent_id == parent and s.name == name), None)

    fired = child(armed[0].span_id, f"expire {manager}")
    sent = fired and child(fired.span_id, f"send {topics.orders}")
    read = sent and child(sent.span_id, f"process {topics.orders}")
    return bool(read) and fired.attributes.get("golive.timer.key") == order_id


def test_two_payment_instances_one_killed_under_load(
    system: Services, cluster: Cluster, topics: Topics
) -> None:
    system.start("payment-blue-b")
    orders = new_orders(600)
    publish(cluster, topics, orders[:200], per_second=200)
    system.kill("payment-blue")  # its partitions move to payment-blue-b
    publish(cluster, topics, orders[200:], per_second=300)

    _exactly_once(_wait_settled(cluster, topics, orders, timeout_s=120), orders)


READ_MODELS = {
    "order": ("orders", "order_id"),
    "payment": ("payments", "order_id"),
    "audit": ("recorded_events", 'topic, partition, "offset"'),
}


def test_rebuild_each_read_model_equals_the_live_one(
    system: Services, cluster: Cluster, topics: Topics
) -> None:
    for group, watched in (
        ("order-projector", [topics.orders]),
        ("payment-projector", [topics.payments]),
    ):
        eventually(
            partial(_caught_up, cluster, topics.group(group), watched), 30, f"{group} to catch up"
        )
    recorded = [topics.orders, topics.payments]
    recorded += [t for g in topology.GROUPS for t in topics.names.dead_letter_topics(g)]
    eventually(
        partial(_caught_up, cluster, topics.group("audit"), recorded),
        30,
        "the audit store to catch up",
    )
    env = {
        **cluster.connection.env(),
        **{setting.upper(): topic for setting, topic in topics.names.settings().items()},
    }
    for service, (table, order_by) in READ_MODELS.items():
        url = system.specs[service].env[f"{service.upper()}_DATABASE_URL"]
        live = _rows(url, table, order_by)
        assert live, f"{service}: nothing to compare"
        done = _golive(["rebuild", service, "--database-url", url], env)
        assert f"rebuilt {service}" in done.stdout
        assert _rows(url, table, order_by) == live, (
            f"{service}: rebuilt rows differ from the live ones"
        )
    # The live projection follows the swapped-in tables: a new order still shows up.
    [order] = new_orders(1)
    publish(cluster, topics, [order])
    eventually(
        lambda: (
            httpx.get(
                f"{system.url('order')}/orders/{order.order_id}",
                timeout=5,
                headers=system.headers,
            ).status_code
            == 200
        ),
        30,
        "a new order in the rebuilt read model",
    )


def _rows(url: str, table: str, order_by: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = (
                conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order_by}")).mappings().all()
            )
        # The audit store's seq is its insertion order, renumbered by a rebuild (see rebuild.py).
        return [tuple(v for k, v in row.items() if k != "seq") for row in rows]
    finally:
        engine.dispose()


def test_the_audit_store_holds_every_record_exactly_once(
    system: Services, cluster: Cluster, topics: Topics
) -> None:
    """After everything above: every committed record of the event topics and their DLQs, once;
    redriven copies addressed to another group are not the recorder's to keep."""
    names = [topics.orders, topics.payments]
    names += [t for g in topology.GROUPS for t in topics.names.dead_letter_topics(g)]

    def held() -> set[tuple[str, int, int]]:
        return {(topic, p, o) for topic in names for p, o in _positions(cluster, topic)}

    expected = held()
    url = system.specs["audit"].env["AUDIT_DATABASE_URL"]

    def recorded() -> set[tuple[str, int, int]] | None:
        rows = _rows(url, "recorded_events", "seq")
        found = {(r[0], r[1], r[2]) for r in rows}
        assert len(found) == len(rows), "a record stored twice"
        return found if found >= expected else None

    found = eventually(recorded, 30, "the audit store to hold every record", every_s=0.5)
    # The system may still write after `expected` was read (a payment deadline from a test
    # above firing, say): what the store holds beyond it must be in the topics now.
    assert found <= held(), "a record the topics do not hold (or one addressed to another group)"


def _positions(cluster: Cluster, topic: str) -> list[tuple[int, int]]:
    """(partition, offset) of each committed record not addressed to another group."""
    return [
        (r["partition"], r["offset"])
        for r in _records(cluster, topic)
        if r["headers"].get("redrive.group") in (None, "audit")
    ]


def _text(value: str | bytes | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value or ""


def _caught_up(cluster: Cluster, group: str, watched: list[str]) -> bool:
    return lag(cluster.connection, group, watched) == 0
