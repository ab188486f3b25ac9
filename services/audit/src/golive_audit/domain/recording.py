"""What the black-box recorder keeps of one record: every record of every event topic and of
their dead-letter topics, raw and decoded, and flagged when it could not be decoded (never
retried forever, never dropped)."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from golive_contracts.events import Event


@dataclass(frozen=True)
class Recorded:
    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: str | None
    event_type: str | None
    event_id: str | None
    correlation_id: str | None
    headers: list[list[str]]
    raw: bytes | None
    payload: dict[str, Any] | None
    decode_error: str | None


def subscription(topics: Sequence[str]) -> str:
    """A regex over the event topics and their dead-letter topics (`<topic>.<group>.dlq`)."""
    alternatives = "|".join(re.escape(t) for t in topics)
    return rf"^({alternatives})(\.[A-Za-z0-9_-]+\.dlq)?$"


def recorded(
    place: tuple[str, int, int],
    timestamp_ms: int,
    key: str | None,
    headers: Sequence[tuple[str, bytes]],
    raw: bytes | None,
    event: Event | None,
    decode_error: str | None,
) -> Recorded:
    """The record at `place` (topic, partition, offset) as kept: decoded when it could be, its
    type then from its `event_type` header, its journey then its key."""
    shown = [[k, _header_value(v)] for k, v in headers]
    header_type = next((v for k, v in shown if k == "event_type"), None)
    topic, partition, offset = place
    return Recorded(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=datetime.fromtimestamp(timestamp_ms / 1000, UTC),
        key=key,
        event_type=event.type_name() if event else header_type,
        event_id=str(event.envelope.event_id) if event else None,
        correlation_id=event.envelope.correlation_id if event else key,
        headers=shown,
        raw=raw,
        payload=event.model_dump(mode="json") if event else None,
        decode_error=decode_error,
    )


def _header_value(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()
