"""Desensitisation: deterministic keyed tokens that keep joins, formats and the card's last four."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest
from golive_cli.recorder.desensitise import (
    DEV_KEY,
    DesensitiseError,
    Desensitiser,
    MissingKeyError,
    Tokeniser,
    capture_key,
)
from golive_contracts.avro import avro_schema
from golive_contracts.events import OrderPlaced
from golive_payment.domain.rules import card_last4
from pydantic import EmailStr, TypeAdapter

from tests.factories import order_placed

pytestmark = pytest.mark.unit


def desensitised(event: OrderPlaced, key: bytes = b"k" * 32) -> OrderPlaced:
    """Through Avro and back, as capture does: decode, tokenise, re-encode with the writer schema."""
    schema = avro_schema(OrderPlaced)
    parsed = fastavro.parse_schema(schema)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, event.model_dump(mode="python"))
    decoded = fastavro.schemaless_reader(io.BytesIO(buffer.getvalue()), parsed, None)
    assert isinstance(decoded, dict)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, Desensitiser(Tokeniser(key)).record(schema, decoded))
    again = fastavro.schemaless_reader(io.BytesIO(out.getvalue()), parsed, None)
    return OrderPlaced.model_validate(again)


def test_personal_fields_are_replaced_and_public_ones_kept() -> None:
    original = order_placed(card="tok_visa_0002", total_minor=4200)
    token = desensitised(original)
    for name in ("customer_id", "email", "card_token"):
        assert getattr(token, name) != getattr(original, name)
    assert token.shipping_address.name != original.shipping_address.name
    assert token.shipping_address.country == original.shipping_address.country  # pii: false inside
    assert (token.order_id, token.total_minor, token.lines) == (
        original.order_id,
        original.total_minor,
        original.lines,
    )
    assert token.envelope == original.envelope


def test_formats_that_consumers_validate_are_kept() -> None:
    token = desensitised(order_placed(card="tok_visa_9995"))
    TypeAdapter(EmailStr).validate_python(token.email)
    assert token.email.endswith("@example.com")
    assert card_last4(token.card_token) == "9995"
    assert token.card_token.startswith("tok_") and "visa" not in token.card_token


def test_the_same_value_maps_to_the_same_token_with_the_same_key_only() -> None:
    a, b = order_placed(key="a"), order_placed(key="b")
    assert desensitised(a).customer_id == desensitised(b).customer_id  # joins line up
    tokeniser = Tokeniser(b"k" * 32)
    assert tokeniser.token("c-1") == tokeniser.token("c-1") != Tokeniser(b"x" * 32).token("c-1")
    assert desensitised(a, key=b"other-key-0123456789").customer_id != desensitised(a).customer_id


def test_a_personal_field_that_cannot_be_tokenised_is_refused_not_passed_through() -> None:
    schema: dict[str, Any] = {
        "type": "record",
        "name": "R",
        "fields": [
            {
                "name": "born",
                "type": {"type": "long", "logicalType": "timestamp-micros"},
                "pii": True,
            }
        ],
    }
    with pytest.raises(DesensitiseError, match="timestamp-micros"):
        Desensitiser(Tokeniser(DEV_KEY)).record(schema, {"born": 1})
    assert json.dumps(schema)  # unchanged schema is still plain JSON


def test_a_key_is_required_unless_the_dev_key_is_chosen() -> None:
    with pytest.raises(MissingKeyError, match="GOLIVE_CAPTURE_KEY"):
        capture_key(None, dev=False)
    with pytest.raises(MissingKeyError, match="too short"):
        capture_key("short", dev=False)
    assert capture_key(None, dev=True) == (DEV_KEY, "dev")
    key, key_id = capture_key("a-real-secret-of-enough-bytes", dev=False)
    assert key == b"a-real-secret-of-enough-bytes" and len(key_id) == 12
