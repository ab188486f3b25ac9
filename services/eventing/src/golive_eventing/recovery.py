"""A transactional producer that is replaced, not trusted, after a transaction fails in Kafka or
the broker goes away; what an earlier producer of the same id left without a marker, settled
before the new one commits anything; and the watchdog that ends a process whose Kafka call
blocked past its timeout (crash-only).

librdkafka's own recovery of a transactional producer after a broker restart is not to be relied
on: it has left producers waiting on a request never sent (every call then fails with
_CONFLICT), blocked in send_offsets_to_transaction past its timeout, and failing
OUT_OF_ORDER_SEQUENCE_NUMBER epoch bumps. A new producer with the same transactional.id fences
the old one and aborts what it left open, every time.

Kafka's own coordinator is not to be relied on either, on a broker that restarts alone: it skips
the markers of a partition whose leader it cannot find ("likely deleted"), and a single broker
stopping or starting leaves every partition leaderless for a moment. A transaction completed in
that moment has no marker anywhere; its records stay pending until this producer id's next
marker on each partition settles them, whichever way that transaction goes (docs/reliability.md,
"A broker stopped mid-commit"). `Transactions.sweep` settles them all one way first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from confluent_kafka import IsolationLevel, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import OffsetSpec

from golive_eventing import clients
from golive_eventing.errors import RetryBatchError
from golive_eventing.producer import kafka_error, produce_bounded, service_producer
from golive_eventing.settings import KafkaSettings

log = logging.getLogger(__name__)

# How long past its own timeout a transactional call may block before the process exits.
STALL_GRACE_S = 15.0
# How long a processor tries to replace a failed producer in-process before it exits instead.
RECOVERY_LIMIT_S = 60.0
# How long a crashed instance's open transaction blocks readers until the broker aborts it.
TRANSACTION_TIMEOUT_MS = 10_000
# librdkafka (no KIP-890 yet) answers the broker's CONCURRENT_TRANSACTIONS, which comes right
# after a commit while its markers are written, by waiting retry.backoff.ms (default 100 ms)
# before AddOffsetsToTxn again: a wait on every hop of every journey. Retries still back off
# exponentially, to retry.backoff.max.ms (1 s). Measured: golive regress of the golden capture
# 50-60 s -> 38-42 s here (tests/replay/test_regress.py, alone). At 100 orders/s the router's
# AddOffsetsToTxn met it in 161 of 342 transactions (an AddPartitionsToTxn of the same
# transaction in flight: 502 of those for the 342), so 10 -> 2 ms: journey p50 15 % and p99
# 17 % shorter in alternating runs, CPU per order unchanged (docs/performance-journal.md,
# 2026-12-03).
RETRY_BACKOFF_MS = 2
FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
# How long a sweep waits for a topic's partitions, and for its abort to settle every one.
SWEEP_WAIT_S = 30.0
SWEEP_KEY = b"golive.sweep"  # the key of a sweep's records, which are aborted, so never read


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
    `<group prefix><group>-<instance>`), replaced whenever a transaction fails in Kafka or the
    broker went away; each new one sweeps (see `sweep`) before its first transaction."""

    def __init__(self, settings: KafkaSettings, group: str, instance: str) -> None:
        self.settings = settings
        self.group = group
        self.transactional_id = settings.names.transactional_id(group, instance)
        self.watchdog = Watchdog(group)
        self._broken_since: float | None = None
        self._went_away = False
        self.producer = self._new_producer()

    def _new_producer(self) -> Producer:
        """init_transactions() with our transactional.id aborts whatever the last producer with
        that id left open (a crashed process, or this one's failed producer)."""
        producer = service_producer(
            self.settings,
            self.transactional_id,
            **{
                "transactional.id": self.transactional_id,
                "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                "retry.backoff.ms": RETRY_BACKOFF_MS,
                "error_cb": self._on_error,
            },
        )
        producer.init_transactions(30)
        return producer

    def _on_error(self, error: KafkaError) -> None:
        """Every broker is unreachable. What the broker completed as it stopped or started may
        be left without markers; the producer is replaced (and sweeps) before this process
        commits anything else. librdkafka queues the event and serves it on the thread that
        polls the producer, which is why `usable` polls first."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._went_away = True

    @property
    def broken(self) -> bool:
        """A transaction failed in Kafka, or the broker went away, and the producer has not
        been replaced yet."""
        return self._broken_since is not None

    def failed(self, exc: BaseException) -> None:
        """A batch failed with `exc`. Fenced: another process has our transactional.id, so this
        one must stop (crash-only). In Kafka, or with the broker gone meanwhile: the producer is
        not to be used again."""
        if fenced(exc):
            raise ProducerFencedError(f"{self.transactional_id} was fenced: {exc}") from exc
        if (isinstance(exc, KafkaException) or self._went_away) and self._broken_since is None:
            self._broken_since = time.monotonic()

    def usable(self) -> None:
        """RetryBatchError if the producer is not to be used for a transaction: it is being
        replaced, or the broker went away since its last use (an error reported since then is
        served by this poll: an idle processor learns it here, not after its next commit)."""
        self.producer.poll(0)
        if self.broken:
            raise RetryBatchError("the producer is being replaced")
        if self._went_away:
            raise RetryBatchError("the broker went away: the producer is replaced first")

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
            try:
                unsent = old.flush(0)  # how many it holds; a zero timeout waits for nothing
            except KafkaException:
                # Serving its reports can raise the fatal error the fencing caused (a produce
                # request still in flight answered with an old epoch): it is what we expect.
                unsent = len(old)
            old.purge()
            del old
            # From here on a disappearance counts again; the old producer's own reports (served
            # by its flush above) are about a producer that is gone.
            self._went_away = False
        if unsent:
            log.warning(
                "%s: dropped %d unsent messages of the aborted transaction", self.group, unsent
            )

    def commit(self) -> None:
        """Commit the open transaction, unless the broker went away since it began: what the
        broker completed as it went may have lost its markers, and this commit would settle
        them committed where the sweep settles them aborted (RetryBatchError: the transaction
        is aborted and the producer replaced first)."""
        self.usable()
        with self.watchdog.watch("commit_transaction", 30):
            self.producer.commit_transaction(30)

    def sweep(
        self, topics: Sequence[str], group_metadata: Any, offsets: Sequence[TopicPartition]
    ) -> None:
        """Settle, as aborted, whatever an earlier producer of this transactional id left without
        a marker on any partition it may write: `topics` (its outputs, dead letters and
        changelog) and the group's offsets (`offsets`, staged for the group of `group_metadata`
        and discarded with the rest). One transaction writes to every one of them and is aborted:
        its abort marker settles this producer id's pending records there, on every partition
        alike. What they held is read again from the committed positions and decided again, to
        the same events (their ids derive from their causes). Before the producer's first
        transaction only: a committed one would settle some of them the other way first.

        The abort's markers can be dropped by the same Kafka bug (a broker still fenced at its
        start), so the sweep is done only when every partition's last stable offset has passed
        its sweep record; otherwise KafkaException, and the producer is replaced and sweeps
        again (or the process exits, past RECOVERY_LIMIT_S)."""
        producer = self.producer
        swept: dict[tuple[str, int], int] = {}
        failures: list[str] = []

        def delivered(error: KafkaError | None, message: Any) -> None:
            if error is not None:
                failures.append(f"{message.topic()}[{message.partition()}]: {error.str()}")
            else:
                swept[(message.topic(), message.partition())] = message.offset()

        targets = [(topic, partition) for topic in topics for partition in self._partitions(topic)]
        with self.watchdog.watch("sweeping what an earlier producer left", 60):
            producer.begin_transaction()
            for topic, partition in targets:
                produce_bounded(
                    producer,
                    topic=topic,
                    key=SWEEP_KEY,
                    value=None,
                    partition=partition,
                    on_delivery=delivered,
                )
            if producer.flush(30) != 0 or failures:  # each partition is in the transaction
                raise KafkaException(
                    KafkaError(KafkaError._TIMED_OUT, f"sweep not delivered: {failures}")
                )
            try:
                producer.send_offsets_to_transaction(list(offsets), group_metadata, 10)
            except KafkaException as exc:
                if fenced(exc):
                    raise ProducerFencedError(f"{self.transactional_id} was fenced: {exc}") from exc
                # An abortable error (the group's generation, say): the offsets partition is in
                # the transaction all the same, which is all the abort needs.
            producer.abort_transaction(30)
        self._settled(swept)

    def _partitions(self, topic: str) -> list[int]:
        """The topic's partitions from the broker's metadata; asked again while the broker
        answers with an error or none (still loading after a start), up to SWEEP_WAIT_S."""
        deadline = time.monotonic() + SWEEP_WAIT_S
        while True:
            found = self.producer.list_topics(topic, timeout=10).topics.get(topic)
            if found is not None and found.error is None and found.partitions:
                return sorted(found.partitions)
            if time.monotonic() > deadline:
                detail = found.error if found is not None else "not in the metadata"
                raise KafkaException(
                    KafkaError(KafkaError._TIMED_OUT, f"sweep: no partitions of {topic}: {detail}")
                )
            time.sleep(0.2)  # the polling interval of a deadline-bounded wait

    def _settled(self, swept: dict[tuple[str, int], int]) -> None:
        """Return once every swept partition's last stable offset is past its sweep record: the
        abort marker is there, and nothing of ours before it is pending. Another instance's open
        transaction holds it back for at most its transaction timeout."""
        admin = clients.admin(self.settings)
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        pending = dict(swept)
        deadline = time.monotonic() + SWEEP_WAIT_S
        while pending:
            asked = {TopicPartition(t, p): latest for t, p in pending}
            answers = admin.list_offsets(asked, isolation_level=IsolationLevel.READ_COMMITTED)
            for tp, future in answers.items():
                try:
                    stable = future.result(10).offset
                except KafkaException:
                    continue  # asked again below
                if stable > pending[(tp.topic, tp.partition)]:
                    del pending[(tp.topic, tp.partition)]
            if not pending:
                return
            if time.monotonic() > deadline:
                where = ", ".join(f"{t}[{p}] sweep at {o}" for (t, p), o in sorted(pending.items()))
                raise KafkaException(
                    KafkaError(
                        KafkaError._TIMED_OUT,
                        f"{self.group}: the sweep's abort did not settle {where} "
                        f"in {SWEEP_WAIT_S:.0f} s (docs/runbooks/hanging-transaction.md)",
                    )
                )
            time.sleep(0.1)  # the polling interval of a deadline-bounded wait

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
