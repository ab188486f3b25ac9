"""The floor of a journey made of exactly-once Kafka hops, on this machine, in the same run.

`make bench` measures it beside the system: records are produced at the journey phase's rate
into the first of `hops + 1` topics; each hop is a bare confluent-kafka process (no
framework, no decoding, no database) that reads committed records, writes each on to the next
topic in a transaction with the consumed offsets, and commits, with the settings the services
use (read_committed, their retry.backoff.ms and linger.ms). A record's latency ends where a
journey's does: at the creation time of its copy in the last topic (its timestamp, set by the
last hop's produce; a journey ends at its outcome record's). The journey through the services
has as many such hops (payment's router, the deciding slot, the process manager), so its
latency is compared to this.

The stateful floor (`stateful=True`) has each hop also write a record per record to a compacted
topic of its own, in the same transaction: as each hop of a journey writes its changelog (the
router its pin, the slot and the process manager their order's state). A second partition in a
transaction costs its own AddPartitionsToTxn entry and Produce request: 0.5 to 5.4 ms (median
2) on three hops at 20/s, in six alternating pairs (docs/performance-journal.md, 2026-12-03,
later).

The system floor (`running(..., with_readers=True, stateful=True)`) adds a bare reader for each
group of the system that only reads (its projections and the recorder), so every order's
records are read and written as often as in the system; bench_orders.py puts the durable echo in
front of it and loads it like POST /orders: the most this machine can do with the system's Kafka
work behind a POST.

Run alone: `python bench_floor.py --hop-of TOPIC_IN TOPIC_OUT GROUP [--state TOPIC]` is one hop
process, and `--reader-of GROUP TOPIC...` one reader (bench_orders.py starts them).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from bench_table import percentile
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic
from golive_contracts import topology
from golive_contracts.topology import GROUPS, ORDERS, PAYMENTS, Kind
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_eventing.loop import FETCH_WAIT_MAX_MS, fetch_settings
from golive_eventing.projection import LAG_COMMIT_MS
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


# How long the hops take records at a measurement's rate before it begins.
WARM_S = 2.0


@dataclass(frozen=True)
class Floor:
    hops: int
    rate_per_s: float
    samples: int
    p50_ms: float  # from a record's send to its last copy's creation
    p99_ms: float
    read_p50_ms: float  # ... to when a read_committed reader has that copy
    read_p99_ms: float


def hop(source: str, sink: str, group: str, state: str | None = None) -> None:
    """One exactly-once hop: until killed. With `state`, each record also writes one to that
    topic, in the same partition and transaction: a stateful hop's changelog record (every hop
    of a journey keeps state: the router its pin, the slot and the process manager their
    order's state)."""
    connection = Connection()
    consumer = clients.consumer(
        connection,
        **{
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            **fetch_settings(Kind.PROCESSOR),
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
            if state is not None:
                producer.produce(state, message.value(), message.key(), message.partition() or 0)
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata()
        )
        producer.commit_transaction(30)


@dataclass(frozen=True)
class Chain:
    """A floor's running chain: its topics, first to last, and its processes' pids."""

    topics: list[str]
    pids: list[int]


# The topics of a system floor's chain, by what they stand for in the system (`readers`): the
# first holds OrderPlaced, the second a slot's input, the third payments, the last the outcomes.
SYSTEM_HOPS = 3
_STANDS_FOR = {ORDERS: (0, 3), PAYMENTS: (2,)}


def readers() -> dict[str, tuple[int, ...]]:
    """The system's groups that only read (its projections and the recorder), each with the
    chain topics it reads in a system floor: derived from the topology, so a group added there
    is added here."""
    return {
        g.name: tuple(sorted({i for t in g.reads for i in _STANDS_FOR.get(t, ())}))
        for g in GROUPS
        if g.kind in (Kind.PROJECTION, Kind.RECORDER)
    }


@contextmanager
def running(
    connection: Connection, hops: int, *, with_readers: bool = False, stateful: bool = False
) -> Iterator[Chain]:
    """`hops + 1` fresh topics with a hop process between each two (with `stateful`, each
    writing a state record per record to a compacted topic of its own, as the system's hops
    write their changelogs), and with `with_readers` a bare reader process for each of
    `readers()` (only for SYSTEM_HOPS hops), each ready (a record passed end to end) when the
    block begins; all stopped and deleted when it ends."""
    if with_readers and hops != SYSTEM_HOPS:
        raise ValueError(f"a system floor has {SYSTEM_HOPS} hops, not {hops}")
    run = uuid.uuid4().hex[:8]
    topics = [f"bench.floor.{run}.{i}" for i in range(hops + 1)]
    states = [f"bench.floor.{run}.{i}.state" for i in range(hops)] if stateful else []
    admin = clients.admin(connection)
    compacted = {"cleanup.policy": "compact"}
    futures = admin.create_topics(
        [NewTopic(t, event_partitions(), 1) for t in topics]
        + [NewTopic(t, event_partitions(), 1, config=compacted) for t in states]
    )
    for future in futures.values():
        future.result(30)
    env = {**os.environ, **connection.env()}
    hop_commands = [["--hop-of", topics[i], topics[i + 1], f"floor-{run}-{i}"] for i in range(hops)]
    for command, state in zip(hop_commands, states, strict=False):
        command += ["--state", state]
    commands = hop_commands + [
        ["--reader-of", name, f"floor-{run}-{name}", *(topics[i] for i in reads)]
        for name, reads in (readers().items() if with_readers else ())
    ]
    processes = [subprocess.Popen([sys.executable, __file__, *c], env=env) for c in commands]
    try:
        _warm(connection, topics[0], topics[-1])
        yield Chain(topics, [p.pid for p in processes])
    finally:
        for process in processes:
            process.kill()
            process.wait(10)
        for future in admin.delete_topics(topics + states).values():
            future.result(30)


def read_only(stands_for: str, group: str, topics: list[str]) -> None:
    """A bare stand-in, in consumer group `group`, for the topology's group `stands_for`, which
    only reads (a projection, the recorder): committed records, fetched as it fetches them, its
    offsets committed on the projections' interval. Until killed."""
    consumer = clients.consumer(
        Connection(),
        **{
            "group.id": group,
            "enable.auto.commit": True,
            "auto.commit.interval.ms": LAG_COMMIT_MS,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            **fetch_settings(topology.group(stands_for).kind),
        },
    )
    consumer.subscribe(topics)
    while True:
        consumer.consume(500, 0.5)


def measure_both(
    connection: Connection, hops: int, rate_per_s: float, seconds: float, pieces: int = 3
) -> tuple[Floor, Floor]:
    """The bare floor and the stateful one, their chains running side by side, driven in
    turn, `pieces` pieces of `seconds / pieces` each, and each one's pieces pooled. One
    sample of each in a row let a minute of the host's noise land on one floor alone (a
    stateful floor of 2.4 x the bare one measured just before it, where alternating pairs put
    it at 1.04 to 1.4 x)."""
    arrivals: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    sent = dict.fromkeys(arrivals, 0)
    with (
        running(connection, hops) as bare,
        running(connection, hops, stateful=True) as stateful,
    ):
        for _ in range(pieces):
            for is_stateful, chain in ((False, bare), (True, stateful)):
                got, n = _drive(
                    connection, chain.topics[0], chain.topics[-1], rate_per_s, seconds / pieces
                )
                arrivals[is_stateful] += got
                sent[is_stateful] += n
    return (
        _floor(hops, rate_per_s, arrivals[False], sent[False]),
        _floor(hops, rate_per_s, arrivals[True], sent[True]),
    )


def _floor(hops: int, rate_per_s: float, arrivals: list[tuple[float, float]], sent: int) -> Floor:
    if len(arrivals) < sent:
        raise SystemExit(f"the floor's hops passed {len(arrivals)} of {sent} records")
    made = sorted(m for m, _ in arrivals)
    read = sorted(r for _, r in arrivals)
    return Floor(
        hops,
        rate_per_s,
        len(made),
        round(percentile(made, 50), 1),
        round(percentile(made, 99), 1),
        round(percentile(read, 50), 1),
        round(percentile(read, 99), 1),
    )


def _last_reader(connection: Connection, topic: str, *, from_end: bool) -> Consumer:
    """A read_committed consumer of every partition of `topic`, in no group: from its start, or
    from where each partition ends now (positioned before it returns, so nothing written after
    it is missed)."""
    consumer = clients.consumer(
        connection,
        **{
            "group.id": f"floor-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
        },
    )
    partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(event_partitions())]
    if from_end:
        for tp in partitions:
            tp.offset = consumer.get_watermark_offsets(tp, timeout=10)[1]
    consumer.assign(partitions)
    return consumer


def _warm(connection: Connection, first: str, last: str) -> None:
    """One record end to end: the hops have joined their groups and opened their transactions,
    so no start-up lands in a measurement."""
    reader = _last_reader(connection, last, from_end=False)
    writer = clients.producer(connection, **{"acks": "all", "enable.idempotence": True})
    writer.produce(first, b"x", b"warm-up")
    writer.flush(10)
    deadline = time.monotonic() + 60
    try:
        while not any(m.error() is None for m in reader.consume(10, 0.05)):
            if time.monotonic() > deadline:
                raise SystemExit("the floor's hops did not pass a record within 60 s")
    finally:
        reader.close()


def _drive(
    connection: Connection, first: str, last: str, rate_per_s: float, seconds: float
) -> tuple[list[tuple[float, float]], int]:
    """Produce at a fixed rate (open loop) after the hops are ready: for each record that came
    through, ms from its send to the creation of its copy in `last` (the last hop's produce,
    the record's timestamp: where a journey's latency from its records ends too, at its
    outcome record), and to when a read_committed reader had that copy (its transaction
    committed and fetched: where a read model can first apply an outcome); and how many were
    sent."""
    reader = _last_reader(connection, last, from_end=True)
    writer = clients.producer(  # as the order API's producer writes OrderPlaced
        connection,
        **{
            "acks": "all",
            "linger.ms": KafkaSettings.model_fields["linger_ms"].default,
            "enable.idempotence": True,
        },
    )
    sent: dict[bytes, float] = {}
    made: dict[bytes, float] = {}
    read_at: dict[bytes, float] = {}

    def read(until: float) -> None:
        while time.monotonic() < until:
            messages = reader.consume(500, timeout=0.001)
            now = time.time()
            for message in messages:
                key = message.key()
                if message.error() is None and key is not None and key in sent:
                    made.setdefault(key, message.timestamp()[1] / 1000)
                    read_at.setdefault(key, now)

    def pace(seconds: float, prefix: str) -> None:
        interval = 1 / rate_per_s
        start = time.monotonic()
        n = 0
        while (now := time.monotonic()) < start + seconds:
            due = start + n * interval
            if now >= due:
                key = f"{prefix}{n}".encode()
                sent[key] = time.time()
                writer.produce(first, b"x" * 200, key)
                writer.poll(0)
                n += 1
            read(min(due + interval, time.monotonic() + 0.002))

    # Records at the rate before the clock runs. The writer connects and gets its producer id
    # (a new producer held its first records half a second for that, and they came through
    # late), and the hops settle into the rate (their first hundred records at 168/s took up
    # to 110 ms, against 60 after: measured), as the system has when its journeys are timed,
    # after its throughput phase.
    pace(WARM_S, "warm")
    sent.clear()
    made.clear()
    read_at.clear()
    pace(seconds, "r")
    writer.flush(10)
    deadline = time.monotonic() + 10
    while len(made) < len(sent) and time.monotonic() < deadline:
        read(time.monotonic() + 0.1)
    reader.close()
    return [
        ((made[k] - sent[k]) * 1000, (read_at[k] - sent[k]) * 1000) for k in sent if k in made
    ], len(sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hop-of", nargs=3, metavar=("IN", "OUT", "GROUP"))
    parser.add_argument("--state", metavar="TOPIC", help="a hop's state topic (--hop-of)")
    parser.add_argument("--reader-of", nargs="+", metavar=("STANDS_FOR", "GROUP TOPIC"))
    args = parser.parse_args()
    try:
        if args.hop_of:
            source, sink, group = args.hop_of
            hop(source, sink, group, args.state)
        elif args.reader_of:
            read_only(args.reader_of[0], args.reader_of[1], args.reader_of[2:])
    except KafkaException as exc:
        raise SystemExit(f"floor process failed: {exc}") from None


if __name__ == "__main__":
    main()
