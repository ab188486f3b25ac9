"""Consumer lag, watched from outside the groups: per group and partition, the end offset a
read_committed consumer sees minus the group's committed offset (golive.consumer.lag).

From outside, because a group that stops (killed, stuck, fenced) reports nothing about itself:
its lag must still rise. Audit runs the watch over every group of the topology, as Datadog's
kafka_consumer check or Burrow would from beside the cluster. Offsets, not records: a
transactional topic's idle lag is 0 or 1 per partition (the commit marker takes an offset; the
exact count of unread records is `golive release status`'s, golive_cli.operations.unread).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from golive_contracts.metrics import CONSUMER_LAG
from golive_contracts.topology import Group, Names

from golive_eventing.metrics import Metrics

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 10.0
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Lag:
    group: str  # the logical group, as the topology names it
    topic: str
    partition: int
    lag: int


def behind(end: int, committed: int) -> int:
    """Pure: what is left to read; a group with nothing committed has the whole partition."""
    return max(end - max(committed, 0), 0)


class LagWatch:
    """Measures every watched group's lag each `interval_s` and reports it as a gauge."""

    def __init__(
        self,
        admin: AdminClient,
        names: Names,
        groups: Sequence[Group],
        metrics: Metrics,
        interval_s: float = LAG_INTERVAL_S,
    ) -> None:
        self.admin, self.names, self.groups = admin, names, groups
        self.metrics, self.interval_s = metrics, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-watch", daemon=True)
        self._failing = False

    def measure(self) -> list[Lag]:
        places = [
            TopicPartition(topic, p)
            for topic in sorted({t for g in self.groups for t in self.names.inputs(g)})
            for p in self._partitions(topic)
        ]
        ends = self._ends(places)
        found = []
        for group in self.groups:
            inputs = set(self.names.inputs(group))
            wanted = [tp for tp in places if tp.topic in inputs]
            request = ConsumerGroupTopicPartitions(self.names.group_id(group.name), wanted)
            future = self.admin.list_consumer_group_offsets([request], request_timeout=TIMEOUT_S)
            committed = future[request.group_id].result(timeout=TIMEOUT_S)
            for tp in committed.topic_partitions or []:
                end = ends.get((tp.topic, tp.partition))
                if end is not None:
                    lag = behind(end, tp.offset)
                    found.append(Lag(group.name, tp.topic, tp.partition, lag))
        return found

    def _partitions(self, topic: str) -> list[int]:
        meta = self.admin.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        return sorted(meta.partitions)

    def _ends(self, places: list[TopicPartition]) -> dict[tuple[str, int], int]:
        if not places:
            return {}
        futures = self.admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in places},  # type: ignore[no-untyped-call]
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=TIMEOUT_S,
        )
        return {
            (tp.topic, tp.partition): f.result(timeout=TIMEOUT_S).offset
            for tp, f in futures.items()
        }

    def report(self) -> list[Lag]:
        found = self.measure()
        for lag in found:
            self.metrics.gauge(
                CONSUMER_LAG, lag.lag, group=lag.group, topic=lag.topic, partition=lag.partition
            )
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.report()
                if self._failing:
                    log.info("lag watch: measuring again")
                self._failing = False
            except Exception as exc:  # the broker away, a group not granted: said once, retried
                if not self._failing:
                    log.warning("lag watch: cannot measure (%s); retrying", exc)
                self._failing = True

    def start(self) -> None:
        if self.metrics.on:
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=TIMEOUT_S + 2)
