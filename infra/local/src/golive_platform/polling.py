"""Waiting for the broker to catch up: polling with a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from golive_platform.errors import PlatformError

T = TypeVar("T")


def until(probe: Callable[[], T | None], what: str, timeout_s: float) -> T:
    """What `probe` returns once it is truthy; PlatformError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise PlatformError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.1)  # the polling interval of a deadline-bounded wait
    return found
