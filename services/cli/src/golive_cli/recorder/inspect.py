"""golive inspect: a window's events as a readable timeline, from Kafka or the audit service.

Personal fields are masked unless asked otherwise: the marks come from the writer schema (Kafka)
or the current contract (audit), the same marks desensitisation reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from golive_contracts.avro import avro_schema
from golive_contracts.events import EVENT_TYPES
from golive_eventing.clients import Connection

from golive_cli.recorder.capture import CaptureOptions, Window, capture
from golive_cli.recorder.desensitise import Desensitiser, Tokeniser
from golive_cli.recorder.wire import WriterSchema, split

MASK = "***"
BY_TYPE = {cls.type_name(): cls for cls in EVENT_TYPES}


class _Mask(Tokeniser):
    def __init__(self) -> None:
        super().__init__(b"unused")

    def _token(self, value: str) -> str:
        return MASK

    def scalar(self, avro_type: str, value: Any) -> Any:
        return MASK


@dataclass(frozen=True)
class Row:
    timestamp: datetime
    where: str
    key: str | None
    event_type: str
    payload: dict[str, Any] | None

    def line(self) -> str:
        stamp = self.timestamp.astimezone(UTC).isoformat(timespec="milliseconds")
        facts = {k: v for k, v in (self.payload or {}).items() if k != "envelope"}
        detail = json.dumps(facts, separators=(",", ":"), default=str) if facts else ""
        return f"{stamp}  {self.where:<22} {self.key or '-':<36}  {self.event_type:<18} {detail}"


def _matches(row: Row, key: str | None, correlation_id: str | None) -> bool:
    if key is not None and row.key != key:
        return False
    if correlation_id is not None:
        envelope = (row.payload or {}).get("envelope") or {}
        return bool(envelope.get("correlation_id") == correlation_id)
    return True


def from_kafka(
    source: Connection,
    topics: Sequence[str],
    window: Window,
    *,
    key: str | None = None,
    correlation_id: str | None = None,
    show_personal: bool = False,
) -> list[Row]:
    _, schemas, records = capture(
        source, topics, window, None, CaptureOptions(complete_journeys=False)
    )
    by_id: dict[int, WriterSchema] = {s.id: s for s in schemas}
    masker = None if show_personal else Desensitiser(_Mask())
    rows = []
    for record in records:
        schema = by_id[record.schema_id]
        payload = schema.decode(split(record.value)[1])
        if masker is not None:
            payload = masker.record(schema.raw, payload)
        rows.append(
            Row(
                datetime.fromtimestamp(record.timestamp_ms / 1000, UTC),
                f"{record.topic}[{record.partition}]@{record.offset}",
                record.key_str(),
                schema.full_name.rsplit(".", 1)[-1],
                payload,
            )
        )
    return [r for r in rows if _matches(r, key, correlation_id)]


def from_audit(
    audit_url: str,
    headers: dict[str, str],
    window: Window,
    *,
    key: str | None = None,
    correlation_id: str | None = None,
    show_personal: bool = False,
) -> list[Row]:
    params: dict[str, Any] = {
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "limit": 1000,
        "cursor": 0,
    }
    if key is not None:
        params["key"] = key
    if correlation_id is not None:
        params["correlation_id"] = correlation_id
    rows = []
    with httpx.Client(base_url=audit_url, timeout=10, headers=headers) as client:
        while True:
            page = client.get("/events", params=params)
            page.raise_for_status()
            body = page.json()
            for item in body["items"]:
                rows.append(_audit_row(item, show_personal))
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
    return sorted(rows, key=lambda r: r.timestamp)


def _audit_row(item: dict[str, Any], show_personal: bool) -> Row:
    payload = item["payload"]
    event_type = item["event_type"] or "(undecodable)"
    cls = BY_TYPE.get(event_type)
    # The API masks for a token without audit:pii; a token with it is masked here unless asked.
    if payload is not None and cls is not None and not show_personal and not item.get("masked"):
        payload = Desensitiser(_Mask()).record(avro_schema(cls), payload)
    return Row(
        datetime.fromisoformat(item["timestamp"]),
        f"{item['topic']}[{item['partition']}]@{item['offset']}",
        item["key"],
        event_type,
        payload,
    )
