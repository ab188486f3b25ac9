"""The recorder keeps every record of every topic, dead letters and poison included, raw and decoded."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from golive_audit.bootstrap import audit_app
from golive_audit.settings import AuditSettings
from golive_cli.main import app
from golive_cli.release import ACTOR_ENV
from golive_contracts.events import PersonalDataRead, ReleaseRouteChanged
from golive_contracts.scopes import Scope
from golive_contracts.topology import PII_ACCESS, RELEASES, dlq_topic
from golive_eventing import clients
from golive_eventing.schemas import register_all
from golive_platform.config import PlatformConfig
from golive_platform.testing import Cluster, config_env, suite_config
from typer.testing import CliRunner, Result

from tests.factories import order_placed
from tests.helpers import (
    Topics,
    events_on,
    eventually,
    issuer,
    publish_events,
    publisher,
    read_topic,
)

pytestmark = pytest.mark.integration


@contextmanager
def audit_api(settings: AuditSettings) -> Iterator[TestClient]:
    """The audit service; its client reads with audit:read only (personal data masked)."""
    with TestClient(audit_app(settings), headers=issuer().headers(Scope.READ_AUDIT)) as client:
        eventually(lambda: client.get("/readyz").status_code == 200, 30, "audit to be ready")
        yield client


@pytest.fixture
def audit(cluster: Cluster, topics: Topics, database_url: str) -> Iterator[TestClient]:
    settings = AuditSettings.model_validate(
        # An unknown schema id is recorded as undecodable after 1 s here, not 30 (serde.py).
        {**topics.env(cluster), "audit_database_url": database_url, "unknown_schema_grace_s": 1}
    )
    with audit_api(settings) as client:
        yield client


def test_recorder_keeps_events_poison_and_dead_letters(
    audit: TestClient, cluster: Cluster, topics: Topics
) -> None:
    first, second = order_placed(), order_placed(card="tok_visa_0002")
    producer = publisher(cluster, topics)
    for event in (first, second):
        producer.publish_sync(event, key=str(event.order_id))
    producer.close()
    raw = clients.producer(cluster.connection)
    raw.produce(topics.orders, key=b"poison-key", value=b"not avro at all")
    raw.produce(
        dlq_topic(topics.orders, "payment-blue"),
        key=str(first.order_id).encode(),
        value=b"\x00dead",
        headers=[("dlq.error", b"boom")],
    )
    assert raw.flush(10) == 0

    def recorded() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = audit.get("/events", params={"limit": 1000}).json()["items"]
        return items if len(items) >= 4 else None

    items = eventually(recorded, 30, "four recorded records")
    assert len(items) == 4
    decoded = [i for i in items if i["event_type"] == "OrderPlaced"]
    assert {i["payload"]["order_id"] for i in decoded} == {
        str(first.order_id),
        str(second.order_id),
    }
    assert all(i["decode_error"] is None for i in decoded)

    poison = next(i for i in items if i["key"] == "poison-key")
    assert "magic byte" in poison["decode_error"]
    assert (poison["payload"], poison["raw_base64"], poison["masked"]) == (None, None, True)

    dead = next(i for i in items if i["topic"] == dlq_topic(topics.orders, "payment-blue"))
    assert ["dlq.error", "boom"] in dead["headers"]

    # Filters: type, key, correlation id, and a time window that excludes everything.
    assert len(audit.get("/events", params={"type": "OrderPlaced"}).json()["items"]) == 2
    assert len(audit.get("/events", params={"key": "poison-key"}).json()["items"]) == 1
    by_journey = audit.get("/events", params={"correlation_id": str(second.order_id)}).json()[
        "items"
    ]
    assert [i["event_type"] for i in by_journey] == ["OrderPlaced"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert audit.get("/events", params={"from": future}).json()["items"] == []
    assert audit.get("/events", params={"from": future, "to": future}).status_code == 422
    page = audit.get("/events", params={"limit": 3}).json()
    rest = audit.get("/events", params={"limit": 3, "cursor": page["next_cursor"]}).json()
    assert len(page["items"]) + len(rest["items"]) == 4
    # A dead letter keyed by the order belongs to its journey, even when it cannot be decoded.
    timeline = audit.get(f"/orders/{first.order_id}/timeline").json()
    assert [(i["topic"], i["event_type"]) for i in timeline] == [
        (topics.orders, "OrderPlaced"),
        (dlq_topic(topics.orders, "payment-blue"), None),
    ]
    # The raw bytes are kept: shown to a reader who may see personal data (last: that read is
    # itself recorded, and would be counted above).
    kept = audit.get("/events", params={"key": "poison-key"}, headers=PERSONAL_DATA_READER())
    assert base64.b64decode(kept.json()["items"][0]["raw_base64"]) == b"not avro at all"


def PERSONAL_DATA_READER(subject: str = "auditor") -> dict[str, str]:
    return issuer().headers(Scope.READ_AUDIT, Scope.READ_PERSONAL_DATA, subject=subject)


def test_personal_data_is_masked_unless_allowed_and_each_read_of_it_is_recorded(
    cluster: Cluster, topics: Topics, tmp_path: Path
) -> None:
    """On SQLite only: what is shown is decided above the store (both stores are tested above)."""
    settings = AuditSettings.model_validate(
        {**topics.env(cluster), "audit_database_url": f"sqlite:///{tmp_path / 'audit.db'}"}
    )
    with audit_api(settings) as audit:
        _masked_and_recorded(audit, cluster, topics)


def _masked_and_recorded(audit: TestClient, cluster: Cluster, topics: Topics) -> None:
    placed = order_placed()
    publish_events(cluster, topics, placed)
    journey = f"/orders/{placed.order_id}/timeline"
    (masked,) = eventually(lambda: audit.get(journey).json(), 30, "the order to be recorded")
    payload = masked["payload"]
    assert (payload["email"], payload["shipping_address"], payload["card_token"]) == ("***",) * 3
    assert payload["order_id"] == str(placed.order_id)  # public: shown
    assert (masked["masked"], masked["raw_base64"]) == (True, None)
    assert "ada@example.com" not in audit.get("/events").text
    assert read_topic(cluster.connection, topics.names.topic(PII_ACCESS)) == []  # nothing shown

    shown = audit.get(journey, headers=PERSONAL_DATA_READER("alice"))
    assert shown.status_code == 200
    (unmasked,) = shown.json()
    assert (unmasked["payload"]["email"], unmasked["masked"]) == ("ada@example.com", False)
    assert unmasked["payload"]["shipping_address"]["city"] == "Utrecht"
    assert unmasked["raw_base64"]

    # The read was recorded on the broker before the answer, and joins the order's journey.
    (read,) = events_on(cluster, topics, topics.names.topic(PII_ACCESS))
    assert isinstance(read, PersonalDataRead)
    assert (read.reader, read.request, read.records) == ("alice", f"GET {journey}", 1)
    assert read.envelope.correlation_id == str(placed.order_id)

    def with_the_read() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = audit.get(journey).json()
        return found if len(found) == 2 else None

    timeline = eventually(with_the_read, 30, "the read to join the order's timeline")
    assert [i["event_type"] for i in timeline] == ["OrderPlaced", "PersonalDataRead"]
    assert timeline[1]["payload"]["reader"] == "***"  # who read is personal too
    assert timeline[1]["payload"]["request"] == f"GET {journey}"


def test_a_read_of_personal_data_that_cannot_be_recorded_shows_nothing(
    cluster: Cluster, topics: Topics, tmp_path: Path, unique: str
) -> None:
    # The record's schema is registered, but its topic does not exist: it cannot be written.
    missing = f"no-such-topic-{unique}"
    register_all(clients.registry(cluster.connection), {**topics.as_map(), PII_ACCESS: missing})
    settings = AuditSettings.model_validate(
        {
            **topics.env(cluster),
            "audit_database_url": f"sqlite:///{tmp_path / 'audit.db'}",
            "pii_access_topic": missing,
            "delivery_timeout_ms": 1500,
        }
    )
    placed = order_placed()
    publish_events(cluster, topics, placed)
    with audit_api(settings) as audit:
        journey = f"/orders/{placed.order_id}/timeline"
        eventually(lambda: audit.get(journey).json(), 30, "the order to be recorded")
        refused = audit.get(journey, headers=PERSONAL_DATA_READER())
        assert refused.status_code == 503
        assert "could not be recorded" in refused.json()["detail"]
        assert "ada@example.com" not in refused.text
        assert refused.headers["retry-after"] == "1"


def _release(*argv: str, flags: Path, suffix: str, env: dict[str, str]) -> Result:
    """`golive release ... payment` on this environment's releases topic and a flags file."""
    command = ["release", *argv, "--flags", str(flags), "--suffix", suffix]
    return CliRunner().invoke(app, command, env=env)


def test_each_release_action_is_recorded_first_and_audit_shows_it(
    cluster: Cluster, topics: Topics, tmp_path: Path
) -> None:
    flags = tmp_path / "flags.json"
    shutil.copy(PlatformConfig().flags_source, flags)
    suffix = topics.group_prefix.removesuffix(".")
    env = {**config_env(suite_config()), ACTOR_ENV: "pipeline#7"}
    taken = _release(
        "canary",
        "payment",
        "--percent",
        "10",
        "--reason",
        "INC-42 fix",
        flags=flags,
        suffix=suffix,
        env=env,
    )
    assert taken.exit_code == 0, taken.output
    assert "recorded as " + topics.names.topic(RELEASES) in taken.output
    # A refused action changes nothing and records nothing.
    refused = _release("canary", "payment", "--percent", "100", flags=flags, suffix=suffix, env=env)
    assert refused.exit_code == 1 and "between 1 and 99" in refused.output
    back = _release("rollback", "payment", flags=flags, suffix=suffix, env=env)
    assert back.exit_code == 0, back.output

    recorded = [
        e
        for e in events_on(cluster, topics, topics.names.topic(RELEASES))
        if isinstance(e, ReleaseRouteChanged)
    ]
    assert [(e.action, e.mode_before, e.mode, e.candidate_share) for e in recorded] == [
        ("canary", "live", "canary", 10),
        ("rollback", "canary", "live", 0),
    ]
    canary = recorded[0]
    assert (canary.group, canary.by, canary.reason) == ("payment", "pipeline#7", "INC-42 fix")
    assert (canary.live, canary.candidate) == ("blue", "green")
    assert (canary.live_version, canary.candidate_version) == ("0.1.0", "0.2.0")
    assert canary.where == str(flags)
    assert canary.envelope.producer == "release"

    settings = AuditSettings.model_validate(
        {**topics.env(cluster), "audit_database_url": f"sqlite:///{tmp_path / 'audit.db'}"}
    )
    with audit_api(settings) as audit:

        def shown() -> list[dict[str, Any]] | None:
            found = audit.get("/releases", params={"group": "payment"}).json()["items"]
            return found if len(found) == 2 else None

        items = eventually(shown, 30, "audit to show both release actions")
        assert [i["payload"]["action"] for i in items] == ["canary", "rollback"]
        assert items[0]["payload"]["by"] == "***"  # who is personal: audit:pii shows it
        assert items[0]["payload"]["route"] == str(canary.route)
        # An incident's window lines up with the release actions in it, and only those.
        since = items[1]["timestamp"]  # when the broker took the rollback's record
        later = audit.get("/releases", params={"from": since}).json()["items"]
        assert [i["payload"]["action"] for i in later] == ["rollback"]
        assert audit.get("/releases", params={"group": "order"}).json()["items"] == []


def test_a_release_action_that_cannot_be_recorded_is_not_taken(
    topics: Topics, tmp_path: Path
) -> None:
    flags = tmp_path / "flags.json"
    shutil.copy(PlatformConfig().flags_source, flags)
    before = flags.read_text()
    suffix = topics.group_prefix.removesuffix(".")
    env = config_env(suite_config())
    # The registry has no schema for a releases topic of an environment that was never made.
    refused = _release("switch", "payment", flags=flags, suffix=f"{suffix}x", env=env)
    assert refused.exit_code == 1
    assert "not released: the action could not be recorded" in refused.output
    assert "the route is unchanged" in refused.output
    assert flags.read_text() == before
