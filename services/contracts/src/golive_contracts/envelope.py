"""The envelope every event carries in its own record, so the schema and its gate cover it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from golive_contracts.fields import public

# uuid5 namespace of Golive's deterministic ids (order ids from idempotency keys, event ids).
GOLIVE_NAMESPACE = uuid.UUID("6f1d1c1e-3b8e-5d0a-9a57-0c5e6b1f9a10")


class Record(BaseModel):
    """A pydantic model that is also an Avro record (see golive_contracts.avro)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    avro_namespace: ClassVar[str] = "dev.golive.events"


class Envelope(Record):
    event_id: uuid.UUID = public(
        "Unique, deterministic: derived from the causing event and this type."
    )
    event_type: str = public("The record's type, e.g. OrderPlaced.")
    occurred_at: datetime = public("When the fact happened (UTC, microseconds).")
    correlation_id: str = public("The journey this event belongs to: the order id.")
    causation_id: str | None = public(
        "The event id (or request key) that caused this one.", default=None
    )
    producer: str = public("The service that wrote the event.")
    producer_version: str = public("That service's version.")


def order_id_for(idempotency_key: str) -> uuid.UUID:
    """The order id for a client's Idempotency-Key: a retry names the same order."""
    return uuid.uuid5(GOLIVE_NAMESPACE, f"order:{idempotency_key}")


def event_id_for(causation_id: str, event_type: str) -> uuid.UUID:
    """An event's id from what caused it and its type: a redelivery or replay makes the same id."""
    return uuid.uuid5(GOLIVE_NAMESPACE, f"event:{causation_id}:{event_type}")
