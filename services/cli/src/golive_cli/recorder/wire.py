"""Records in the registry's wire format: split the schema id off, decode, re-encode."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka.schema_registry.error import SchemaRegistryError
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_eventing.serde import MAGIC, REGISTRY_UNREACHABLE

from golive_cli.recorder.archive import EmbeddedSchema
from golive_cli.recorder.rewrite import UndecodableError

HEADER = struct.Struct(">bI")


class RegistryError(RuntimeError):
    """The registry could not be asked (or refused a schema): the command stops, naming it."""


@dataclass(frozen=True)
class WriterSchema:
    id: int
    full_name: str
    raw: dict[str, Any]
    parsed: Any
    text: str

    @classmethod
    def from_text(cls, schema_id: int, text: str) -> WriterSchema:
        raw = json.loads(text)
        namespace, name = raw.get("namespace", ""), raw.get("name", "")
        full_name = name if "." in name or not namespace else f"{namespace}.{name}"
        return cls(schema_id, full_name, raw, fastavro.parse_schema(raw), text)

    def embedded(self) -> EmbeddedSchema:
        return EmbeddedSchema(self.id, self.full_name, self.text)

    def decode(self, payload: bytes) -> Any:
        try:
            return fastavro.schemaless_reader(io.BytesIO(payload), self.parsed, None)
        except (EOFError, ValueError, IndexError, struct.error, UnicodeDecodeError) as exc:
            raise UndecodableError(f"does not decode as {self.full_name}: {exc}") from exc


def schema_id_of(value: bytes | None) -> int:
    """The schema id of a record in the registry's wire format (magic byte, id, Avro)."""
    if value is None or len(value) < HEADER.size:
        raise UndecodableError("too short for the wire format (no magic byte and schema id)")
    magic, schema_id = HEADER.unpack_from(value)
    if magic != MAGIC:
        raise UndecodableError(f"magic byte {magic} is not {MAGIC}: not the registry's format")
    return int(schema_id)


def split(value: bytes | None) -> tuple[int, bytes]:
    """(schema id, Avro payload) of a wire-format record."""
    schema_id = schema_id_of(value)
    assert value is not None
    return schema_id, value[HEADER.size :]


def with_schema_id(value: bytes, schema_id: int) -> bytes:
    return HEADER.pack(MAGIC, schema_id) + value[HEADER.size :]


class SourceSchemas:
    """Writer schemas by id from the source registry, each fetched once."""

    def __init__(self, connection: Connection) -> None:
        self.url = connection.schema_registry_url
        self.registry = clients.registry(connection)
        self._by_id: dict[int, WriterSchema | None] = {}

    def get(self, schema_id: int) -> WriterSchema:
        if schema_id not in self._by_id:
            try:
                found = self.registry.get_schema(schema_id)
                self._by_id[schema_id] = WriterSchema.from_text(schema_id, found.schema_str or "")
            except SchemaRegistryError as exc:
                if exc.http_status_code != 404:
                    raise RegistryError(f"registry {self.url}: {exc}") from exc
                self._by_id[schema_id] = None
            except REGISTRY_UNREACHABLE as exc:
                raise RegistryError(f"registry {self.url} does not answer: {exc}") from exc
        schema = self._by_id[schema_id]
        if schema is None:
            raise UndecodableError(f"schema id {schema_id} is unknown to {self.url}")
        return schema

    def used(self) -> list[WriterSchema]:
        return [s for s in self._by_id.values() if s is not None]
