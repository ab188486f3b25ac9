"""One source of truth: the committed Avro schemas are what the pydantic models generate."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from golive_contracts.avro import (
    UnclassifiedFieldError,
    avro_schema,
    committed_versions,
    subject_for,
)
from golive_contracts.envelope import Record
from golive_contracts.events import EVENT_TYPES, Event, OrderPlaced
from golive_contracts.fields import public
from golive_contracts.money import exponent, major_to_minor

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("event", EVENT_TYPES, ids=lambda e: e.__name__)
def test_committed_schema_matches_the_model(event: type[Event]) -> None:
    versions = committed_versions(event.topic, event)
    assert versions, f"no schema committed for {event.__name__}: run `golive schemas write`"
    assert json.loads(versions[-1].read_text()) == avro_schema(event), (
        f"{event.__name__} drifted from {versions[-1]}: the model changed without a new schema version (`golive schemas write`)"
    )


def _fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["fields"]}


@pytest.mark.parametrize("event", EVENT_TYPES, ids=lambda e: e.__name__)
def test_every_field_is_classified_in_the_schema(event: type[Event]) -> None:
    def walk(schema: Any) -> None:
        if isinstance(schema, dict) and schema.get("type") == "record":
            for field in schema["fields"]:
                assert isinstance(field.get("pii"), bool), f"{schema['name']}.{field['name']}"
                walk(field["type"])
        elif isinstance(schema, dict):
            walk(schema.get("items"))
        elif isinstance(schema, list):
            for member in schema:
                walk(member)

    walk(avro_schema(event))


def test_personal_data_is_marked_as_such() -> None:
    fields = _fields(avro_schema(OrderPlaced))
    assert {name for name, f in fields.items() if f["pii"]} == {
        "customer_id",
        "email",
        "shipping_address",
        "card_token",
    }
    address = _fields(fields["shipping_address"]["type"])
    assert address["name"]["pii"] and address["line1"]["pii"] and not address["country"]["pii"]


def test_an_unclassified_field_cannot_become_a_schema() -> None:
    class Careless(Record):
        avro_namespace: ClassVar[str] = "dev.golive.test"
        nickname: str
        flag: bool = public("classified")

    with pytest.raises(UnclassifiedFieldError, match=r"Careless\.nickname is not classified"):
        avro_schema(Careless)


def test_the_envelope_is_in_every_record() -> None:
    for event in EVENT_TYPES:
        envelope = _fields(avro_schema(event))["envelope"]["type"]
        assert envelope == "dev.golive.events.Envelope" or envelope["name"] == "Envelope"
        if isinstance(envelope, dict):
            assert set(_fields(envelope)) == {
                "event_id",
                "event_type",
                "occurred_at",
                "correlation_id",
                "causation_id",
                "producer",
                "producer_version",
            }


def test_subjects_let_several_event_types_share_a_topic() -> None:
    subjects = {subject_for(e.topic, e) for e in EVENT_TYPES}
    assert len(subjects) == len(EVENT_TYPES)
    assert subject_for("orders", OrderPlaced) == "orders-dev.golive.orders.OrderPlaced"


def test_money_uses_the_currency_exponent() -> None:
    assert exponent("EUR") == 2
    assert exponent("JPY") == 0
    assert exponent("BHD") == 3
    assert major_to_minor(10, "EUR") == 1000
    with pytest.raises(ValueError, match="not an ISO 4217"):
        exponent("XXY")
    with pytest.raises(ValueError, match="no minor unit"):
        exponent("XAU")
