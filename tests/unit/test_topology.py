"""The topology is the one place the wiring is declared: infra/topics.yaml holds exactly the topics
it derives (and the registry's own), each with its writer; environments derive their names."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from golive_contracts import topology
from golive_contracts.topology import ORDERS, PAYMENTS, Kind, Names, TopicNeed
from golive_platform.config import PlatformConfig
from golive_platform.topics import load_catalogue

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(ROOT / "infra" / "topics.yaml")
CONFIG = PlatformConfig()
REGISTRY_TOPICS = {
    CONFIG.registry_journal_topic,
    CONFIG.registry_snapshots_topic,
    CONFIG.registry_events_topic,
}


def test_topics_yaml_declares_every_topic_the_topology_derives_with_its_writer() -> None:
    declared = {t.name: t.owner for t in CATALOGUE.topics if t.name not in REGISTRY_TOPICS}
    derived = {need.name: need.writer for need in Names().needs()}
    assert sorted(derived.keys() - declared.keys()) == [], "missing from infra/topics.yaml"
    assert sorted(declared.keys() - derived.keys()) == [], "in infra/topics.yaml, used by nobody"
    assert {n: o for n, o in declared.items() if derived[n] != o} == {}, "another owner"


def test_changelogs_are_compacted_in_topics_yaml_too() -> None:
    compacted = {t.name for t in CATALOGUE.topics if t.cleanup_policy == "compact"}
    assert compacted == {need.name for need in Names().needs() if need.compacted}


def test_the_registrys_own_topics_are_declared_as_its_own() -> None:
    owners = {t.name: t.owner for t in CATALOGUE.topics if t.name in REGISTRY_TOPICS}
    assert owners == dict.fromkeys(REGISTRY_TOPICS, "registry")


def test_an_environment_of_its_own_has_its_own_topics_groups_and_transactional_ids() -> None:
    names = Names.suffixed("e2e1")
    assert names.topic(ORDERS) == "orders.e2e1"
    assert names.group_id("payment") == "e2e1.payment"
    assert names.transactional_id("payment", "0") == "e2e1.payment-0"
    assert names.dead_letter_topics(topology.ORDER_PROCESS_MANAGER) == (
        "orders.e2e1.order-process-manager.dlq",
        "payments.e2e1.order-process-manager.dlq",
    )
    assert names.state_topic(topology.PAYMENT_BLUE) == "orders.e2e1.payment-blue.state"
    assert TopicNeed("orders.e2e1.payment-blue.state", "payment", compacted=True) in names.needs()


def test_a_routed_group_runs_as_a_router_and_a_slot_per_version() -> None:
    names = Names.suffixed("e2e1")
    router, blue, green = topology.PAYMENT_ROUTER, topology.PAYMENT_BLUE, topology.PAYMENT_GREEN
    assert topology.PAYMENT not in topology.GROUPS  # a declaration; its versions run
    assert (router.kind, router.routes, router.process) == (Kind.ROUTER, "payment", "payment")
    assert router.dead_letters is False  # it forwards even what it cannot read
    assert names.inputs(router) == ["orders.e2e1"]
    assert names.slot_inputs(router) == {
        "blue": ["orders.e2e1.payment-blue"],
        "green": ["orders.e2e1.payment-green"],
    }
    for slot, group in (("blue", blue), ("green", green)):
        assert (group.slot, group.process) == (slot, f"payment-{slot}")
        assert (group.reads, group.writes, group.handles) == (
            topology.PAYMENT.reads,
            topology.PAYMENT.writes,
            topology.PAYMENT.handles,
        )
        assert names.inputs(group) == [f"orders.e2e1.payment-{slot}"]
        assert names.shadow_topics(group) == ["payments.e2e1.shadow"]
        assert names.dead_letter_topics(group) == (f"orders.e2e1.payment-{slot}.dlq",)
    assert topology.slot_group("payment", "green") is green
    assert topology.router_of("payment") is router
    needed = {n.name for n in names.needs()}
    assert {"orders.e2e1.payment-blue", "payments.e2e1.shadow"} <= needed


def test_the_payment_settings_slots_are_the_topology_s() -> None:
    from golive_payment.settings import Slot  # noqa: PLC0415

    assert set(typing.get_args(Slot)) == set(topology.SLOTS)


def test_every_group_reads_event_topics_and_only_processors_write() -> None:
    events = {t.name for t in topology.TOPICS}
    for group in topology.GROUPS:
        assert set(group.reads) <= events, group.name
        assert not group.writes or group.kind is Kind.PROCESSOR, group.name
        assert set(group.writes) <= {t.name for t in topology.TOPICS if t.writer == group.service}


def test_the_recorder_keeps_everything_and_dead_letters_nothing() -> None:
    assert topology.AUDIT.dead_letters is False
    assert Names().dead_letter_topics(topology.AUDIT) == ()
    assert [g.name for g in topology.readers(PAYMENTS)] == [
        "payment-projector",
        "order-process-manager",
        "audit",
    ]


def test_an_unknown_group_is_named_with_the_known_ones() -> None:
    with pytest.raises(KeyError, match="no consumer group 'payments': one of order-projector"):
        topology.group("payments")
