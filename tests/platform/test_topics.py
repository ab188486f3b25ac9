"""topics.yaml is the truth about topics; apply is idempotent, fixes drift, and refuses to move keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError
from golive_platform.testing import Cluster
from golive_platform.topics import (
    Catalogue,
    TopicDecl,
    TopicSpec,
    apply,
    grow_partitions,
    load_catalogue,
    resolve,
)

from tests.helpers import eventually

REPO_CATALOGUE = PlatformConfig().topics_file


def _catalogue(**topic_overrides: object) -> Catalogue:
    raw = {
        "defaults": {
            "partitions": 3,
            "replication_factor": 3,
            "min_insync_replicas": 2,
            "retention_ms": -1,
            "cleanup_policy": "delete",
        },
        "environments": {
            "local": {"replication_factor": 1, "min_insync_replicas": 1},
            "production": {},
        },
        "topics": [],
    }
    catalogue = Catalogue.model_validate(raw)
    return catalogue.model_copy(update=topic_overrides)


# -- the catalogue (no I/O) -------------------------------------------------------------------


@pytest.mark.unit
def test_settings_layer_defaults_environment_topic_and_topic_environment() -> None:
    catalogue = Catalogue.model_validate(
        {
            "defaults": {
                "partitions": 6,
                "replication_factor": 3,
                "min_insync_replicas": 2,
                "retention_ms": -1,
                "cleanup_policy": "delete",
            },
            "environments": {
                "local": {"replication_factor": 1, "min_insync_replicas": 1},
                "production": {},
            },
            "topics": [
                {
                    "name": "orders",
                    "owner": "order",
                    "keyed": True,
                    "environments": {"production": {"partitions": 12}},
                    "configs": {"max.message.bytes": "1048576"},
                }
            ],
        }
    )
    local = resolve(catalogue, "local")[0]
    production = resolve(catalogue, "production")[0]
    assert (local.partitions, local.replication_factor) == (6, 1)
    assert local.configs["min.insync.replicas"] == "1"
    assert (production.partitions, production.replication_factor) == (12, 3)
    assert production.configs["min.insync.replicas"] == "2"
    assert production.configs["max.message.bytes"] == "1048576"


@pytest.mark.unit
def test_unknown_environment_and_duplicate_topics_are_named() -> None:
    catalogue = load_catalogue(REPO_CATALOGUE)
    with pytest.raises(PlatformError, match="unknown environment 'staging'"):
        resolve(catalogue, "staging")
    doubled = catalogue.model_copy(update={"topics": [catalogue.topics[0], catalogue.topics[0]]})
    with pytest.raises(PlatformError, match="declared twice"):
        resolve(doubled, "local")


@pytest.mark.unit
def test_invalid_catalogue_names_the_field(tmp_path: Path) -> None:
    bad = yaml.safe_load(REPO_CATALOGUE.read_text())
    bad["topics"][0]["partitions"] = 0
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(PlatformError, match=r"topics\.0\.partitions"):
        load_catalogue(path)


@pytest.mark.unit
@pytest.mark.parametrize("environment", ["local", "production"])
def test_repo_catalogue_keeps_the_system_of_record(environment: str) -> None:
    specs = {s.name: s for s in resolve(load_catalogue(REPO_CATALOGUE), environment)}
    config = PlatformConfig()
    # The registry's storage never expires: a registry that forgets schemas loses every event.
    for registry_topic in (config.registry_journal_topic, config.registry_snapshots_topic):
        assert specs[registry_topic].configs["retention.ms"] == "-1"
        assert specs[registry_topic].partitions == 1
    assert config.registry_events_topic in specs
    # Event topics are the system of record; orders and payments co-partition by order id.
    for topic in ("orders", "payments"):
        assert specs[topic].configs["retention.ms"] == "-1"
        assert specs[topic].keyed
    assert specs["orders"].partitions == specs["payments"].partitions
    # A slot's input, and each state changelog, co-partition with orders: partition p of a
    # changelog holds the keys of input partition p (whatever count an environment gives them).
    for name, spec in specs.items():
        if name.startswith(("orders.", "payments.")) and not name.endswith(".dlq"):
            assert spec.partitions == specs["orders"].partitions, name


# -- apply against the real broker ------------------------------------------------------------


@pytest.fixture
def admin(cluster: Cluster) -> AdminClient:
    return clients.admin(cluster.connection)


def _retention(admin: AdminClient, topic: str) -> str:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return str(admin.describe_configs([resource])[resource].result(10)["retention.ms"].value)


def _partitions(admin: AdminClient, topic: str) -> int:
    return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)


def _topic(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, "owner": "test", "keyed": True, **fields}


def _specs(*topics: dict[str, object]) -> list[TopicSpec]:
    return resolve(_catalogue(topics=[TopicDecl.model_validate(t) for t in topics]), "local")


@pytest.mark.integration
def test_apply_twice_changes_nothing_the_second_time(admin: AdminClient, unique: str) -> None:
    specs = _specs(_topic(f"test.apply.a.{unique}"), _topic(f"test.apply.b.{unique}", keyed=False))
    first = apply(admin, specs)
    assert [c.action for c in first.changes] == ["created", "created"]

    second = apply(admin, specs)
    assert [c.action for c in second.changes] == ["unchanged", "unchanged"]
    assert not second.changed and not second.unresolved


class _StaleAdmin(AdminClient):
    """Metadata that does not show a topic yet: what a broker answers right after a create."""

    def __init__(self, connection: Connection, hidden: str) -> None:
        super().__init__(clients.kafka_config(connection))
        self.hidden = hidden

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        metadata = super().list_topics(*args, **kwargs)
        metadata.topics.pop(self.hidden, None)
        return metadata


@pytest.mark.integration
def test_apply_reconciles_a_topic_the_metadata_did_not_show_yet(
    cluster: Cluster, admin: AdminClient, unique: str
) -> None:
    name = f"test.stale.{unique}"
    apply(admin, _specs(_topic(name)))
    declared = _specs(_topic(name, retention_ms=3_600_000))
    report = apply(_StaleAdmin(cluster.connection, hidden=name), declared)
    assert [c.action for c in report.changes] == ["altered"]  # reconciled, not "already exists"


@pytest.mark.integration
def test_apply_reports_and_fixes_config_drift(admin: AdminClient, unique: str) -> None:
    name = f"test.drift.{unique}"
    specs = _specs(_topic(name))
    apply(admin, specs)
    drift = ConfigResource(
        ConfigResource.Type.TOPIC,
        name,
        incremental_configs=[
            ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([drift])[drift].result(timeout=10)
    eventually(lambda: _retention(admin, name) == "3600000", 10, "the drift to be visible")

    dry = apply(admin, specs, dry_run=True)
    assert [(c.action, c.detail) for c in dry.changes] == [
        ("altered", "retention.ms 3600000 -> -1")
    ]
    fixed = apply(admin, specs)
    assert [c.action for c in fixed.changes] == ["altered"]
    assert [c.action for c in apply(admin, specs).changes] == ["unchanged"]


@pytest.mark.integration
def test_apply_refuses_more_partitions_on_a_keyed_topic_unless_forced(
    admin: AdminClient, unique: str
) -> None:
    keyed, plain = f"test.keyed.{unique}", f"test.plain.{unique}"
    apply(admin, _specs(_topic(keyed, partitions=2), _topic(plain, partitions=2, keyed=False)))
    grown = _specs(_topic(keyed, partitions=4), _topic(plain, partitions=4, keyed=False))

    report = apply(admin, grown)
    actions = {c.topic: c.action for c in report.changes}
    assert actions == {keyed: "refused", plain: "partitions"}
    assert "--force" in report.unresolved[0].detail
    assert _partitions(admin, keyed) == 2
    # Grown and shown before apply returned: the next apply (below) must not see the old count.
    assert _partitions(admin, plain) == 4

    forced = apply(admin, grown, force=True)
    assert {c.topic: c.action for c in forced.changes}[keyed] == "partitions"
    # Metadata follows a partition change within moments, not at once.
    eventually(lambda: _partitions(admin, keyed) == 4, 10, f"{keyed} to show 4 partitions")


@pytest.mark.integration
def test_apply_reports_what_kafka_cannot_change(admin: AdminClient, unique: str) -> None:
    name = f"test.cannot.{unique}"
    apply(admin, _specs(_topic(name, partitions=3)))
    shrunk = _specs(_topic(name, partitions=1, replication_factor=3))
    report = apply(admin, shrunk)
    details = [c.detail for c in report.unresolved]
    assert any("cannot remove partitions" in d for d in details)
    assert any("replication factor is 1, declared 3" in d for d in details)


@pytest.mark.integration
def test_growing_a_topic_that_already_grew_is_not_an_error(admin: AdminClient, unique: str) -> None:
    """Right after a partition change, metadata can still show the old count; apply must converge."""
    name = f"test.regrow.{unique}"
    apply(admin, _specs(_topic(name, partitions=4, keyed=False)))
    # What a stale view leads to: asking the broker for the count the topic already has.
    assert grow_partitions(admin, _specs(_topic(name, partitions=4, keyed=False))[0]) is False
    with pytest.raises(KafkaException):
        grow_partitions(admin, _specs(_topic(name, partitions=3, keyed=False))[0])
