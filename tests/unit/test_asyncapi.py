"""docs/asyncapi.yaml is what the contracts, the topology and topics.yaml generate."""

from __future__ import annotations

from pathlib import Path

import pytest
from golive_cli.asyncapi import document, render
from golive_contracts.events import EVENT_TYPES
from golive_platform.topics import load_catalogue

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(ROOT / "infra" / "topics.yaml")


def test_the_committed_document_has_not_drifted() -> None:
    committed = ROOT / "docs" / "asyncapi.yaml"
    assert committed.read_text() == render(document(CATALOGUE)), (
        "docs/asyncapi.yaml is out of date: run `golive schemas asyncapi` and commit it"
    )


def test_every_event_is_a_message_on_its_topic_with_its_latest_schema() -> None:
    doc = document(CATALOGUE)
    for event in EVENT_TYPES:
        message = doc["components"]["messages"][event.type_name()]
        assert message["payload"]["schema"]["name"] == event.__name__
        (channel,) = [c for c in doc["channels"].values() if c["address"] == event.topic]
        assert event.type_name() in channel["messages"]
    placed = doc["components"]["messages"]["OrderPlaced"]["payload"]["schema"]
    assert placed["fields"][-1]["name"] == "channel"  # v2


def test_writers_and_readers_follow_the_catalogue() -> None:
    operations = document(CATALOGUE)["operations"]
    assert operations["orderSendsOrders"]["action"] == "send"
    assert operations["paymentSendsPayments"]["action"] == "send"
    routed = operations["paymentRouterReceivesOrders"]
    assert routed["messages"] == [{"$ref": "#/channels/orders/messages/OrderPlaced"}]
    assert routed["bindings"]["kafka"]["groupId"]["enum"] == ["payment-router"]
    handed = operations["paymentRouterSendsOrdersPaymentBlue"]
    assert handed["channel"]["$ref"] == "#/channels/ordersPaymentBlue"
    slot_reads = operations["paymentBlueReceivesOrdersPaymentBlue"]
    assert slot_reads["messages"] == [{"$ref": "#/channels/ordersPaymentBlue/messages/OrderPlaced"}]
    assert slot_reads["bindings"]["kafka"]["groupId"]["enum"] == ["payment-blue"]
    dlq = operations["paymentBlueDeadLettersOrders"]["channel"]["$ref"]
    assert dlq == "#/channels/ordersPaymentBlueDlq"
    shadow = operations["paymentSendsShadowPayments"]["channel"]["$ref"]
    assert shadow == "#/channels/paymentsShadow"
