"""A failed test's logs are kept whole for the next engineer: what is copied, and what is not."""

from __future__ import annotations

from pathlib import Path

from tests.plugins.logs import keep


def _touch(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(path)


def test_own_instances_keep_logs_and_broker_data_the_shared_one_its_logs(tmp_path: Path) -> None:
    own, shared = tmp_path / "broker-instance", tmp_path / "test-platform"
    _touch(
        own,
        "services/payment.log",
        "kafka/logs/server.log",
        "kafka/logs/server.log.1",
        "kafka/data/orders-0/00000000000000000000.log",
        "kafka/data/orders-0/00000000000000000000.index",
        "kafka/data/orders-0/00000000000000000000.timeindex",
        "kafka/data/__transaction_state-1/00000000000000000000.log",
    )
    _touch(
        shared,
        "kafka/logs/server.log",
        "registry/registry.log",
        "kafka/data/orders-0/00000000000000000000.log",
        "postgres/data/base/1",
    )

    kept = keep("test_a broker [restart]", [own], shared, under=tmp_path / "test-logs")

    assert kept.parent.name == "test-logs" and kept.name.endswith("-test_a_broker_restart_")
    copied = sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file())
    assert copied == [
        "broker-instance/kafka/data/__transaction_state-1/00000000000000000000.log",
        "broker-instance/kafka/data/orders-0/00000000000000000000.log",
        "broker-instance/kafka/logs/server.log",
        "broker-instance/kafka/logs/server.log.1",
        "broker-instance/services/payment.log",
        "test-platform/kafka/logs/server.log",
        "test-platform/registry/registry.log",
    ]
    assert (kept / "broker-instance/services/payment.log").read_text() == "services/payment.log"
