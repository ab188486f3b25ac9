"""Events cross the wire in the registry's format; poison is recognised as such, never as an outage."""

from __future__ import annotations

import io
import json
import struct
import uuid

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema
from golive_contracts.avro import avro_schema, subject_for
from golive_contracts.events import OrderPlaced
from golive_eventing import clients
from golive_eventing.serde import (
    EventSerde,
    PoisonRecordError,
    RegistryUnavailableError,
    SchemaNotRegisteredError,
)
from golive_platform.testing import Cluster

from tests.factories import order_placed
from tests.helpers import Topics

pytestmark = pytest.mark.integration


@pytest.fixture
def serde(cluster: Cluster, topics: Topics) -> EventSerde:
    return EventSerde(clients.registry(cluster.connection), topics.as_map())


def test_round_trip_in_the_confluent_wire_format(
    serde: EventSerde, cluster: Cluster, topics: Topics
) -> None:
    event = order_placed()
    data = serde.serialize(event)
    registered = clients.registry(cluster.connection).get_latest_version(
        subject_for(topics.orders, OrderPlaced)
    )
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert (magic, schema_id) == (0, registered.schema_id)
    assert serde.deserialize(data) == event


def test_a_record_written_by_an_older_schema_reads_as_the_current_model(
    serde: EventSerde, cluster: Cluster, topics: Topics
) -> None:
    """The writer's schema resolved to the reader's: a field added since gets its default, one
    removed since is dropped. (A record of the current schema is read without resolving.)"""
    older = avro_schema(OrderPlaced)
    older["fields"] = [f for f in older["fields"] if f["name"] != "channel"]
    older["fields"].append({"name": "legacy_source", "type": "string", "default": ""})
    registry = clients.registry(cluster.connection)
    subject = f"older-{uuid.uuid4().hex}"
    older_id = registry.register_schema(subject, Schema(json.dumps(older), "AVRO"))
    event = order_placed()
    record = event.model_dump(mode="python")
    del record["channel"]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(older), record | {"legacy_source": "x"})
    read = serde.deserialize(struct.pack(">bI", 0, older_id) + body.getvalue())
    assert isinstance(read, OrderPlaced)
    assert read.channel == "api"
    assert read == event
    assert serde.deserialize(serde.serialize(event)) == event


def test_an_unknown_schema_id_is_waited_out_then_taken_for_poison(
    cluster: Cluster, topics: Topics
) -> None:
    """A registry that restarts answers 404 for ids it has not read back yet: that must not
    dead-letter a good record. One that stays unknown past the grace is poison."""
    now = [0.0]
    serde = EventSerde(
        clients.registry(cluster.connection),
        topics.as_map(),
        unknown_schema_grace_s=30,
        clock=lambda: now[0],
    )
    unknown = b"\x00" + (2**31 - 7).to_bytes(4, "big") + serde.serialize(order_placed())[5:]
    with pytest.raises(RegistryUnavailableError, match=r"does not know schema id \d+ \(yet"):
        serde.deserialize(unknown)
    now[0] = 29.0
    with pytest.raises(RegistryUnavailableError, match="poison if it still does not in 1 s"):
        serde.deserialize(unknown)
    now[0] = 30.0
    with pytest.raises(PoisonRecordError, match="unknown schema id"):
        serde.deserialize(unknown)


def test_poison_records_are_named_for_what_they_are(serde: EventSerde) -> None:
    good = serde.serialize(order_placed())
    with pytest.raises(PoisonRecordError, match="magic byte"):
        serde.deserialize(b"{json: not ours}")
    with pytest.raises(PoisonRecordError, match="too short"):
        serde.deserialize(b"\x00\x00")
    with pytest.raises(PoisonRecordError, match="cannot decode OrderPlaced"):
        serde.deserialize(good[: len(good) // 2])
    with pytest.raises(PoisonRecordError, match="too short"):
        serde.deserialize(None)


def test_services_never_register_schemas(cluster: Cluster, unique: str) -> None:
    unregistered = EventSerde(
        clients.registry(cluster.connection),
        {"orders": f"orders.nowhere.{unique}", "payments": f"payments.nowhere.{unique}"},
    )
    with pytest.raises(SchemaNotRegisteredError, match="golive schemas register"):
        unregistered.serialize(order_placed())
    subjects = clients.registry(cluster.connection).get_subjects()
    assert not [s for s in subjects if unique in s]
