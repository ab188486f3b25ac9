"""make bench-platform: start times, resident memory and the raw Kafka throughput baseline.

Runs on an instance of its own (var/bench-platform, ports 2909x/2808x) so it never touches the
platform `make run` started. The artifacts are fetched beforehand (`make fetch`): the cold start
measures a first start on empty data (storage format, topics, registry journal, the JVM
class-data archive), not a download.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import uuid
from typing import Any

import psutil
from confluent_kafka import Consumer
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_platform.config import PlatformConfig
from golive_platform.kafka import admin_client
from golive_platform.platform import Platform
from golive_platform.topics import TopicSpec, apply

RECORD_BYTES = 512


def bench_config() -> PlatformConfig:
    return PlatformConfig(
        data_dir="var/bench-platform",  # type: ignore[arg-type]
        kafka_port=29092,
        kafka_controller_port=29093,
        registry_port=28081,
        registry_management_port=29001,
        postgres_port=25433,
        viewers=False,  # measured without export, whatever .env says
    )


def timed_up(platform: Platform) -> tuple[float, dict[str, float]]:
    started = time.monotonic()
    result = platform.up()
    return time.monotonic() - started, result.timings


def resident_mb(platform: Platform, proportional: bool = False) -> dict[str, float]:
    """Each component's resident memory, its children's included. `proportional`: PSS, each
    shared page (libpython, librdkafka, the extension modules every service loads) counted
    once across all processes, not once in each as RSS counts it."""
    found = {}
    for name, record in platform.running().items():
        proc = psutil.Process(record.pid)
        found[name] = sum(_resident(p, proportional) for p in [proc, *proc.children(True)])
    return found


def _resident(proc: psutil.Process, proportional: bool) -> float:
    if proportional:
        return float(proc.memory_full_info().pss) / 2**20
    return float(proc.memory_info().rss) / 2**20


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far, its children included."""
    proc = psutil.Process(pid)
    return sum(
        t.user + t.system
        for t in (proc.cpu_times(), *(c.cpu_times() for c in proc.children(recursive=True)))
    )


def cpu_s(platform: Platform) -> dict[str, float]:
    """CPU seconds each running component has used so far, children included."""
    return {name: process_cpu_s(record.pid) for name, record in platform.running().items()}


def throughput(connection: Connection, count: int) -> tuple[float, float]:
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(
        topic,
        "bench",
        False,
        6,
        1,
        {"retention.ms": "-1", "cleanup.policy": "delete", "min.insync.replicas": "1"},
    )
    apply(admin_client(connection), [spec])
    payload = os.urandom(RECORD_BYTES)
    producer = clients.producer(
        connection,
        **{
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "none",
        },
    )
    started = time.monotonic()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, payload, key=str(i % 1000).encode())
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise SystemExit("produce did not complete in 120 s")
    produce_rate = count / (time.monotonic() - started)

    # fetch.queue.backoff.ms: librdkafka's default (1000) stalls a consumer that drains its queue
    # a second at a time (golive_cli.recorder.capture.BULK_READ); 200,000 records read at
    # 104,456/s with it and 392,538/s with 10 ms (make bench-recorder).
    consumer = clients.consumer(
        connection,
        **{
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 10,
        },
    )
    consumer.subscribe([topic])
    consume_rate = drain(consumer, count, time.monotonic())
    return produce_rate, consume_rate


def drain(consumer: Consumer, count: int, started: float) -> float:
    """Consume `count` records (at most 120 s), close the consumer: records per second since
    `started`."""
    seen = 0
    deadline = started + 120
    while seen < count and time.monotonic() < deadline:
        seen += sum(
            1 for m in consumer.consume(num_messages=10_000, timeout=0.5) if m.error() is None
        )
    rate = seen / (time.monotonic() - started)
    consumer.close()
    if seen < count:
        raise SystemExit(f"consumed only {seen} of {count} records in 120 s")
    return rate


def write_figures(config: PlatformConfig, name: str, figures: dict[str, Any]) -> None:
    """var/bench/<name>.json: the figures of the last run, for the docs and for comparison."""
    out = config.root / "var" / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()

    config = bench_config()
    platform = Platform(config, echo=lambda _line: None)
    platform.down()
    shutil.rmtree(config.data_dir, ignore_errors=True)
    # Cold means nothing made at run time survives: the registry's class-data archive is rebuilt too.
    for archive in config.cache_dir.glob("apicurio-registry-*.jsa"):
        archive.unlink()
    try:
        cold, cold_parts = timed_up(platform)
        platform.down()
        warm, warm_parts = timed_up(platform)
        idle = resident_mb(platform)
        produce_rate, consume_rate = throughput(config.connection(), args.records)
        loaded = resident_mb(platform)
    finally:
        platform.down()

    figures = {
        "cold_start_s": round(cold, 1),
        "cold_start_parts_s": {k: round(v, 1) for k, v in cold_parts.items()},
        "warm_start_s": round(warm, 1),
        "warm_start_parts_s": {k: round(v, 1) for k, v in warm_parts.items()},
        "rss_idle_mb": {k: round(v) for k, v in idle.items()},
        "rss_after_load_mb": {k: round(v) for k, v in loaded.items()},
        "records": args.records,
        "record_bytes": RECORD_BYTES,
        "produce_msgs_per_s": round(produce_rate),
        "consume_msgs_per_s": round(consume_rate),
    }
    print(f"cold start to ready   {cold:6.1f} s   {figures['cold_start_parts_s']}")
    print(
        f"warm start to ready   {warm:6.1f} s   {figures['warm_start_parts_s']}   (target < 30 s)"
    )
    total = sum(loaded.values())
    print(
        f"resident memory       {total:6.0f} MB  idle {figures['rss_idle_mb']}, after load "
        f"{figures['rss_after_load_mb']}   (target < 1200 MB)"
    )
    print(
        f"produce, acks=all     {produce_rate:8.0f} msg/s  ({RECORD_BYTES} B, idempotent, linger 5 ms)"
    )
    print(f"consume               {consume_rate:8.0f} msg/s")
    write_figures(config, "platform", figures)


if __name__ == "__main__":
    main()
