"""The real registry enforces FULL_TRANSITIVE on our subjects, and the gate agrees with its verdicts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from golive_cli.main import app
from golive_cli.schema_check import check_against_registry
from golive_contracts.avro import avro_schema, subject_for
from golive_contracts.events import EVENT_TYPES, Event, OrderPlaced, PaymentDeclined
from golive_contracts.fields import personal, public
from golive_contracts.topology import Names
from golive_eventing import clients
from golive_eventing.schemas import register_all
from golive_platform.testing import Cluster
from typer.testing import CliRunner

from tests.schema_changes import changed

pytestmark = pytest.mark.integration


@pytest.fixture
def subjects(cluster: Cluster, unique: str) -> dict[str, str]:
    """Fresh subjects of this test's own, set up the way `golive schemas register` sets them up."""
    topics = dict(Names.suffixed(f"gate-{unique}").topics)
    register_all(clients.registry(cluster.connection), topics)
    return topics


def _register(cluster: Cluster, subject: str, event: type[Event]) -> Any:
    client = clients.registry(cluster.connection)
    return client.register_schema(subject, Schema(json.dumps(avro_schema(event)), "AVRO"))


def test_register_sets_full_transitive_on_every_subject(
    cluster: Cluster, subjects: dict[str, str]
) -> None:
    client = clients.registry(cluster.connection)
    for event in EVENT_TYPES:
        subject = subject_for(subjects[event.topic], event)
        assert client.get_compatibility(subject) == "FULL_TRANSITIVE", subject
    placed = subject_for(subjects["orders"], OrderPlaced)
    assert client.get_versions(placed) == [1, 2]  # every committed version, oldest first


INCOMPATIBLE = {
    "removed": (changed(drop=("total_minor",)), "total_minor", "field removed without a default"),
    "renamed": (
        changed(drop=("email",), add={"email_address": (str, personal("Where we write."))}),
        "email",
        "field renamed",
    ),
    "type changed": (
        changed(add={"total_minor": (str, public("Now text."))}),
        "total_minor",
        "type changed",
    ),
    # Compatible with v2 (which has channel, with a default) but not with v1: only a transitive
    # check catches it, so this proves the registry's level is really FULL_TRANSITIVE.
    "default dropped": (
        changed(add={"channel": (str, public("No default any more."))}),
        "channel",
        "field added without a default",
    ),
}


@pytest.mark.parametrize("case", INCOMPATIBLE)
def test_registry_and_gate_reject_an_incompatible_version(
    cluster: Cluster, subjects: dict[str, str], case: str
) -> None:
    event, field, rule = INCOMPATIBLE[case]
    subject = subject_for(subjects["orders"], OrderPlaced)

    _, problems = check_against_registry(cluster.connection, subjects, events=(event,))
    assert [(p.subject, p.field, p.rule) for p in problems if p.rule != "schema not committed"] == [
        (subject, field, rule)
    ]
    assert "registry version 1" in problems[-1].detail

    with pytest.raises(SchemaRegistryError) as refused:
        _register(cluster, subject, event)
    assert refused.value.http_status_code == 409


def test_registry_and_gate_accept_an_optional_field_with_a_default(
    cluster: Cluster, subjects: dict[str, str]
) -> None:
    event = changed(add={"coupon": (str | None, public("Discount code.", default=None))})
    subject = subject_for(subjects["orders"], OrderPlaced)

    _, problems = check_against_registry(cluster.connection, subjects, events=(event,))
    assert [p.rule for p in problems] == ["schema not committed"]  # it still needs its v3 file
    assert _register(cluster, subject, event) > 0
    client = clients.registry(cluster.connection)
    assert client.get_versions(subject) == [1, 2, 3]


def test_the_working_tree_passes_against_the_registry(
    cluster: Cluster, subjects: dict[str, str]
) -> None:
    checked, problems = check_against_registry(cluster.connection, subjects)
    assert problems == []
    assert len(checked) == len(EVENT_TYPES)


def test_the_command_checks_a_registry_under_the_environments_topic_names(
    cluster: Cluster, subjects: dict[str, str]
) -> None:
    topics = [f"--topic={logical}={actual}" for logical, actual in subjects.items()]
    args = ["schemas", "check", "--registry-url", cluster.registry_url, *topics]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"compatible with the registry at {cluster.registry_url}" in result.output


def test_a_subject_left_at_a_weaker_level_fails_the_gate(
    cluster: Cluster, subjects: dict[str, str]
) -> None:
    subject = subject_for(subjects["payments"], PaymentDeclined)
    clients.registry(cluster.connection).set_compatibility(subject, "BACKWARD")
    _, problems = check_against_registry(cluster.connection, subjects)
    assert [(p.subject, p.rule) for p in problems] == [(subject, "compatibility level")]
    assert "enforces BACKWARD on this subject, not FULL_TRANSITIVE" in problems[0].detail
