"""The floor of a journey made of exactly-once Kafka hops, on this machine, in the same run.

`make bench` measures it beside the system: records are produced at the journey phase's rate
into the first of `hops + 1` topics; each hop is a bare confluent-kafka process (no
framework, no decoding, no database) that reads committed records, writes each on to the next
topic in a transaction with the consumed offsets, and commits, with the settings the services
use (read_committed, retry.backoff.ms 10, linger.ms 1). A read_committed consumer of the last
topic notes when each record arrives. The journey through the services has as many such hops
(payment's router, the deciding slot, the process manager), so its latency is compared to this.

Run alone: `python bench_floor.py --hop-of TOPIC_IN TOPIC_OUT GROUP` is one hop process
(bench_orders.py starts them).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from functools import cache

from bench_table import percentile
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_eventing.loop import FETCH_WAIT_MAX_MS
from golive_eventing.recovery import RETRY_BACKOFF_MS, TRANSACTION_TIMEOUT_MS
from golive_eventing.settings import KafkaSettings


@cache
def event_partitions() -> int:
    """The partitions of the system's event topics on the local platform (infra/topics.yaml), so
    a reference runs on as many as the system it is set beside. Read when asked, not on import:
    each hop of the floor is a process of its own that never asks."""
    from golive_platform.config import PlatformConfig  # noqa: PLC0415
    from golive_platform.topics import load_catalogue, resolve  # noqa: PLC0415

    config = PlatformConfig()
    (orders,) = [t for t in resolve(load_catalogue(config.topics_file), config.environment)
                 if t.name == "orders"]  # fmt: skip
    return orders.partitions


@dataclass(frozen=True)
class Floor:
    hops: int
    rate_per_s: float
    samples: int
    p50_ms: float
    p99_ms: float


def hop(source: str, sink: str, group: str) -> None:
    """One exactly-once hop: until killed."""
    connection = Connection()
    consumer = clients.consumer(
        connection,
        **{
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
        },
    )
    producer = clients.producer(
        connection,
        **{
            "transactional.id": f"{group}-tx",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": KafkaSettings.model_fields["linger_ms"].default,
            "retry.backoff.ms": RETRY_BACKOFF_MS,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
        },
    )
    producer.init_transactions(30)
    consumer.subscribe([source])
    while True:
        first = consumer.poll(0.5)
        if first is None:
            continue
        batch = [first, *consumer.consume(499, timeout=0)]
        batch = [m for m in batch if m.error() is None]
        if not batch:
            continue
        producer.begin_transaction()
        for message in batch:
            producer.produce(sink, message.value(), message.key())
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata()
        )
        producer.commit_transaction(30)


def measure(connection: Connection, hops: int, rate_per_s: float, seconds: float) -> Floor:
    """Records through `hops` hop processes at `rate_per_s`: their latency, first to last topic."""
    run = uuid.uuid4().hex[:8]
    topics = [f"bench.floor.{run}.{i}" for i in range(hops + 1)]
    admin = clients.admin(connection)
    futures = admin.create_topics([NewTopic(t, event_partitions(), 1) for t in topics])
    for future in futures.values():
        future.result(30)
    env = {**os.environ, **connection.env()}
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--hop-of", topics[i], topics[i + 1], f"floor-{run}-{i}"],
            env=env,
        )
        for i in range(hops)
    ]
    try:
        arrivals, sent = _drive(connection, topics[0], topics[-1], rate_per_s, seconds)
    finally:
        for process in processes:
            process.kill()
            process.wait(10)
        for future in admin.delete_topics(topics).values():
            future.result(30)
    if len(arrivals) < sent:
        raise SystemExit(f"the floor's hops passed {len(arrivals)} of {sent} records")
    latencies = sorted(arrivals)
    return Floor(
        hops,
        rate_per_s,
        len(latencies),
        round(percentile(latencies, 50), 1),
        round(percentile(latencies, 99), 1),
    )


def _drive(
    connection: Connection, first: str, last: str, rate_per_s: float, seconds: float
) -> tuple[list[float], int]:
    """Produce at a fixed rate (open loop) after the hops are ready: ms from send to arrival of
    each record that arrived, and how many were sent."""
    reader = clients.consumer(
        connection,
        **{
            "group.id": f"floor-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "latest",
            "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
        },
    )
    partitions = [TopicPartition(last, p) for p in range(event_partitions())]
    reader.assign(partitions)
    writer = clients.producer(
        connection, **{"acks": "all", "linger.ms": 1, "enable.idempotence": True}
    )
    sent: dict[bytes, float] = {}
    arrived: dict[bytes, float] = {}

    def read(until: float) -> None:
        while time.monotonic() < until:
            for message in reader.consume(500, timeout=0.001):
                key = message.key()
                if message.error() is None and key is not None and key in sent:
                    arrived.setdefault(key, time.monotonic())

    # Warm up: the hops join their groups and open their transactions before the clock runs.
    probe = b"warm-up"
    sent[probe] = time.monotonic()
    writer.produce(first, b"x", probe)
    writer.flush(10)
    deadline = time.monotonic() + 60
    while probe not in arrived:
        if time.monotonic() > deadline:
            raise SystemExit("the floor's hops did not pass a record within 60 s")
        read(time.monotonic() + 0.05)
    sent.clear()
    arrived.clear()

    interval = 1 / rate_per_s
    start = time.monotonic()
    n = 0
    while (now := time.monotonic()) < start + seconds:
        due = start + n * interval
        if now >= due:
            key = f"r{n}".encode()
            sent[key] = time.monotonic()
            writer.produce(first, b"x" * 200, key)
            writer.poll(0)
            n += 1
        read(min(due + interval, time.monotonic() + 0.002))
    writer.flush(10)
    read(time.monotonic() + 10)
    reader.close()
    return [(arrived[k] - sent[k]) * 1000 for k in sent if k in arrived], len(sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hop-of", nargs=3, metavar=("IN", "OUT", "GROUP"))
    args = parser.parse_args()
    if args.hop_of:
        try:
            hop(*args.hop_of)
        except KafkaException as exc:
            raise SystemExit(f"floor hop failed: {exc}") from None


if __name__ == "__main__":
    main()
