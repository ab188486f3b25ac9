"""What keeps the collector's pauses short in a service: what it made to start is frozen out of
every later collection, and its young generation is collected less often."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

SETTLES = """
import gc, weakref
from golive_eventing.app import YOUNG_GC_THRESHOLD, settle_heap

class Node:
    pass

garbage = Node()
garbage.cycle = garbage  # garbage only the collector frees
freed = []
watch = weakref.ref(garbage, lambda _: freed.append(True))
del garbage
made = [[n] for n in range(1000)]  # what the service made to start, still in use
settle_heap()
assert freed, "garbage made before the start was frozen for good"
walked = gc.get_objects()
assert not any(o is made for o in walked), "a collection still walks what was made to start"
assert gc.get_freeze_count() >= 1000, gc.get_freeze_count()
assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD, gc.get_threshold()
print("settled")
"""


def test_a_service_start_is_frozen_out_of_every_later_collection() -> None:
    # In a process of its own: the collector's state is the whole interpreter's.
    done = subprocess.run(
        [sys.executable, "-c", SETTLES], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "settled"
