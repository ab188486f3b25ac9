"""A shadow run beside the live version: `golive release compare`, and the gate of `promote`.

Per order the candidate decided in shadow (its outputs on the shadow topic), the live version's
outputs for the same order (the real topic) are paired with them and diffed field by field, as
`golive regress` diffs a replay (golive_cli.recorder.diff: the same volatile fields ignored).
Each difference is either one the candidate declares it means to make (its version's
`intended`, golive_payment.domain.rules.INTENDED) or not; a promotion is refused while any is
not. An order with a shadow decision and no live one yet is reported as missing live.

The other way round, an order the router handed the candidate as a shadow copy and the
candidate never decided (it failed on it: a shadow copy has no dead letters) is missing in
shadow, and refuses a promotion too; copies handed over in the last IN_FLIGHT_MS are in flight,
not missing. The comparison covers the shadow window: from the release action that started the
shadow (the releases topic) to the one that ended it, or now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, TopicPartition
from golive_contracts.events import Event, ReleaseRouteChanged
from golive_contracts.topology import ROUTE_HEADER
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_eventing.serde import EventSerde

from golive_cli.recorder.diff import Difference, differences, group_outputs

log = logging.getLogger(__name__)

# Whether a difference (live event, candidate event, as compared) is one the candidate means.
Intended = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
# How far before the first shadow decision the live decisions are looked for.
LIVE_LEAD_MS = 60_000
# A shadow copy handed over this recently may not be decided yet: in flight, not missing.
IN_FLIGHT_MS = 30_000


@dataclass(frozen=True)
class Window:
    """When a group's candidate was in shadow, in broker time (ms); `end` None: it still is."""

    start: int = 0
    end: int | None = None

    def holds(self, timestamp: int) -> bool:
        return timestamp >= self.start and (self.end is None or timestamp < self.end)


def shadow_window(releases: Iterable[tuple[ReleaseRouteChanged, int]], group: str) -> Window:
    """Pure: the latest shadow window of `group` in its release actions (event, broker time),
    oldest first; the whole log when none started one (flags rewritten by hand)."""
    window = Window()
    for event, timestamp in releases:
        if event.group != group:
            continue
        if event.mode == "shadow" and event.mode_before != "shadow":
            window = Window(timestamp)
        elif event.mode != "shadow" and window.start and window.end is None:
            window = Window(window.start, timestamp)
    return window


@dataclass
class Comparison:
    orders: int  # orders the candidate decided in shadow
    differences: list[Difference] = field(default_factory=list)
    intended: list[str] = field(default_factory=list)  # orders whose differences are meant
    unintended: list[str] = field(default_factory=list)
    missing_live: list[str] = field(default_factory=list)  # no live decision (yet)
    missing_shadow: list[str] = field(default_factory=list)  # handed over, never decided

    @property
    def agreed(self) -> int:
        differing = set(self.intended) | set(self.unintended) | set(self.missing_live)
        return self.orders - len(differing)

    @property
    def ok(self) -> bool:
        """Nothing the candidate does not mean, nothing it failed to decide: a promotion may go
        ahead."""
        return not self.unintended and not self.missing_shadow

    @property
    def refused(self) -> list[str]:
        """The orders that stop a promotion."""
        return [*self.unintended, *self.missing_shadow]

    def text(self, limit: int = 20) -> str:
        lines = [
            f"{self.orders} orders decided in shadow: {self.agreed} agree, "
            f"{len(self.intended)} differ as the candidate intends, "
            f"{len(self.unintended)} differ otherwise, "
            f"{len(self.missing_live)} have no live decision yet; "
            f"{len(self.missing_shadow)} handed to the candidate have no shadow decision"
        ]
        by_order: dict[str, list[Difference]] = {}
        for diff in self.differences:
            by_order.setdefault(diff.order_id, []).append(diff)
        for label, orders in (
            ("not intended", self.unintended),
            ("no shadow decision", self.missing_shadow),
            ("intended", self.intended),
        ):
            for order in orders[:limit]:
                lines.append(f"  {label}: order {order}")
                lines += [f"    {d.line()}" for d in by_order.get(order, [])]
            if len(orders) > limit:
                lines.append(f"  ... and {len(orders) - limit} more {label}")
        return "\n".join(lines)


def compare(
    live: Iterable[tuple[str, Event]],
    shadow: Iterable[tuple[str, Event]],
    intended: Intended,
    handed: Iterable[str] = (),
) -> Comparison:
    """Pure: the live and shadow outputs, (order id, event) each, compared per shadowed order;
    `handed`, the orders the candidate got a shadow copy of (not in flight)."""
    shadow = list(shadow)
    orders = {order for order, _ in shadow}
    live_out = group_outputs(live, orders)
    shadow_out = group_outputs(shadow, orders)
    found = Comparison(orders=len(orders), missing_shadow=sorted(set(handed) - orders))
    found.differences = differences(live_out, shadow_out)
    by_order: dict[str, list[Difference]] = {}
    for diff in found.differences:
        by_order.setdefault(diff.order_id, []).append(diff)
    for order in sorted(by_order):
        if not any(live_out[order].values()):
            found.missing_live.append(order)
        elif all(
            _intended(diff, live_out[order], shadow_out[order], intended)
            for diff in by_order[order]
        ):
            found.intended.append(order)
        else:
            found.unintended.append(order)
    return found


def _intended(
    diff: Difference,
    live: dict[str, list[dict[str, Any]]],
    candidate: dict[str, list[dict[str, Any]]],
    intended: Intended,
) -> bool:
    if diff.kind != "changed":
        return False
    topic, index = diff.at.split("[")
    i = int(index.rstrip("]"))
    return intended(live[topic][i], candidate[topic][i])


@dataclass(frozen=True)
class Read:
    key: str
    event: Event
    timestamp: int  # ms, the broker's
    route: str | None  # the router's mark (ROUTE_HEADER): "shadow" on a shadow copy


def read(
    connection: Connection, serde: EventSerde, topic: str, since_ms: int = 0, timeout_s: float = 30
) -> list[Read]:
    """Every committed record of `topic` from `since_ms`; records that do not decode are left
    out (they are no decision)."""
    consumer = clients.consumer(
        connection,
        **{
            "group.id": "golive-release-compare",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            # A bounded read to the end: no fetch waits for records that are not coming.
            "fetch.wait.max.ms": 10,
        },
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        wanted = [TopicPartition(topic, p, since_ms) for p in sorted(meta.partitions)]
        starts = consumer.offsets_for_times(wanted, timeout=15)
        assigned, pending = [], set()
        for tp in starts:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, tp.partition), timeout=10
            )
            start = tp.offset if tp.offset >= 0 else high
            if start < high:
                assigned.append(TopicPartition(topic, tp.partition, start))
                pending.add(tp.partition)
        consumer.assign(assigned)
        found: list[Read] = []
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.05):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition() or 0)
                    continue
                try:
                    event = serde.deserialize(message.value() or b"")
                except Exception:
                    log.debug("left out %s:%s", message.partition(), message.offset())
                    continue
                key = (message.key() or b"").decode()
                route = dict(message.headers() or []).get(ROUTE_HEADER)
                found.append(
                    Read(
                        key,
                        event,
                        message.timestamp()[1],
                        route.decode() if isinstance(route, bytes) else None,
                    )
                )
        return found
    finally:
        consumer.close()
