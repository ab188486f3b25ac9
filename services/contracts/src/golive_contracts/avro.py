"""Avro schemas generated from the pydantic models: one source of truth, checked against the repo's files."""

from __future__ import annotations

import json
import types
import typing
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from golive_contracts.envelope import Record
from golive_contracts.events import EVENT_TYPES, Event
from golive_contracts.fields import PII_KEY

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

_PRIMITIVES: dict[Any, Any] = {
    str: "string",
    int: "long",
    bool: "boolean",
    float: "double",
    datetime: {"type": "long", "logicalType": "timestamp-micros"},
    uuid.UUID: {"type": "string", "logicalType": "uuid"},
}


class UnclassifiedFieldError(ValueError):
    """A field that does not say whether it holds personal data."""


def subject_for(topic: str, event: type[Event]) -> str:
    """TopicRecordNameStrategy: several event types share a topic, each with its own subject."""
    return f"{topic}-{event.full_name()}"


def avro_schema(model: type[Record]) -> dict[str, Any]:
    """The Avro record schema of a model; each named type is defined once, then referenced."""
    schema: dict[str, Any] = _record(model, set())
    return schema


def _record(model: type[Record], defined: set[str]) -> Any:
    full_name = f"{model.avro_namespace}.{model.__name__}"
    if full_name in defined:
        return full_name
    defined.add(full_name)
    fields = [_field(model, name, info, defined) for name, info in model.model_fields.items()]
    return {
        "type": "record",
        "name": model.__name__,
        "namespace": model.avro_namespace,
        "fields": fields,
    }


def _field(model: type[BaseModel], name: str, info: FieldInfo, defined: set[str]) -> dict[str, Any]:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if PII_KEY not in extra:
        raise UnclassifiedFieldError(
            f"{model.__name__}.{name} is not classified: declare it with personal() or public()"
        )
    field: dict[str, Any] = {"name": name, "type": _type(info.annotation, defined)}
    if info.description:
        field["doc"] = info.description
    field[PII_KEY] = bool(extra[PII_KEY])
    if not info.is_required():
        field["default"] = _default(model, name, info.default, field["type"])
    return field


def _default(model: type[BaseModel], name: str, default: Any, avro_type: Any) -> Any:
    """A field's default as Avro spells it: null for an optional field, else a primitive value."""
    if isinstance(avro_type, list):  # a union: Avro takes the default from its first branch, null
        if default is not None:
            raise ValueError(f"{model.__name__}.{name}: an optional field's default must be None")
        return None
    if avro_type in ("string", "long", "boolean", "double") and default is not None:
        return default
    raise ValueError(f"{model.__name__}.{name}: default {default!r} has no Avro form here")


def _type(annotation: Any, defined: set[str]) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"unsupported union {annotation}")
        return ["null", _type(members[0], defined)]
    if origin is list:
        (item,) = typing.get_args(annotation)
        return {"type": "array", "items": _type(item, defined)}
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return _record(annotation, defined)
    if annotation in _PRIMITIVES:
        return _PRIMITIVES[annotation]
    raise TypeError(f"no Avro mapping for {annotation}")


def schema_file(topic: str, event: type[Event], version: int) -> Path:
    return SCHEMA_DIR / subject_for(topic, event) / f"v{version}.avsc"


def committed_versions(topic: str, event: type[Event]) -> list[Path]:
    """Every version of a subject kept in the repo, oldest first."""
    folder = SCHEMA_DIR / subject_for(topic, event)
    return sorted(folder.glob("v*.avsc"), key=lambda p: int(p.stem[1:]))


def canonical(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def write_schemas() -> list[Path]:
    """Commit each event's current schema as its next version where it differs from the latest.

    Versions already written are never touched: each is registered, and events written with it
    are on the topics for good.
    """
    written = []
    for event in EVENT_TYPES:
        schema = avro_schema(event)
        versions = committed_versions(event.topic, event)
        if versions and json.loads(versions[-1].read_text()) == schema:
            continue
        path = schema_file(event.topic, event, int(versions[-1].stem[1:]) + 1 if versions else 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(canonical(schema))
        written.append(path)
    return written
