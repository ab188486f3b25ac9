"""golive regress: the candidate build on a clean environment, fed a capture's inputs, diffed.

Inputs are the captured OrderPlaced events (the HTTP edge has its own tests). The run ends when
every input's journey has ended and every group's lag is zero, or at the timeout; what the
services emitted for each order is then diffed against what the capture recorded.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from golive_contracts import topology
from golive_contracts.events import BY_FULL_NAME, Event
from golive_eventing import clients
from golive_eventing.serde import EventSerde, PoisonRecordError

from golive_cli.recorder.archive import Capture, CapturedRecord, EmbeddedSchema
from golive_cli.recorder.capture import JOURNEY_END, JOURNEY_START
from golive_cli.recorder.diff import Report, decode_captured, differences, group_outputs
from golive_cli.recorder.environment import (
    Cluster,
    Customise,
    RunningSystem,
    make_topics,
    running_system,
)
from golive_cli.recorder.replay import replay

END_TYPES = {name.rsplit(".", 1)[-1] for name in JOURNEY_END}


def is_input(record: CapturedRecord, schema: EmbeddedSchema) -> bool:
    del record
    return schema.full_name == JOURNEY_START


def regress(
    capture: Capture,
    cluster: Cluster,
    *,
    name: str = "capture",
    timeout_s: float = 120.0,
    customise: Customise | None = None,
    data_dir: Path | None = None,
) -> Report:
    started = time.monotonic()
    inputs = [r for r in capture.records if is_input(r, capture.schemas[r.schema_id])]
    orders = {r.key_str() or "" for r in inputs}
    recorded_events = [
        (r.key_str() or "", decode_captured(r, capture.schemas[r.schema_id]))
        for r in capture.records
        if not is_input(r, capture.schemas[r.schema_id])
        and capture.schemas[r.schema_id].full_name in BY_FULL_NAME
    ]
    recorded = group_outputs(recorded_events, orders)
    not_replayable = len({key for key, _ in recorded_events} - orders)

    suffix = f"regress-{uuid.uuid4().hex[:8]}"
    names = make_topics(cluster, suffix)
    with (
        tempfile.TemporaryDirectory(prefix="golive-regress-") as tmp,
        running_system(cluster, names, data_dir or Path(tmp), suffix, customise) as system,
    ):
        replay(
            capture,
            cluster.connection,
            topic_map={r.topic: names.topic(topology.ORDERS) for r in inputs},
            select=is_input,
            allow_any_target=True,
        )
        seen = _collect(system, orders, timeout_s)
    candidate = group_outputs(
        ((k, e) for k, e in seen.events if e.type_name() != "OrderPlaced"), orders
    )
    return Report(
        capture=name,
        orders=len(orders),
        terminal=len(seen.ended & orders),
        differences=differences(recorded, candidate),
        not_terminal=sorted(orders - seen.ended),
        not_replayable=not_replayable,
        seconds=time.monotonic() - started,
    )


@dataclass
class _Seen:
    events: list[tuple[str, Event]] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)
    last: dict[tuple[str, int], int] = field(default_factory=dict)


def _collect(system: RunningSystem, orders: set[str], timeout_s: float) -> _Seen:
    """Everything the services emit, until every journey ended and no group lags (bounded)."""
    cluster, topics = system.cluster, dict(system.names.topics)
    serde = EventSerde(clients.registry(cluster.connection), topics)
    consumer = clients.consumer(
        cluster.connection,
        **{
            "enable.auto.commit": False,
            "group.id": f"golive-regress-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
        },
    )
    admin = clients.admin(cluster.connection)
    seen = _Seen()
    # The event topics, and what routers hand their version slots (for the slots' lag only).
    watched = [*topics.values(), *_consumed_only(system.names)]
    parts = [
        TopicPartition(t, p, 0)
        for t in watched
        for p in consumer.list_topics(t, timeout=10).topics[t].partitions
    ]
    emitted = set(topics.values())
    consumer.assign(parts)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.05):
                if msg.error() is not None:
                    continue
                place = (msg.topic() or "", msg.partition() or 0)
                seen.last[place] = msg.offset() or 0
                if place[0] not in emitted:
                    continue  # a router's copy for a slot: not an output of the build
                try:
                    event = serde.deserialize(msg.value())
                except PoisonRecordError:
                    continue  # a candidate that writes garbage shows up as missing events
                key = (msg.key() or b"").decode("utf-8", "replace")
                seen.events.append((key, event))
                if event.type_name() in END_TYPES:
                    seen.ended.add(key)
            if (
                orders <= seen.ended
                and _caught_up(consumer, parts)
                and _no_lag(admin, system, seen)
            ):
                break
    finally:
        consumer.close()
    return seen


def _caught_up(consumer: Consumer, parts: Iterable[TopicPartition]) -> bool:
    for tp in consumer.position(list(parts)):
        _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=5)
        if high > 0 and tp.offset < high:
            return False
    return True


def _consumed_only(names: topology.Names) -> list[str]:
    """Topics groups consume that are not event topics: what routers hand version slots."""
    events = {names.topic(t.name) for t in topology.TOPICS}
    return sorted({t for g in topology.GROUPS for t in names.inputs(g)} - events)


def _no_lag(admin: AdminClient, system: RunningSystem, seen: _Seen) -> bool:
    """Every group committed past the last record we saw on what it consumes (a commit marker
    may follow it)."""
    from confluent_kafka import ConsumerGroupTopicPartitions  # noqa: PLC0415

    for g in topology.GROUPS:
        inputs = set(system.names.inputs(g))
        wanted = [TopicPartition(t, p) for (t, p) in seen.last if t in inputs]
        if not wanted:
            continue
        group = system.names.group_id(g.name)
        request = [ConsumerGroupTopicPartitions(group, wanted)]
        result = admin.list_consumer_group_offsets(request)[group].result(timeout=10)
        for tp in result.topic_partitions:
            if tp.offset <= seen.last[(tp.topic, tp.partition)]:
                return False
    return True
