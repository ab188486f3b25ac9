"""Poison records: one that cannot be decoded, or whose handler keeps failing, goes to
`<topic>.<group>.dlq` (golive_contracts.topology.dlq_topic) unchanged, with the error, source
topic, partition, offset and group in headers, and the consumer goes on. Transient faults never
get here (golive_eventing.errors.TRANSIENT)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Producer
from golive_contracts.topology import dlq_topic

from golive_eventing.producer import produce_bounded
from golive_eventing.records import Consumed

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


class Attempts:
    """How often each record's handler failed, until its batch commits or it is dead-lettered."""

    def __init__(self) -> None:
        self._failures: dict[tuple[str, int, int], int] = {}
        self._errors: dict[tuple[str, int, int], str] = {}

    def failed(self, record: Consumed, exc: BaseException) -> None:
        self._failures[record.position] = self._failures.get(record.position, 0) + 1
        self._errors[record.position] = f"{type(exc).__name__}: {exc}"

    def poison(self, record: Consumed) -> str | None:
        """Why a record must be dead-lettered instead of handled, or None to handle it."""
        if record.skip:
            return None
        if record.event is None:
            return record.error or "undecodable"
        if self._failures.get(record.position, 0) >= MAX_ATTEMPTS:
            return f"handler failed {MAX_ATTEMPTS} times: {self._errors[record.position]}"
        return None

    def forget(self, batch: Sequence[Consumed]) -> None:
        for record in batch:
            self._failures.pop(record.position, None)
            self._errors.pop(record.position, None)


def dead_letter(
    producer: Producer, record: Consumed, group: str, reason: str, topic: str | None = None
) -> None:
    """Produce the record, unchanged, to its group's dead-letter topic (in the producer's open
    transaction, for a processor): `topic`, or <its topic>.<group>.dlq. A version slot names
    its own (<routed topic>.<slot group>.dlq: topology.Names.dead_letter_topics)."""
    headers = [
        *record.headers,
        ("dlq.error", reason.encode()),
        ("dlq.source.topic", record.topic.encode()),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
        ("dlq.group", group.encode()),
    ]
    log.error("%s: dead-lettering %s: %s", group, record.position, reason)
    produce_bounded(
        producer,
        topic=topic or dlq_topic(record.topic, group),
        key=record.key.encode() if record.key is not None else None,
        value=record.value,
        headers=headers,
    )
