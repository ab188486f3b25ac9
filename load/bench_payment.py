"""`make bench-payment`: the payment task draining N OrderPlaced records, three ways, in one run.

1. the project's payment slot (`golive-payment-slot`, the real service process: Avro through
   the registry, the payment rules, its keyed state, a Kafka transaction per batch);
2. the same task on Quix Streams (load/quix/payment_task.py, exactly-once, Avro through the
   registry, one decision per order kept in state), what a Python team would pick instead;
3. a bare confluent-kafka transactional loop that copies each record on (load/bench_floor.py's
   hop): no decoding, no state, the floor of an exactly-once hop in Python.

Each reads the same input topic from the start with a group of its own, on a platform instance
of its own (var/bench-system). Measured between 10 % and 100 % of the input committed (so start
up is left out): records per second and CPU microseconds per record of its process. Prints a
table with the ratios (the issue's aim: the slot at least 1.0 x Quix Streams' throughput) and
writes var/bench/payment.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
from bench_orders import bench_config
from bench_platform import write_figures
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic
from golive_cli.system import Cluster, create_topics, service_specs, started
from golive_contracts import topology
from golive_contracts.avro import avro_schema
from golive_contracts.envelope import Envelope, event_id_for, order_id_for
from golive_contracts.events import Address, OrderLine, OrderPlaced, PaymentAuthorized
from golive_contracts.topology import Names
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_eventing.serde import EventSerde
from golive_platform.config import PlatformConfig
from golive_platform.platform import Platform

HERE = Path(__file__).parent
PARTITIONS = 6


@dataclass(frozen=True)
class Drain:
    name: str
    records_per_s: float
    cpu_us_per_record: float


def order(n: int) -> OrderPlaced:
    key = f"bench-payment-{n}-{uuid.uuid4()}"
    order_id = order_id_for(key)
    return OrderPlaced(
        envelope=Envelope(
            event_id=event_id_for(f"request:{key}", "OrderPlaced"),
            event_type="OrderPlaced",
            occurred_at=datetime.now(UTC),
            correlation_id=str(order_id),
            causation_id=f"request:{key}",
            producer="bench",
            producer_version="bench",
        ),
        order_id=order_id,
        customer_id=f"c-{n % 100}",
        email="bench@example.com",
        shipping_address=Address(
            name="B", line1="Main 1", city="Utrecht", postal_code="3511AA", country="NL"
        ),
        lines=[OrderLine(sku="SKU-1", quantity=1, unit_price_minor=1250)],
        currency="EUR",
        total_minor=1250,
        card_token="tok_visa_4242",  # noqa: S106 (a test card token, not a secret)
        placed_at=datetime.now(UTC),
    )


def fill(connection: Connection, serde: EventSerde, topic: str, count: int) -> None:
    producer = clients.producer(connection, **{"linger.ms": 20, "acks": "all"})
    for n in range(count):
        event = order(n)
        producer.produce(topic, serde.serialize(event), str(event.order_id).encode())
        if n % 10_000 == 0:
            producer.flush(30)
        producer.poll(0)
    producer.flush(60)


def committed(connection: Connection, group: str, topic: str) -> int:
    consumer = clients.consumer(connection, **{"group.id": group, "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 10)
        return sum(max(0, tp.offset) for tp in found)
    finally:
        consumer.close()


def written(connection: Connection, topic: str) -> int:
    """Records written to `topic` so far, committed or not (its partitions' high watermarks)."""
    consumer = clients.consumer(connection, **{"group.id": "bench-watermarks"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        )
    finally:
        consumer.close()


def drain(
    name: str,
    connection: Connection,
    group: str,
    topics: tuple[str, str],
    count: int,
    pid: Callable[[], int],
) -> Drain:
    """Rate and CPU per record of the process `pid()`, from when a tenth of the input is
    written on (start-up left out) until all of it is committed. Progress is read off the
    output's high watermark: a framework that commits every few seconds (Quix Streams: 5 s)
    moves its committed offsets in steps too coarse to time."""
    source, sink = topics
    base = written(connection, sink)
    deadline = time.monotonic() + 600
    first: tuple[float, float, int] | None = None
    while time.monotonic() < deadline:
        out = written(connection, sink) - base
        if first is None and out >= count // 10:
            first = (time.monotonic(), _cpu(pid()), out)
        if first is not None and committed(connection, group, source) >= count:
            elapsed, cpu = time.monotonic() - first[0], _cpu(pid()) - first[1]
            records = count - first[2]
            return Drain(name, round(records / elapsed), round(cpu / records * 1e6, 1))
        time.sleep(0.1)  # polling the offsets, bounded by the deadline
    raise SystemExit(f"{name} did not drain {count} records in 600 s")


def _cpu(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(
        t.user + t.system
        for t in (proc.cpu_times(), *(c.cpu_times() for c in proc.children(recursive=True)))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    count = args.records

    config = bench_config()
    platform = Platform(config, echo=lambda _line: None)
    platform.down()
    platform.up()
    try:
        cluster = Cluster.of(config)
        connection = config.connection()
        names = Names.suffixed(f"bp{uuid.uuid4().hex[:8]}")
        create_topics(cluster, names, PARTITIONS)
        slot = topology.slot_group(topology.PAYMENT.name, "blue")
        source = names.inputs(slot)[0]
        serde = EventSerde(clients.registry(connection), dict(names.topics))
        fill(connection, serde, source, count)
        print(f"{count:,} OrderPlaced records in {source}", flush=True)
        results: list[Drain] = []
        runs: list[Callable[[], Drain]] = [
            lambda: _ours(config, cluster, names, slot, source, count),
            lambda: _quix(connection, names, source, count),
            lambda: _bare(connection, source, count),
        ]
        for measured in runs:
            results.append(measured())
            print(f"  {results[-1]}", flush=True)
    finally:
        platform.down()
    report(results)
    write_figures(config, "payment", {"records": count, "drains": [asdict(r) for r in results]})


def _ours(
    config: PlatformConfig,
    cluster: Cluster,
    names: Names,
    slot: topology.Group,
    source: str,
    count: int,
) -> Drain:
    specs = service_specs(config, cluster, names, slots=("blue",))
    spec = next(s for s in specs if s.name == "payment-blue")
    with started(config, [spec]) as running:
        pid = running.running()[spec.name].pid
        group = names.group_id(slot.name)
        sink = names.topics[topology.PAYMENTS]
        return drain(
            "project's payment slot", cluster.connection, group, (source, sink), count, lambda: pid
        )


def _quix(connection: Connection, names: Names, source: str, count: int) -> Drain:
    group = f"bench-quix-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bench-quix-") as scratch:
        schema = Path(scratch) / "payment.avsc"
        schema.write_text(json.dumps(avro_schema(PaymentAuthorized)))
        # Its own environment: not the workspace's (uv would warn, and ignore it).
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | connection.env()
        process = subprocess.Popen(
            [
                os.environ.get("UV", "uv"), "run", "--project", str(HERE / "quix"), "--frozen", "python",
                str(HERE / "quix" / "payment_task.py"), "--input", source,
                "--output", names.topics[topology.PAYMENTS], "--group", group,
                "--schema", str(schema), "--state-dir", str(Path(scratch) / "state"),
            ],
            env=env,
            start_new_session=True,
        )  # fmt: skip
        try:
            sink = names.topics[topology.PAYMENTS]
            return drain(
                "Quix Streams 3.28", connection, group, (source, sink), count, lambda: process.pid
            )
        finally:
            _stop(process)


def _bare(connection: Connection, source: str, count: int) -> Drain:
    sink = f"bench.bare.{uuid.uuid4().hex[:8]}"
    group = f"bench-bare-{uuid.uuid4().hex[:8]}"
    admin = clients.admin(connection)
    admin.create_topics([NewTopic(sink, PARTITIONS, 1)])[sink].result(30)
    process = subprocess.Popen(
        [sys.executable, str(HERE / "bench_floor.py"), "--hop-of", source, sink, group],
        env={**os.environ, **connection.env()},
        start_new_session=True,
    )
    try:
        return drain(
            "bare confluent-kafka loop",
            connection,
            group,
            (source, sink),
            count,
            lambda: process.pid,
        )
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """The process and what it started (uv runs the Quix task as its child)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


def report(results: list[Drain]) -> None:
    quix = results[1]
    print(f"{'drain':<28} {'records/s':>10} {'CPU us/record':>14} {'x Quix rate':>12}")
    for r in results:
        print(
            f"{r.name:<28} {r.records_per_s:>10,.0f} {r.cpu_us_per_record:>14.1f} "
            f"{r.records_per_s / quix.records_per_s:>12.2f}"
        )
    ours = results[0]
    met = "met" if ours.records_per_s >= quix.records_per_s else "not met"
    print(
        f"the project's slot at {ours.records_per_s / quix.records_per_s:.2f} x Quix Streams' rate (aim >= 1.0: {met})"
    )


if __name__ == "__main__":
    main()
