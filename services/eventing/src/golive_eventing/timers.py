"""Timers on a partition's clock: a key's deadline passes when every input partition of its
number has been read past it, not when the wall clock says so. After a restart the backlog is
read before anything is declared overdue, and a record in a transaction still open at the
deadline holds its timer until the transaction ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from golive_eventing.loop import FETCH_WAIT_MAX_MS
from golive_eventing.records import Consumed

# A partition read to its end is this far behind the wall clock for timers: twice the fetch wait,
# so any record logged before its time is already counted in the high watermark.
END_GRACE_S = 2 * FETCH_WAIT_MAX_MS / 1000


class PartitionClock:
    """How far each input partition has been read, in epoch seconds."""

    def __init__(
        self,
        topics: Sequence[str],
        read_to_end: Callable[[str, int], bool],
        clock: Callable[[], datetime],
    ) -> None:
        self.topics = list(topics)
        self.read_to_end = read_to_end
        self.clock = clock
        self._seen_ms: dict[tuple[str, int], int] = {}

    def saw(self, batch: Iterable[Consumed]) -> None:
        """The batch committed: its records' log times count."""
        for record in batch:
            place = (record.topic, record.partition)
            self._seen_ms[place] = max(self._seen_ms.get(place, 0), record.timestamp_ms)

    def forget(self, places: Iterable[tuple[str, int]] | None = None) -> None:
        """These partitions (all, if None) were handed over or rewound."""
        if places is None:
            self._seen_ms.clear()
        for place in places or ():
            self._seen_ms.pop(place, None)

    def time(self, partition: int) -> float:
        """How far every input of this partition number has been read, in epoch seconds.

        An input partition read to its end is at the wall clock less END_GRACE_S (a record
        appended since the last fetch is not counted yet); one with a backlog is at its last
        record's timestamp. A timer fires only when all of them passed it.

        "Read to its end" (Runner.read_to_end) is librdkafka's end-of-partition event at the high
        watermark, not position() against it: after an assignment or a seek, position() is
        unknown (-1001) until a record arrives, so a quiet partition looked behind for good and
        its timers never fired after a rebalance. The event also comes past trailing
        transaction markers.
        """
        now = self.clock().timestamp() - END_GRACE_S
        return min(
            now
            if self.read_to_end(topic, partition)
            else self._seen_ms.get((topic, partition), 0) / 1000
            for topic in self.topics
        )
