"""Small helpers shared by the tests: polling with a deadline, topics of one's own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka.admin import AdminClient, NewTopic

T = TypeVar("T")


def eventually(
    probe: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.05
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)  # the polling interval of a deadline-bounded wait


def create_topic(
    bootstrap: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1, config=configs or {})], operation_timeout=15
    )
    futures[name].result(timeout=20)
