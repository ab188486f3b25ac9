"""make bench-recorder: capture and replay throughput beside the raw consume and produce rates.

On the bench instance of bench_platform (var/bench-platform, started for the run if it is
down, and then stopped), or on --bootstrap/--registry. The raw rates come from
bench_platform.throughput in the same run; then N OrderPlaced events (the only event with
personal fields, so the worst case) are captured desensitised, captured raw, and replayed at max.
--profile then captures them once more under cProfile and prints where the time goes.

Two raw consume rates, both in the run: bench_platform's (a consumer group subscribing to a
topic of 512-byte random records, the platform's figure, and the reference this benchmark has
always used), and the same records the capture reads (its topic, assigned, read_committed, as
capture reads it), timed like the capture from the consumer's creation. Both consumers are
tuned as capture's is (fetch.queue.backoff.ms, capture.BULK_READ): without it librdkafka
stalls any consumer that drains its queue, a second at a time.

Kafka's log is on tmpfs (/dev/shm) unless --data-dir says otherwise, so both sides of every
ratio are what the code costs, not this machine's disk.

The floor figures are what any capture writing this file format pays per record, whatever
language does the rest: reading each message's fields out of confluent-kafka, base64 of the
value, SHA-256 and gzip (ISA-L's, at the file's level; zlib's level 1 beside it for
reference) of the lines. Capture compresses on two threads, so gzip's share of its wall time is
about half of this. Beside them the
budget: the time per record that capture may add to raw consume and still run at half its rate.

Memory: `golive capture` and `golive replay` run as commands of their own on the same records,
and on an empty window (what the command takes whatever it reads); their peak resident memory
(wait4's ru_maxrss) says what a record costs. Both stream, so it should not grow with the window.
"""

from __future__ import annotations

import argparse
import binascii
import cProfile
import hashlib
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_platform import bench_config, drain, throughput, write_figures
from confluent_kafka import Consumer, TopicPartition
from golive_cli.recorder.archive import COMPRESS_LEVEL, read_capture
from golive_cli.recorder.capture import BULK_READ, CaptureOptions, Window, capture_to_file
from golive_cli.recorder.desensitise import DEV_KEY, Tokeniser
from golive_cli.recorder.environment import Cluster, make_topics
from golive_cli.recorder.replay import replay
from golive_contracts.envelope import Envelope, event_id_for, order_id_for
from golive_contracts.events import Address, OrderLine, OrderPlaced
from golive_eventing import clients
from golive_eventing.serde import EventSerde
from golive_platform.config import PlatformConfig
from golive_platform.platform import Platform
from isal import isal_zlib


def order(i: int) -> OrderPlaced:
    key = f"bench-{i}"
    order_id = order_id_for(key)
    now = datetime.now(UTC)
    return OrderPlaced(
        envelope=Envelope(
            event_id=event_id_for(key, "OrderPlaced"),
            event_type="OrderPlaced",
            occurred_at=now,
            correlation_id=str(order_id),
            causation_id=key,
            producer="bench",
            producer_version="0",
        ),
        order_id=order_id,
        customer_id=f"customer-{i % 5000}",
        email=f"user{i % 5000}@example.org",
        shipping_address=Address(
            name=f"Name {i}",
            line1=f"Street {i}",
            city="Utrecht",
            postal_code="3511AA",
            country="NL",
        ),
        lines=[OrderLine(sku="BOOK-1", quantity=1, unit_price_minor=1250)],
        currency="EUR",
        total_minor=1250,
        card_token=f"tok_bench{i}_4242",
        placed_at=now,
    )


def seed(cluster: Cluster, topics: dict[str, str], count: int) -> None:
    serde = EventSerde(clients.registry(cluster.connection), topics)
    producer = clients.producer(
        cluster.connection,
        **{
            "linger.ms": 5,
            "enable.idempotence": True,
            "acks": "all",
        },
    )
    template = [serde.serialize(order(i)) for i in range(1000)]
    for i in range(count):
        while True:
            try:
                producer.produce(topics["orders"], template[i % 1000], key=f"k{i}".encode())
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise SystemExit("seeding did not complete in 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--bootstrap")
    parser.add_argument("--registry")
    parser.add_argument(
        "--profile", action="store_true", help="also profile a desensitised capture"
    )
    parser.add_argument("--rounds", type=int, default=3, help="captures of each kind (median)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the bench instance's data (Kafka's log); default: a new directory on tmpfs",
    )
    args = parser.parse_args()
    where: dict[str, str] = {}
    if args.bootstrap:
        figures = measure(
            Cluster.chosen(args.bootstrap, args.registry),
            args.records,
            args.profile,
            args.rounds,
        )
    else:
        shm = Path("/dev/shm")  # noqa: S108 (a new private directory in it)
        data_dir = args.data_dir or Path(
            tempfile.mkdtemp(prefix="golive-bench-recorder-", dir=shm if shm.is_dir() else None)
        )
        data_dir = data_dir.absolute()
        config = bench_config().model_copy(update={"data_dir": data_dir})
        platform = Platform(config, echo=lambda _line: None)
        started = platform.ensure_up()
        try:
            config = platform.config
            cluster = Cluster.of(config)
            figures = measure(cluster, args.records, args.profile, args.rounds)
        finally:
            if started:
                platform.down()
            if args.data_dir is None:  # made for this run
                shutil.rmtree(data_dir, ignore_errors=True)
        where["kafka_log_on"] = str(data_dir)
    shown: dict[str, Any] = {**where, **figures}
    for name, value in shown.items():
        print(f"{name:<40} {value}")
    write_figures(PlatformConfig(), "recorder", shown)


def measure(
    cluster: Cluster, records: int, profile: bool = False, rounds: int = 3
) -> dict[str, float]:
    produce_rate, consume_rate = throughput(cluster.connection, records)
    topics = dict(make_topics(cluster, f"bench-{uuid.uuid4().hex[:8]}").topics)
    start = datetime.now(UTC) - timedelta(seconds=1)
    seed(cluster, topics, records)
    window = Window(start, datetime.now(UTC) + timedelta(seconds=1))
    options = CaptureOptions(complete_journeys=False, skew=timedelta(seconds=1))
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Rounds, each the stricter raw reference and both captures back to back: this
        # machine's rates drift by 10-20% over a run, so the figures are each one's median.
        runs: dict[str, list[float]] = {}
        for _ in range(rounds):
            runs.setdefault("same_records", []).append(
                consume_rate_of(cluster, topics["orders"], records)
            )
            for name, tokeniser in (
                ("capture_desensitised", Tokeniser(DEV_KEY)),
                ("capture_raw", None),
            ):
                out = Path(tmp) / f"{name}.jsonl.gz"
                began = time.monotonic()
                manifest = capture_to_file(
                    out,
                    cluster.connection,
                    [topics["orders"]],
                    window,
                    tokeniser,
                    "dev",
                    options,
                )
                captured = sum(manifest.records.values())
                assert captured == records, f"captured {captured} of {records}"
                runs.setdefault(name, []).append(captured / (time.monotonic() - began))
        rates = {name: statistics.median(values) for name, values in runs.items()}
        same_records_rate = rates.pop("same_records")
        # What capture.BULK_READ changes: the same reader with librdkafka's default backoff.
        default_backoff_rate = consume_rate_of(
            cluster, topics["orders"], records, **{"fetch.queue.backoff.ms": "1000"}
        )
        if profile:  # after the timed runs: the profiler slows what it watches
            profiler = cProfile.Profile()
            profiler.runcall(
                capture_to_file,
                Path(tmp) / "profiled.jsonl.gz",
                cluster.connection,
                [topics["orders"]],
                window,
                Tokeniser(DEV_KEY),
                "dev",
                options,
            )
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        loaded = read_capture(Path(tmp) / "capture_desensitised.jsonl.gz")
        lines = [r.line() for r in loaded.records]
        floor = floor_us(cluster, topics["orders"], lines)
        target = dict(make_topics(cluster, f"bench-{uuid.uuid4().hex[:8]}").topics)
        result = replay(
            loaded,
            cluster.connection,
            topic_map={topics["orders"]: target["orders"]},
            allow_any_target=True,
        )
        rates["replay_max"] = result.total / result.seconds
        memory = commands_peak_mb(cluster, topics["orders"], window, Path(tmp))

    return {
        "records": records,
        "rounds": rounds,
        "raw_consume_msgs_per_s": round(consume_rate),
        "raw_consume_same_records_msgs_per_s": round(same_records_rate),
        "raw_consume_same_records_default_backoff_msgs_per_s": round(default_backoff_rate),
        "raw_produce_msgs_per_s": round(produce_rate),
        **{f"{name}_events_per_s": round(rate) for name, rate in rates.items()},
        "capture_desensitised_vs_raw_consume": round(
            rates["capture_desensitised"] / consume_rate, 2
        ),
        "capture_raw_vs_raw_consume": round(rates["capture_raw"] / consume_rate, 2),
        "capture_desensitised_vs_raw_consume_same_records": round(
            rates["capture_desensitised"] / same_records_rate, 2
        ),
        "capture_raw_vs_raw_consume_same_records": round(
            rates["capture_raw"] / same_records_rate, 2
        ),
        "replay_vs_raw_produce": round(rates["replay_max"] / produce_rate, 2),
        "capture_line_bytes": round(sum(map(len, lines)) / len(lines)),
        "budget_us_per_record_for_half_raw_consume": round(1e6 / consume_rate, 2),
        **{f"floor_us_per_record_{name}": round(us, 2) for name, us in floor.items()},
        **memory,
    }


def commands_peak_mb(cluster: Cluster, topic: str, window: Window, tmp: Path) -> dict[str, float]:
    """Peak resident memory (MiB) of golive capture and golive replay, on the window and on an
    empty one (a window before the records were written)."""
    golive = str(Path(sys.executable).parent / "golive")
    where = ["--bootstrap", cluster.bootstrap, "--registry", cluster.registry_url]
    empty = Window(window.start - timedelta(hours=2), window.start - timedelta(hours=1))
    target = make_topics(cluster, f"bench-{uuid.uuid4().hex[:8]}").topic("orders")
    env = {k: v for k, v in os.environ.items() if k != "GOLIVE_CAPTURE_KEY"}  # --dev-key's
    env |= cluster.connection.env()  # --bootstrap's login comes from the environment
    figures = {}
    for name, span in (("empty_window", empty), ("window", window)):
        out = tmp / f"{name}.jsonl.gz"
        figures[f"capture_peak_mib_{name}"] = peak_mib(
            [
                golive,
                "capture",
                "--from",
                span.start.isoformat(),
                "--to",
                span.end.isoformat(),
                "--topics",
                topic,
                "--dev-key",
                "--no-complete-journeys",
                "--skew",
                "1",
                "--out",
                str(out),
                *where,
            ],
            env,
        )
        figures[f"replay_peak_mib_{name}"] = peak_mib(
            [
                golive,
                "replay",
                str(out),
                "--to",
                cluster.bootstrap,
                "--registry",
                cluster.registry_url,
                "--topic-map",
                f"{topic}={target}",
                "--speed",
                "max",
                "--allow-any-target",
            ],
            env,
        )
    return figures


# A small process between: Linux carries the peak of the process that forks into the child's
# ru_maxrss (exec keeps it), so a child of this one would report at least this one's peak.
_LAUNCH = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


def peak_mib(argv: list[str], env: dict[str, str]) -> float:
    """The peak resident memory of a command run to its end, its own (not this process's)."""
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCH, *argv], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[1:3])} exited {done.returncode}: {done.stderr[-500:]}")
    return round(int(done.stdout.split()[-1]) / 1024, 1)


def reader(cluster: Cluster, topic: str, **config: str) -> Consumer:
    """A consumer assigned every partition of `topic` from its first offset (no group offsets),
    tuned as capture's is (BULK_READ): the reference is the best a plain consumer does."""
    consumer = clients.consumer(
        cluster.connection,
        **{
            "enable.auto.commit": False,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            **BULK_READ,
            **config,
        },
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    return consumer


def consume_rate_of(cluster: Cluster, topic: str, count: int, **config: str) -> float:
    """Records per second a bare consumer reads `topic` at, as capture reads it (assigned,
    read_committed), timed from the consumer's creation, as capture is timed from its start."""
    began = time.monotonic()
    consumer = reader(cluster, topic, **{"isolation.level": "read_committed", **config})
    return drain(consumer, count, began)


def floor_us(cluster: Cluster, topic: str, lines: list[bytes]) -> dict[str, float]:
    """Microseconds per record of the steps every capture to this format pays (see the top)."""
    count = len(lines)
    consumer = reader(cluster, topic, **{"isolation.level": "read_committed"})
    seen, fields, values = 0, 0.0, []
    deadline = time.monotonic() + 120
    while seen < count and time.monotonic() < deadline:
        batch = consumer.consume(10_000, timeout=0.5)
        began = time.process_time()
        for m in batch:
            m.error(), m.topic(), m.partition(), m.offset(), m.timestamp(), m.key(), m.headers()
            values.append(m.value() or b"")
        fields += time.process_time() - began
        seen += len(batch)
    consumer.close()
    began = time.process_time()
    for value in values:
        binascii.b2a_base64(value, newline=False)
    b64 = time.process_time() - began
    data = b"".join(lines)
    began = time.process_time()
    hashlib.sha256(data).hexdigest()
    sha = time.process_time() - began
    gz = _gzip_seconds(isal_zlib.compressobj(COMPRESS_LEVEL, isal_zlib.DEFLATED, 31), data)
    zlib_gz = _gzip_seconds(zlib.compressobj(1, zlib.DEFLATED, 31), data)  # the reference
    figures = {"message_fields": fields, "base64": b64, "sha256": sha, "gzip": gz}
    out = {name: 1e6 * seconds / count for name, seconds in figures.items()}
    out["total"] = sum(out.values())
    out["gzip_with_zlib_instead"] = 1e6 * zlib_gz / count  # not in the total: what isal saves
    isal_level_2 = _gzip_seconds(isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31), data)
    out["gzip_with_isal_level_2_instead"] = 1e6 * isal_level_2 / count  # smaller, slower
    return out


def _gzip_seconds(compressor: Any, data: bytes) -> float:
    """CPU seconds to compress `data` (gzip framing) a megabyte at a time."""
    began = time.process_time()
    for at in range(0, len(data), 1 << 20):
        compressor.compress(data[at : at + (1 << 20)])
    compressor.flush()
    return time.process_time() - began


if __name__ == "__main__":
    main()
