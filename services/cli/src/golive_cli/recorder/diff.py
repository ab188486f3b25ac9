"""What a build emitted for each order, beside what was recorded: the differences that matter.

Fields that legitimately differ between two runs of the same behaviour are declared in VOLATILE,
and only there. Event ids are not volatile: they derive from the causing event (ADR 0005).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import fastavro
from golive_contracts.avro import avro_schema
from golive_contracts.events import BY_FULL_NAME, Event

from golive_cli.recorder.archive import CapturedRecord, EmbeddedSchema
from golive_cli.recorder.wire import split

VOLATILE = frozenset(
    {
        "envelope.occurred_at",  # the wall clock of the run
        "envelope.producer_version",  # the candidate is a new build by definition
    }
)

# order id -> logical topic -> that order's events on the topic, in offset order
Outputs = dict[str, dict[str, list[dict[str, Any]]]]


def decode_captured(record: CapturedRecord, schema: EmbeddedSchema) -> Event:
    """A captured record as this build reads it: writer schema resolved to the current model."""
    cls = BY_FULL_NAME[schema.full_name]
    _, payload = split(record.value)
    writer = fastavro.parse_schema(json.loads(schema.schema))
    reader = fastavro.parse_schema(avro_schema(cls))
    return cls.model_validate(fastavro.schemaless_reader(io.BytesIO(payload), writer, reader))


def comparable(event: Event) -> dict[str, Any]:
    """The event as JSON, its type first, volatile fields removed."""
    data = {"type": event.type_name(), **event.model_dump(mode="json")}
    for path in VOLATILE:
        *parents, leaf = path.split(".")
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return data


def group_outputs(events: Iterable[tuple[str, Event]], orders: set[str]) -> Outputs:
    found: Outputs = {order: {} for order in orders}
    for key, event in events:
        if key in found:
            found[key].setdefault(event.topic, []).append(comparable(event))
    return found


@dataclass(frozen=True)
class FieldChange:
    path: str
    recorded: Any
    candidate: Any


@dataclass(frozen=True)
class Difference:
    order_id: str
    at: str  # e.g. payments[0]
    kind: str  # changed | missing | unexpected
    recorded: str | None
    candidate: str | None
    fields: tuple[FieldChange, ...] = ()

    def line(self) -> str:
        if self.kind == "missing":
            return f"{self.at}: {self.recorded} recorded, not emitted"
        if self.kind == "unexpected":
            return f"{self.at}: {self.candidate} emitted, not recorded"
        changes = "; ".join(f"{c.path}: {c.recorded!r} -> {c.candidate!r}" for c in self.fields)
        return f"{self.at}: {changes}"


def _field_changes(recorded: Any, candidate: Any, path: str = "") -> list[FieldChange]:
    if isinstance(recorded, dict) and isinstance(candidate, dict):
        changes = []
        for name in sorted(recorded.keys() | candidate.keys()):
            sub = f"{path}.{name}" if path else name
            changes += _field_changes(recorded.get(name), candidate.get(name), sub)
        return changes
    return [] if recorded == candidate else [FieldChange(path, recorded, candidate)]


def differences(recorded: Outputs, candidate: Outputs) -> list[Difference]:
    found: list[Difference] = []
    for order in sorted(recorded.keys() | candidate.keys()):
        mine, theirs = recorded.get(order, {}), candidate.get(order, {})
        for topic in sorted(mine.keys() | theirs.keys()):
            was, now = mine.get(topic, []), theirs.get(topic, [])
            for i in range(max(len(was), len(now))):
                at = f"{topic}[{i}]"
                old = was[i] if i < len(was) else None
                new = now[i] if i < len(now) else None
                if old is None:
                    found.append(Difference(order, at, "unexpected", None, _type(new)))
                elif new is None:
                    found.append(Difference(order, at, "missing", _type(old), None))
                elif old != new:
                    changes = tuple(_field_changes(old, new))
                    found.append(Difference(order, at, "changed", _type(old), _type(new), changes))
    return found


def _type(event: Mapping[str, Any] | None) -> str | None:
    return None if event is None else str(event["type"])


@dataclass
class Report:
    capture: str
    orders: int
    terminal: int
    differences: list[Difference] = field(default_factory=list)
    not_terminal: list[str] = field(default_factory=list)
    not_replayable: int = 0
    seconds: float = 0.0
    volatile: list[str] = field(default_factory=lambda: sorted(VOLATILE))

    @property
    def ok(self) -> bool:
        return not self.differences and not self.not_terminal

    def changed_orders(self) -> list[str]:
        return sorted({d.order_id for d in self.differences} | set(self.not_terminal))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "changed_orders": self.changed_orders()}

    def text(self) -> str:
        verdict = "no differences" if self.ok else f"{len(self.changed_orders())} orders differ"
        lines = [
            f"regress {self.capture}: {self.orders} orders replayed, {self.terminal} reached "
            f"their end, {verdict} ({self.seconds:.1f} s)",
            f"  ignored as volatile: {', '.join(self.volatile)}",
        ]
        if self.not_replayable:
            lines.append(
                f"  {self.not_replayable} recorded journeys not replayable "
                "(their OrderPlaced is outside the capture)"
            )
        by_order: dict[str, list[Difference]] = {}
        for diff in self.differences:
            by_order.setdefault(diff.order_id, []).append(diff)
        for order in self.changed_orders():
            suffix = "  (no end within the timeout)" if order in self.not_terminal else ""
            lines.append(f"  order {order}{suffix}")
            lines += [f"    {d.line()}" for d in by_order.get(order, [])]
        return "\n".join(lines)
