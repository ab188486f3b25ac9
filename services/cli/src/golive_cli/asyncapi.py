"""The event interface as an AsyncAPI 3 document, generated from the contracts, the topology and
infra/topics.yaml.

What AsyncAPI calls operations are Golive's writers (each topic's writer) and its consumer groups
(golive_contracts.topology); channels carry topics.yaml's sizing and retention.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml
from golive_contracts import topology
from golive_contracts.avro import committed_versions, subject_for
from golive_contracts.events import EVENT_TYPES, Event
from golive_contracts.topology import Group, dlq_topic
from golive_platform.topics import Catalogue, TopicSpec, resolve

AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
KAFKA_BINDING = "0.5.0"
DLQ_SUFFIX = ".dlq"
STATE_SUFFIX = ".state"
NAMES = topology.Names()


def document(
    catalogue: Catalogue,
    events: Sequence[type[Event]] = EVENT_TYPES,
    groups: Sequence[Group] = topology.GROUPS,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document; the same inputs always give the same document."""
    production = {spec.name: spec for spec in resolve(catalogue, "production")}
    described = {topic.name: topic.description for topic in catalogue.topics}
    by_topic: dict[str, list[type[Event]]] = {}
    for event in events:
        by_topic.setdefault(event.topic, []).append(event)
    channels: dict[str, Any] = {}
    for name, spec in production.items():
        # A dead-letter, slot or shadow topic carries its event topic's records; a changelog
        # carries state, no events.
        source = name if name.endswith(STATE_SUFFIX) else name.split(".", 1)[0]
        if source not in by_topic:
            continue  # the registry's own topics carry no events of ours
        channels[_id(name)] = _channel(spec, described[name], by_topic[source])
    operations: dict[str, Any] = {}
    for topic, carried in by_topic.items():
        owner = topology.topic(topic).writer
        operations[f"{owner}Sends{_cap(_id(topic))}"] = {
            "action": "send",
            "title": f"{owner} writes {topic}",
            "summary": f"The {owner} service is the one writer of {topic}.",
            "channel": {"$ref": f"#/channels/{_id(topic)}"},
            "messages": [_message_ref(topic, e) for e in carried],
        }
    for sub in groups:
        for topic, read in zip(sub.reads, NAMES.inputs(sub), strict=True):
            carried = [
                e for e in by_topic[topic] if not sub.handles or e.type_name() in sub.handles
            ]
            operations[f"{_camel(sub.name)}Receives{_cap(_id(read))}"] = {
                "action": "receive",
                "title": f"{sub.service} ({sub.name}) reads {read}",
                "summary": sub.description,
                "channel": {"$ref": f"#/channels/{_id(read)}"},
                "messages": [_message_ref(read, e) for e in carried],
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [sub.name]},
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
            }
            operations |= _routing(sub, carried, by_topic)
            dlq = dlq_topic(topic, sub.name)
            if sub.dead_letters and _id(dlq) in channels:
                operations[f"{_camel(sub.name)}DeadLetters{_cap(_id(topic))}"] = {
                    "action": "send",
                    "title": f"{sub.name} dead-letters {topic}",
                    "summary": "Records it could not process after bounded retries, unchanged, "
                    "with error, source topic, partition and offset in headers.",
                    "channel": {"$ref": f"#/channels/{_id(dlq)}"},
                }
        if not sub.dead_letters:  # the recorder also reads every dead-letter topic
            for channel_id, channel in channels.items():
                if channel["address"].endswith(DLQ_SUFFIX):
                    operations[f"{_camel(sub.name)}Receives{_cap(channel_id)}"] = {
                        "action": "receive",
                        "channel": {"$ref": f"#/channels/{channel_id}"},
                        "bindings": {
                            "kafka": {
                                "groupId": {"type": "string", "enum": [sub.name]},
                                "bindingVersion": KAFKA_BINDING,
                            }
                        },
                    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Golive events",
            "version": "1.0.0",
            "description": (
                "The event interface of Golive's order, payment and audit services. Generated "
                "by `golive schemas asyncapi` from the contracts (services/contracts) and "
                "infra/topics.yaml; do not edit by hand. Values are Avro in the schema "
                "registry's wire format (magic byte, schema id); subjects follow "
                "TopicRecordNameStrategy (<topic>-<record full name>) and are FULL_TRANSITIVE. "
                "Every field carries `pii`: whether it holds personal data. Keys are the order "
                "id; W3C traceparent travels in the headers."
            ),
        },
        "defaultContentType": "application/vnd.apache.avro+binary",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "`make run`: one KRaft node; the registry at "
                "http://127.0.0.1:8081/apis/ccompat/v7.",
            },
            "production": {
                "host": "{bootstrap}",
                "protocol": "kafka-secure",
                "description": "Any Kafka (e.g. Confluent Cloud) with its schema registry.",
                "variables": {
                    "bootstrap": {"default": "broker:9092", "description": "Bootstrap servers."}
                },
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": {e.type_name(): _message(e) for e in events}},
    }


def render(doc: dict[str, Any]) -> str:
    header = "# Generated by `golive schemas asyncapi` from the contracts and infra/topics.yaml.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def _channel(spec: TopicSpec, description: str, carried: Sequence[type[Event]]) -> dict[str, Any]:
    topic_config: dict[str, Any] = {
        "retention.ms": int(spec.configs["retention.ms"]),
        "cleanup.policy": spec.configs["cleanup.policy"].split(","),
    }
    return {
        "address": spec.name,
        "description": f"{description} Written by {spec.owner}.".lstrip(),
        "messages": {
            e.type_name(): {"$ref": f"#/components/messages/{e.type_name()}"} for e in carried
        },
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "partitions": spec.partitions,
                "replicas": spec.replication_factor,
                "topicConfiguration": topic_config,
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def _message(event: type[Event]) -> dict[str, Any]:
    versions = committed_versions(event.topic, event)
    schema = json.loads(versions[-1].read_text())  # the latest committed version
    return {
        "name": event.type_name(),
        "title": event.type_name(),
        "summary": f"Subject {subject_for(event.topic, event)}, version {len(versions)} "
        f"(every version: {', '.join(p.stem for p in versions)}).",
        "contentType": "application/vnd.apache.avro+binary",
        "headers": {
            "type": "object",
            "properties": {"traceparent": {"type": "string", "description": "W3C trace context."}},
        },
        "payload": {"schemaFormat": AVRO_FORMAT, "schema": schema},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "format": "uuid", "description": "The order id."},
                "schemaIdLocation": "payload",
                "schemaIdPayloadEncoding": "confluent",
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def _routing(
    sub: Group, carried: Sequence[type[Event]], by_topic: dict[str, list[type[Event]]]
) -> dict[str, Any]:
    """A router's sends to each version slot; the shadow topic a slot writes (ADR 0012)."""
    found: dict[str, Any] = {}
    if sub.kind is topology.Kind.ROUTER:
        for slot_topic in (t for ts in NAMES.slot_inputs(sub).values() for t in ts):
            found[f"{_camel(sub.name)}Sends{_cap(_id(slot_topic))}"] = {
                "action": "send",
                "title": f"{sub.name} hands {slot_topic} its records",
                "summary": "Each key to one version slot, pinned for good (ADR 0012).",
                "channel": {"$ref": f"#/channels/{_id(slot_topic)}"},
                "messages": [_message_ref(slot_topic, e) for e in carried],
            }
    for shadow in NAMES.shadow_topics(sub) if sub.slot == topology.SLOTS[0] else []:
        written = shadow.split(".", 1)[0]
        found[f"{_camel(sub.service)}SendsShadow{_cap(_id(written))}"] = {
            "action": "send",
            "title": f"the {sub.service} version in shadow writes {shadow}",
            "summary": "What a candidate decides on the router's shadow copies, for the "
            f"comparison with {written}; never read as real.",
            "channel": {"$ref": f"#/channels/{_id(shadow)}"},
            "messages": [_message_ref(shadow, e) for e in by_topic[written]],
        }
    return found


def _message_ref(topic: str, event: type[Event]) -> dict[str, str]:
    return {"$ref": f"#/channels/{_id(topic)}/messages/{event.type_name()}"}


def _id(topic: str) -> str:
    """A channel id from a topic name: orders.payment.dlq -> ordersPaymentDlq."""
    return _camel(topic.replace(".", "-"))


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]
