"""A transactional producer that is replaced, not trusted, after a transaction fails in Kafka;
and the watchdog that ends a process whose Kafka call blocked past its timeout (crash-only).

librdkafka's own recovery of a transactional producer after a broker restart is not to be relied
on: it has left producers waiting on a request never sent (every call then fails with
_CONFLICT), blocked in send_offsets_to_transaction past its timeout, and failing
OUT_OF_ORDER_SEQUENCE_NUMBER epoch bumps. A new producer with the same transactional.id fences
the old one and aborts what it left open, every time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka import KafkaError, KafkaException, Producer

from golive_eventing.errors import RetryBatchError
from golive_eventing.producer import kafka_error, producer_config
from golive_eventing.settings import KafkaSettings

log = logging.getLogger(__name__)

# How long past its own timeout a transactional call may block before the process exits.
STALL_GRACE_S = 15.0
# How long a processor tries to replace a failed producer in-process before it exits instead.
RECOVERY_LIMIT_S = 60.0
# How long a crashed instance's open transaction blocks readers until the broker aborts it.
TRANSACTION_TIMEOUT_MS = 10_000
FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


class RecoveryFailedError(RuntimeError):
    """Replacing a failed producer kept failing (the broker is still away, or the committed
    offsets would not come, say)."""


class ProducerFencedError(RuntimeError):
    """Another process took over this transactional.id: this one is a zombie and must exit."""


def fenced(exc: BaseException) -> bool:
    error = kafka_error(exc)
    return error is not None and error.code() in FENCED


class Watchdog:
    """Calls that must return within their timeout, or the process exits (code 70).

    librdkafka's send_offsets_to_transaction can block past its timeout for good after a broker
    restart (librdkafka issues 5456 and 5511: a stale group coordinator). A blocked C call
    cannot be cancelled, and while it blocks this member never rejoins its group, which stalls
    the group. So the process exits and the supervisor restarts it (crash-only, like a consumer
    loop that dies). One thread per processor, started on the first call, watches every call.
    """

    def __init__(self, group: str, grace_s: float = STALL_GRACE_S) -> None:
        self.group = group
        self.grace_s = grace_s
        self._changed = threading.Condition()
        self._watching: tuple[str, float, float] | None = None  # call, deadline, limit
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, call: str, timeout_s: float) -> Iterator[None]:
        limit = timeout_s + self.grace_s
        with self._changed:
            self._watching = (call, time.monotonic() + limit, limit)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self.group}-watchdog", daemon=True
                )
                self._thread.start()
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._watching = None
                self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while True:
                if self._watching is None:
                    self._changed.wait()
                    continue
                call, deadline, limit = self._watching
                left = deadline - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                log.critical(
                    "%s: %s blocked for %.0f s, past its timeout; exiting so it restarts",
                    self.group,
                    call,
                    limit,
                )
                logging.shutdown()
                os._exit(70)


class Transactions:
    """One processor instance's transactional producer (transactional.id
    `<group prefix><group>-<instance>`), replaced whenever a transaction fails in Kafka."""

    def __init__(self, settings: KafkaSettings, group: str, instance: str) -> None:
        self.settings = settings
        self.group = group
        self.transactional_id = settings.names.transactional_id(group, instance)
        self.watchdog = Watchdog(group)
        self._broken_since: float | None = None
        self.producer = self._new_producer()

    def _new_producer(self) -> Producer:
        """init_transactions() with our transactional.id aborts whatever the last producer with
        that id left open (a crashed process, or this one's failed producer)."""
        producer = Producer(
            producer_config(
                self.settings,
                self.transactional_id,
                **{
                    "transactional.id": self.transactional_id,
                    "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                },
            )
        )
        producer.init_transactions(30)
        return producer

    @property
    def broken(self) -> bool:
        """A transaction failed in Kafka and the producer has not been replaced yet."""
        return self._broken_since is not None

    def failed(self, exc: BaseException) -> None:
        """A batch failed with `exc`. Fenced: another process has our transactional.id, so this
        one must stop (crash-only). In Kafka: the producer is not to be used again."""
        if fenced(exc):
            raise ProducerFencedError(f"{self.transactional_id} was fenced: {exc}") from exc
        if isinstance(exc, KafkaException) and self._broken_since is None:
            self._broken_since = time.monotonic()

    def usable(self) -> None:
        if self.broken:
            raise RetryBatchError("the producer is being replaced")

    def replace(self, cause: BaseException) -> None:
        """A new producer in place of the broken one, or RecoveryFailedError past the limit."""
        assert self._broken_since is not None
        if time.monotonic() - self._broken_since > RECOVERY_LIMIT_S:
            raise RecoveryFailedError(
                f"{self.group}: could not replace a failed producer in {RECOVERY_LIMIT_S:.0f} s"
            ) from cause  # out of the loop: the process exits and the supervisor restarts it
        log.warning("%s: replacing the producer, starting over from what is committed", self.group)
        # The new producer's init_transactions fences the old one first; dropping the old one
        # waits for its threads, which a wedged one may never end: watched like its calls.
        with self.watchdog.watch("replacing the producer", 60):
            old, self.producer = self.producer, self._new_producer()
            # Its transaction is aborted (fenced by the new producer): what it still holds is
            # never to be delivered. Dropped here, not left to librdkafka's warning at teardown.
            unsent = old.flush(0)  # how many it holds; a zero timeout waits for nothing
            old.purge()
            del old
        if unsent:
            log.warning(
                "%s: dropped %d unsent messages of the aborted transaction", self.group, unsent
            )

    def repaired(self) -> None:
        """The new producer, the state and the positions are all in place again."""
        self._broken_since = None
        log.warning("%s: producer replaced", self.group)

    def abort(self, exc: BaseException) -> None:
        """End a transaction that failed outside Kafka (the handler, the registry)."""
        if isinstance(exc, KafkaException):
            return  # replace() gets a new producer, and the new one aborts what this left open
        with self.watchdog.watch("abort_transaction", 30):
            self.producer.abort_transaction(30)
