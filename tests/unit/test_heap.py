"""What keeps the collector's pauses short in a service: what it made to start is frozen out of
every later collection, its young generation is collected less often, and a processor's state
is not walked key by key."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest
from golive_eventing.settings import KafkaSettings
from golive_eventing.state import Entry, KeyedState

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


def test_a_processor_state_of_plain_values_is_not_walked_by_full_collections() -> None:
    state = KeyedState(KafkaSettings(), "orders.payment.state", "payment")
    changes = state.begin()
    for n in range(1000):
        changes.put(f"order-{n}", n % 2, {"decided": True, "event_id": f"e-{n}"})
    state.commit(changes)
    del changes
    for _ in range(2):  # a full collection stops tracking dicts of plain values
        gc.collect()
    # What the state holds directly: a few objects the collector tracks, none of them per key.
    held = gc.get_referents(*vars(state).values())
    assert len([o for o in held if gc.is_tracked(o)]) < 100, "the collector walks every key"
    # and the state reads as it did
    assert state.begin().get("order-7") == {"decided": True, "event_id": "e-7"}
    assert state.entry("order-7") == Entry(1, {"decided": True, "event_id": "e-7"})
    state.drop({1})
    assert state.entry("order-7") is None
    assert state.entry("order-8") == Entry(0, {"decided": True, "event_id": "e-8"})
