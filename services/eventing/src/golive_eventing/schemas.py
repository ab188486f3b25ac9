"""Registering the contracts' schemas: done by the project (`golive schemas register`), never by services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from golive_contracts.avro import committed_versions, subject_for
from golive_contracts.events import EVENT_TYPES

COMPATIBILITY = "FULL_TRANSITIVE"


@dataclass(frozen=True)
class Registered:
    subject: str
    version_file: str
    schema_id: int


def register_all(registry: SchemaRegistryClient, topics: Mapping[str, str]) -> list[Registered]:
    """Register every committed version of every event's schema, oldest first, under its subject.

    Each subject is set to FULL_TRANSITIVE before its first version goes in: rollbacks and shadow
    runs put old readers on new data. Registering an existing version is a no-op.
    """
    done = []
    for event in EVENT_TYPES:
        subject = subject_for(topics[event.topic], event)
        registry.set_compatibility(subject_name=subject, level=COMPATIBILITY)
        for path in committed_versions(event.topic, event):
            schema_id = registry.register_schema(subject, Schema(path.read_text(), "AVRO"))
            done.append(Registered(subject, path.name, schema_id))
    return done
