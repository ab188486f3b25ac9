"""What a consumer loop does with a failed batch: retry it after a pause (these), or dead-letter
a record that keeps failing (golive_eventing.deadletters)."""

from __future__ import annotations

from confluent_kafka import KafkaException

from golive_eventing.serde import RegistryUnavailableError


class RetryBatchError(Exception):
    """Abort this batch, rewind, and try it again after a pause."""


class StoreUnavailableError(RuntimeError):
    """A read model's database did not answer (an adapter raises it for its own library's
    connection errors): the batch waits and is tried again, never dead-lettered."""


class PositionsMovedError(Exception):
    """The store's positions are not the ones this runner wrote (a rebuild swapped the tables):
    continue from the store's."""

    def __init__(self, positions: dict[tuple[str, int], int | None]) -> None:
        super().__init__(f"stored positions moved: {positions}")
        self.positions = positions


# Faults that pass: the batch is rewound and retried after a pause, never dead-lettered.
TRANSIENT = (RegistryUnavailableError, KafkaException, StoreUnavailableError)
