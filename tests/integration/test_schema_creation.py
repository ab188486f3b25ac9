"""Two instances of a service starting at once on one database both come up (scale-out, failover)."""

from __future__ import annotations

import threading

import pytest
from golive_eventing.db import create_tables, make_engine
from golive_payment.adapters.payments import metadata

pytestmark = pytest.mark.integration


def test_instances_starting_together_both_create_their_tables(database_url: str) -> None:
    starting = 4
    ready = threading.Barrier(starting)
    failures: list[BaseException] = []

    def start() -> None:
        engine = make_engine(database_url)  # each instance its own engine, as processes have
        ready.wait()
        try:
            create_tables(metadata, engine)
        except BaseException as exc:
            failures.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(starting)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
