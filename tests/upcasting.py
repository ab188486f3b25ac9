"""Records written before OrderPlaced v2: the committed fixture, and more encoded with v1 itself."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import fastavro
from golive_contracts.avro import SCHEMA_DIR, avro_schema
from golive_contracts.events import OrderPlaced

FIXTURE = Path(__file__).parent / "fixtures" / "events" / "OrderPlaced.v1.json"
V1_FILE = SCHEMA_DIR / "orders-dev.golive.orders.OrderPlaced" / "v1.avsc"


def v1_schema_text() -> str:
    return V1_FILE.read_text()


def fixture_bytes() -> bytes:
    """The Avro body of an OrderPlaced as v1 wrote it (schemaless: no wire header)."""
    return base64.b64decode(json.loads(FIXTURE.read_text())["avro_base64"])


def encode_v1(event: OrderPlaced) -> bytes:
    """An event as a build from before v2 would have written it: v1's fields, v1's schema."""
    record: dict[str, Any] = event.model_dump(mode="python", exclude={"channel"})
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(json.loads(v1_schema_text())), record)
    return buffer.getvalue()


def read_as_current(body: bytes) -> OrderPlaced:
    """Decode a v1 body the way the serde does: writer schema v1, reader the current model's."""
    writer = fastavro.parse_schema(json.loads(v1_schema_text()))
    reader = fastavro.parse_schema(avro_schema(OrderPlaced))
    return OrderPlaced.model_validate(fastavro.schemaless_reader(io.BytesIO(body), writer, reader))
