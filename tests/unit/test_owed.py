"""Owed positions (golive_eventing.records.Owed): what a processor has consumed past records
that changed nothing, until a transaction commits them."""

from __future__ import annotations

from confluent_kafka import TopicPartition
from golive_eventing.records import Owed


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _positions(owed: Owed) -> dict[tuple[str, int], int]:
    return {(p.topic, p.partition): p.offset for p in owed.take()}


def test_a_partition_owes_its_furthest_position_and_taking_clears_them() -> None:
    owed = Owed(_Clock())
    owed.add([TopicPartition("orders", 0, 7), TopicPartition("payments", 1, 3)])
    owed.add([TopicPartition("orders", 0, 5), TopicPartition("orders", 1, 2)])
    assert _positions(owed) == {("orders", 0): 7, ("orders", 1): 2, ("payments", 1): 3}
    assert owed.take() == []


def test_positions_fall_due_counted_from_the_oldest_still_owed() -> None:
    clock = _Clock()
    owed = Owed(clock)
    assert not owed.due(1.0), "nothing owed is never due"
    owed.add([TopicPartition("orders", 0, 1)])
    clock.now += 0.6
    owed.add([TopicPartition("orders", 0, 2)])
    assert not owed.due(1.0)
    clock.now += 0.4
    assert owed.due(1.0), "the first position has waited 1 s, however many came after it"
    owed.take()
    owed.add([TopicPartition("orders", 0, 3)])
    assert not owed.due(1.0), "after a commit the wait starts again"


def test_a_partition_read_again_or_handed_over_owes_nothing() -> None:
    clock = _Clock()
    owed = Owed(clock)
    owed.add([TopicPartition("orders", 0, 4), TopicPartition("orders", 1, 9)])
    owed.forget([("orders", 1)])
    assert owed.positions == {("orders", 0): 4}
    owed.forget([("orders", 0)])
    clock.now += 10
    assert not owed.due(1.0), "nothing left owed"
    assert owed.take() == []


def test_a_partition_read_again_from_past_its_owed_position_keeps_owing_it() -> None:
    """A failed batch is read again from its first offsets, past what is owed: the owed position
    stays, for the state kept from those records rides on it. Read again from before it (the
    committed positions, after the producer is replaced), it is owed no more."""
    owed = Owed(_Clock())
    owed.add([TopicPartition("orders", 0, 4), TopicPartition("orders", 1, 9)])
    owed.rewind({("orders", 0): 4, ("orders", 1): 6, ("orders", 2): 1})
    assert owed.positions == {("orders", 0): 4}
    owed.rewind({("orders", 0): None})
    assert owed.positions == {}
    assert not owed.due(0.0)
