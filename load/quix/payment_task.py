"""The payment task on Quix Streams, as a Python team would write it instead of the project's
processor: OrderPlaced (Avro, through the registry) in, a payment decision (Avro, the same
committed schema) out, exactly-once, one decision per order kept in state. make bench-payment
(load/bench_payment.py) runs it beside the project's payment slot on the same input.

Settings come from the environment the bench gives it: KAFKA_BOOTSTRAP_SERVERS,
KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, SCHEMA_REGISTRY_URL, and the arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from confluent_kafka.schema_registry import topic_record_subject_name_strategy
from quixstreams import Application, State
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models.serializers.avro import AvroDeserializer, AvroSerializer
from quixstreams.models.serializers.schema_registry import (
    SchemaRegistryClientConfig,
    SchemaRegistrySerializationConfig,
)

NAMESPACE = uuid.UUID("5f2b7c1e-4d0a-4a8e-9c1f-0b6d2f3e4a51")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--schema", required=True, help="the output event's Avro schema (JSON)")
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()

    registry = SchemaRegistryClientConfig(url=os.environ["SCHEMA_REGISTRY_URL"])
    app = Application(
        broker_address=ConnectionConfig(
            bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            security_protocol=os.environ.get("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
            sasl_mechanism=os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            sasl_username=os.environ["KAFKA_SASL_USERNAME"],
            sasl_password=os.environ["KAFKA_SASL_PASSWORD"],
        ),
        consumer_group=args.group,
        processing_guarantee="exactly-once",
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    orders = app.topic(
        args.input,
        key_deserializer="string",
        value_deserializer=AvroDeserializer(schema_registry_client_config=registry),
    )
    with open(args.schema) as handle:
        schema = json.load(handle)
    payments = app.topic(
        args.output,
        key_serializer="string",
        value_serializer=AvroSerializer(
            schema,
            schema_registry_client_config=registry,
            schema_registry_serialization_config=SchemaRegistrySerializationConfig(
                auto_register_schemas=False,
                subject_name_strategy=topic_record_subject_name_strategy,
            ),
        ),
    )

    def decide(order: dict[str, Any], state: State) -> dict[str, Any] | None:
        """Authorise once per order (a redelivered order is not paid twice)."""
        if state.get("decided"):
            return None
        state.set("decided", True)
        envelope = order["envelope"]
        cause = str(envelope["event_id"])
        return {
            "envelope": {
                "event_id": uuid.uuid5(NAMESPACE, cause),
                "event_type": "PaymentAuthorized",
                "occurred_at": datetime.now(UTC),
                "correlation_id": envelope["correlation_id"],
                "causation_id": cause,
                "producer": "payment-quix",
                "producer_version": "bench",
            },
            "order_id": order["order_id"],
            "payment_id": uuid.uuid5(NAMESPACE, f"payment:{cause}"),
            "amount_minor": order["total_minor"],
            "currency": order["currency"],
        }

    app.dataframe(orders).apply(decide, stateful=True).filter(lambda x: x is not None).to_topic(
        payments
    )
    app.run()


if __name__ == "__main__":
    main()
