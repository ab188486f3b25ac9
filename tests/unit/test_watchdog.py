"""A transactional call that blocks past its timeout ends the process (crash-only), in time."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

BLOCKS = """
import time
from golive_eventing.recovery import Watchdog
watchdog = Watchdog("payment", grace_s=0.2)
for _ in range(3):  # calls that return in time, one after another, leave the process alone
    with watchdog.watch("commit_transaction", timeout_s=0.2):
        pass
with watchdog.watch("send_offsets_to_transaction", timeout_s=0.2):
    time.sleep({seconds})
print("returned")
"""


def _run(seconds: float) -> subprocess.CompletedProcess[str]:
    code = BLOCKS.format(seconds=seconds)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_call_blocked_past_its_timeout_exits_70_naming_it() -> None:
    done = _run(seconds=30)
    assert done.returncode == 70
    assert "returned" not in done.stdout
    assert "send_offsets_to_transaction blocked" in done.stderr


def test_a_call_that_returns_in_time_carries_on() -> None:
    done = _run(seconds=0)
    assert done.returncode == 0, done.stderr
    assert "returned" in done.stdout
