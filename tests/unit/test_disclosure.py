"""What the audit API shows without the audit:pii scope (golive_audit.domain.disclosure): pure."""

from __future__ import annotations

from typing import Any

from golive_audit.domain.disclosure import (
    MASKED,
    masked,
    personal_data_read,
    shown_without_personal_data,
)
from golive_contracts.events import PersonalDataRead

from tests.factories import NOW, order_placed


def test_personal_fields_are_masked_and_public_ones_kept() -> None:
    placed = order_placed(card="tok_visa_4242")
    shown = masked("OrderPlaced", placed.model_dump(mode="json"))
    assert shown is not None
    for personal in ("customer_id", "email", "shipping_address", "card_token"):
        assert shown[personal] == MASKED
    assert shown["order_id"] == str(placed.order_id)
    assert shown["lines"] == [{"sku": "BOOK-1", "quantity": 1, "unit_price_minor": 2500}]
    assert (shown["currency"], shown["total_minor"], shown["channel"]) == ("EUR", 2500, "api")
    assert shown["envelope"]["correlation_id"] == str(placed.order_id)
    assert "ada@example.com" not in str(shown)


def test_what_the_contracts_do_not_know_is_treated_as_personal() -> None:
    newer: dict[str, Any] = {**order_placed().model_dump(mode="json"), "phone": "+31 6 1234"}
    newer["envelope"] = {**newer["envelope"], "tenant": "acme"}
    shown = masked("OrderPlaced", newer)
    assert shown is not None
    assert shown["phone"] == MASKED
    assert shown["envelope"]["tenant"] == MASKED
    assert masked("OrderShipped", {"to": "Ada", "order_id": "o-1", "gone": None}) == {
        "to": MASKED,
        "order_id": MASKED,
        "gone": None,
    }
    assert masked(None, None) is None


def test_a_recorded_event_loses_its_raw_bytes_and_says_it_is_masked() -> None:
    item = {
        "seq": 7,
        "event_type": "OrderPlaced",
        "payload": order_placed().model_dump(mode="json"),
        "raw_base64": "AAAA",
        "decode_error": None,
    }
    shown = shown_without_personal_data(item)
    assert (shown["raw_base64"], shown["masked"], shown["seq"]) == (None, True, 7)
    assert shown["payload"]["email"] == MASKED
    assert item["raw_base64"] == "AAAA"  # the store's row is not changed


def test_the_record_of_a_read_names_reader_request_and_range() -> None:
    shown = [{"seq": 3}, {"seq": 4}, {"seq": 9}]
    read = personal_data_read(
        reader="alice",
        token_id="jti-1",
        request="GET /orders/o-1/timeline",
        shown=shown,
        journey="o-1",
        now=NOW,
        version="1.0",
    )
    assert isinstance(read, PersonalDataRead)
    assert (read.reader, read.request, read.records) == ("alice", "GET /orders/o-1/timeline", 3)
    assert (read.first_seq, read.last_seq, read.read_at) == (3, 9, NOW)
    assert (read.envelope.correlation_id, read.envelope.producer) == ("o-1", "audit")
    # Its reader is personal: an auditor without audit:pii sees that a read happened, not who.
    shown_read = masked("PersonalDataRead", read.model_dump(mode="json"))
    assert shown_read is not None
    assert (shown_read["reader"], shown_read["records"]) == (MASKED, 3)
    elsewhere = personal_data_read(
        reader="bob", token_id=None, request="GET /events", shown=[], journey=None, now=NOW,
        version="1.0",
    )  # fmt: skip
    assert elsewhere.envelope.correlation_id == str(elsewhere.envelope.event_id)
    assert (elsewhere.first_seq, elsewhere.last_seq) == (None, None)
