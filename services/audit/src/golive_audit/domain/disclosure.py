"""What the audit API shows of a recorded event, and the record it keeps of showing personal data.

Which fields are personal is what the contracts say (golive_contracts.fields: personal/public):
a caller without the audit:pii scope sees a personal value as MASKED, and no raw bytes (they
hold everything). A field the contracts do not know (a newer writer's), or an event type they
do not know, is masked too: unknown is treated as personal. A caller with the scope sees it
all, and the API records a PersonalDataRead before it answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, get_args

from golive_contracts.envelope import Envelope, Record
from golive_contracts.events import EVENT_TYPES, PersonalDataRead
from golive_contracts.fields import PII_KEY

MASKED = "***"
BY_TYPE: dict[str, type[Record]] = {cls.type_name(): cls for cls in EVENT_TYPES}


def _record_type(annotation: Any) -> type[Record] | None:
    """The Record a field holds, alone, optional or in a list; None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return annotation
    for arg in get_args(annotation):
        found = _record_type(arg)
        if found is not None:
            return found
    return None


def _mask(model: type[Record], value: Any) -> Any:
    if isinstance(value, list):
        return [_mask(model, item) for item in value]
    if not isinstance(value, dict):
        return MASKED if value is not None else None
    shown: dict[str, Any] = {}
    for name, item in value.items():
        info = model.model_fields.get(name)
        extra = info.json_schema_extra if info is not None else None
        if info is None or not isinstance(extra, dict) or extra.get(PII_KEY) is not False:
            shown[name] = MASKED if item is not None else None
            continue
        inner = _record_type(info.annotation)
        shown[name] = _mask(inner, item) if inner is not None and item is not None else item
    return shown


def masked(event_type: str | None, payload: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`payload` with every personal value, and every value not known to be public, as MASKED."""
    if payload is None:
        return None
    model = BY_TYPE.get(event_type or "")
    if model is None:
        return {name: MASKED if value is not None else None for name, value in payload.items()}
    return dict(_mask(model, dict(payload)))


def shown_without_personal_data(item: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded event (as the store returns it) for a caller who may not see personal data."""
    return {
        **item,
        "payload": masked(item.get("event_type"), item.get("payload")),
        "raw_base64": None,
        "masked": True,
    }


def personal_data_read(
    *,
    reader: str,
    token_id: str | None,
    request: str,
    shown: Sequence[Mapping[str, Any]],
    journey: str | None,
    now: datetime,
    version: str,
) -> PersonalDataRead:
    """The record that `reader` was shown `shown` unmasked, in answer to `request`; on the
    journey read (an order's timeline), so that journey's timeline shows who read it."""
    event_id = uuid.uuid4()
    seqs = [int(item["seq"]) for item in shown]
    return PersonalDataRead(
        envelope=Envelope(
            event_id=event_id,
            event_type=PersonalDataRead.type_name(),
            occurred_at=now,
            correlation_id=journey or str(event_id),
            causation_id=token_id,
            producer="audit",
            producer_version=version,
        ),
        reader=reader,
        token_id=token_id,
        request=request,
        records=len(shown),
        first_seq=seqs[0] if seqs else None,
        last_seq=seqs[-1] if seqs else None,
        read_at=now,
    )
