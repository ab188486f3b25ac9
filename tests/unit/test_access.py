"""Each service's ACLs, derived from the topology (golive_contracts.access)."""

from __future__ import annotations

import dataclasses

import pytest
from golive_cli.main import app
from golive_contracts.access import (
    Grant,
    Operation,
    Pattern,
    Resource,
    grants,
    logging_in_as,
    resources,
)
from golive_contracts.topology import GROUPS, TOPICS, Names
from typer.testing import CliRunner

pytestmark = pytest.mark.unit

NAMES = Names()


def _topics(principal: str, operation: Operation, names: Names = NAMES) -> set[str]:
    return {
        g.name
        for g in grants(names)
        if g.principal == principal and g.resource is Resource.TOPIC and g.operation is operation
    }


def test_a_service_writes_only_the_topics_it_owns() -> None:
    assert _topics("payment", Operation.WRITE) == {
        "payments",
        "payments.payment-projector.dlq",
        # The router hands each version slot its orders, and keeps its pins.
        "orders.payment-blue",
        "orders.payment-green",
        "orders.payment-router.state",
        # Each slot: its dead letters, its state, and the shadow outputs either may write.
        "orders.payment-blue.dlq",
        "orders.payment-green.dlq",
        "orders.payment-blue.state",
        "orders.payment-green.state",
        "payments.shadow",
    }
    assert _topics("order", Operation.WRITE) == {
        "orders",
        "orders.order-projector.dlq",
        "orders.order-process-manager.dlq",
        "payments.order-process-manager.dlq",
        "orders.order-process-manager.state",
    }
    # The recorder only reads; its API writes the record of each read of personal data.
    assert _topics("audit", Operation.WRITE) == {"pii-access"}
    # `golive release` logs in as release: it records each release action, and that is all.
    assert _topics("release", Operation.WRITE) == {"releases"}
    assert not [g for g in grants(NAMES) if g.principal == "release" and g.name != "releases"]


def test_every_event_topic_has_exactly_its_writer() -> None:
    for topic in TOPICS:
        writers = {
            g.principal
            for g in grants(NAMES)
            if g.name == topic.name and g.operation is Operation.WRITE
        }
        assert writers == {topic.writer}, topic.name


def test_a_service_reads_what_its_groups_read_and_restores_its_own_state() -> None:
    assert _topics("payment", Operation.READ) == {
        "orders",  # the router
        "orders.payment-blue",  # each slot, what the router hands it
        "orders.payment-green",
        "payments",  # the read model
        "orders.payment-router.state",
        "orders.payment-blue.state",
        "orders.payment-green.state",
    }
    assert "orders.payment-blue.state" not in _topics("order", Operation.READ)


def test_the_recorder_reads_every_topic_and_every_dead_letter() -> None:
    dead_letters = {d for g in GROUPS for d in NAMES.dead_letter_topics(g)}
    events = {"orders", "payments", "pii-access", "releases"}
    assert _topics("audit", Operation.READ) == {*events, *dead_letters}


def test_groups_and_transactional_ids_are_each_service_s_own() -> None:
    mine = {
        (g.principal, g.resource, g.name, g.pattern)
        for g in grants(NAMES)
        if g.resource is not Resource.TOPIC and g.operation is not Operation.DESCRIBE
    }
    assert mine == {
        ("order", Resource.GROUP, "order-projector", Pattern.LITERAL),
        ("order", Resource.GROUP, "order-process-manager", Pattern.LITERAL),
        # A changelog restore only assigns, but looks up its group's coordinator.
        ("order", Resource.GROUP, "order-process-manager-restore", Pattern.LITERAL),
        ("order", Resource.TRANSACTIONAL_ID, "order-process-manager-", Pattern.PREFIXED),
        *(
            found
            for group in ("payment-router", "payment-blue", "payment-green")
            for found in (
                ("payment", Resource.GROUP, group, Pattern.LITERAL),
                ("payment", Resource.GROUP, f"{group}-restore", Pattern.LITERAL),
                ("payment", Resource.TRANSACTIONAL_ID, f"{group}-", Pattern.PREFIXED),
            )
        ),
        ("payment", Resource.GROUP, "payment-projector", Pattern.LITERAL),
        ("audit", Resource.GROUP, "audit", Pattern.LITERAL),
    }


def test_the_recorder_may_see_every_group_s_lag_and_join_none() -> None:
    """Audit's lag watch reads each group's committed offsets and its inputs' ends: DESCRIBE on
    both, never READ on another's group (which would let it join or commit for it)."""
    described = {
        (g.resource, g.name)
        for g in grants(NAMES)
        if g.principal == "audit" and g.operation is Operation.DESCRIBE
    }
    assert {name for kind, name in described if kind is Resource.GROUP} == {g.name for g in GROUPS}
    assert ("topic", "orders.payment-green") in {(str(k), n) for k, n in described}
    joined = {
        g.name
        for g in grants(NAMES)
        if g.principal == "audit" and g.resource is Resource.GROUP and g.operation is Operation.READ
    }
    assert joined == {"audit"}


def test_an_environment_s_grants_name_only_its_own_resources() -> None:
    test_env = Names.suffixed("t1")
    assert _topics("payment", Operation.WRITE, test_env) == {
        "payments.t1",
        "payments.t1.payment-projector.dlq",
        "orders.t1.payment-blue",
        "orders.t1.payment-green",
        "orders.t1.payment-router.state",
        "orders.t1.payment-blue.dlq",
        "orders.t1.payment-green.dlq",
        "orders.t1.payment-blue.state",
        "orders.t1.payment-green.state",
        "payments.t1.shadow",
    }
    assert resources(test_env).isdisjoint(resources(NAMES))
    assert Grant("payment", Resource.GROUP, "t1.payment-blue", Operation.READ) in grants(test_env)
    assert Grant(
        "payment",
        Resource.TRANSACTIONAL_ID,
        "t1.payment-blue-",
        Operation.WRITE,
        Pattern.PREFIXED,
    ) in grants(test_env)


def test_a_service_logging_in_under_another_name_gets_its_grants_there() -> None:
    """Confluent Cloud's service accounts: payment logs in as sa-abc123."""
    moved = logging_in_as(grants(NAMES), {"payment": "sa-abc123"})
    mine = {g for g in grants(NAMES) if g.principal == "payment"}
    assert {g for g in moved if g.principal == "sa-abc123"} == {
        dataclasses.replace(g, principal="sa-abc123") for g in mine
    }
    assert not any(g.principal == "payment" for g in moved)
    assert {g for g in moved if g.principal == "order"} == {
        g for g in grants(NAMES) if g.principal == "order"
    }
    with pytest.raises(ValueError, match="no service shipping: one of audit, order, payment"):
        logging_in_as(grants(NAMES), {"shipping": "sa-1"})


def test_golive_acls_apply_refuses_a_principal_it_cannot_place() -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["acls", "apply", "--dry-run", "--principal", "shipping=sa-1"])
    assert unknown.exit_code == 1
    assert "--principal: no service shipping" in unknown.output
    malformed = runner.invoke(app, ["acls", "apply", "--dry-run", "--principal", "payment"])
    assert malformed.exit_code == 1 and "use SERVICE=PRINCIPAL" in malformed.output
