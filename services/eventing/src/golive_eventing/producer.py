"""One idempotent producer per process: acks=all, murmur2, bounded delivery, headers with trace context."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from golive_contracts.events import Event

from golive_eventing import clients, tracing
from golive_eventing.serde import EventSerde
from golive_eventing.settings import KafkaSettings

log = logging.getLogger(__name__)

BUFFER_FULL_RETRY_S = 2.0


class DeliveryFailedError(RuntimeError):
    """The broker did not acknowledge in time: the outcome is unknown, retry with the same key."""


@dataclass(frozen=True)
class Delivered:
    topic: str
    partition: int
    offset: int


def service_producer(settings: KafkaSettings, client_id: str, **extra: Any) -> Producer:
    """A producer with the keys every producer of a service shares (and `extra`), on the
    settings' connection (golive_eventing.clients)."""
    return clients.producer(
        settings,
        **{
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            # Java clients hash keys with murmur2: the same key lands on the same partition
            # from both.
            "partitioner": "murmur2_random",
            "linger.ms": settings.linger_ms,
            "delivery.timeout.ms": settings.delivery_timeout_ms,
            "request.timeout.ms": min(3000, settings.delivery_timeout_ms),
            **extra,
        },
    )


def record_headers(event: Event) -> tracing.Headers:
    return tracing.inject([("event_type", event.type_name().encode())])


def kafka_error(exc: BaseException) -> KafkaError | None:
    """The KafkaError a KafkaException carries, if it carries one."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def produce_bounded(producer: Producer, **kwargs: Any) -> None:
    """produce(), and if the local queue is full, serve callbacks and retry for a bounded time."""
    deadline = time.monotonic() + BUFFER_FULL_RETRY_S
    while True:
        try:
            producer.produce(**kwargs)
            producer.poll(0)
            return
        except BufferError:
            if time.monotonic() > deadline:
                raise DeliveryFailedError("producer queue full") from None
            producer.poll(0.05)


class EventProducer:
    """Publishes events and tells the caller when (and where) the broker acknowledged them.

    A fatal producer error (librdkafka's idempotence guarantee broken, say), reported to
    error_cb, leaves the producer refusing everything for good. The publish it hits fails like
    an unacknowledged one (DeliveryFailedError: the caller answers 503 and the client retries
    with its key), and the next publish goes through a new producer. The old one is flushed on
    a thread of its own, so every message it still holds gets its delivery report and no caller
    waits for ever.
    """

    def __init__(self, settings: KafkaSettings, serde: EventSerde, client_id: str) -> None:
        self.serde = serde
        self.settings = settings
        self.client_id = client_id
        self._fatal: KafkaError | None = None
        self._lock = threading.Lock()
        self._producer = self._new_producer()
        self._running = True
        # Delivery callbacks run on this thread (librdkafka's), never on the event loop.
        self._poller = threading.Thread(target=self._poll, name=f"{client_id}-poll", daemon=True)
        self._poller.start()

    def _new_producer(self) -> Producer:
        return service_producer(self.settings, self.client_id, error_cb=self._on_error)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error

    def _poll(self) -> None:
        while self._running:
            self._producer.poll(0.1)

    def _replace_if_fatal(self) -> Producer:
        with self._lock:
            if self._fatal is not None:
                log.error(
                    "%s: fatal producer error (%s); replacing the producer",
                    self.client_id,
                    self._fatal,
                )
                old, self._producer = self._producer, self._new_producer()
                self._fatal = None
                timeout_s = self.settings.delivery_timeout_ms / 1000 + 5
                threading.Thread(
                    target=old.flush,
                    args=(timeout_s,),
                    name=f"{self.client_id}-retired",
                    daemon=True,
                ).start()
            return self._producer

    async def publish(self, event: Event, key: str) -> Delivered:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Delivered] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, done, err, msg)

        self._produce(event, key, on_delivery)
        return await done

    def publish_sync(self, event: Event, key: str, timeout_s: float = 10.0) -> Delivered:
        result: list[Delivered | DeliveryFailedError] = []
        finished = threading.Event()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            result.append(_outcome(err, msg))
            finished.set()

        self._produce(event, key, on_delivery)
        if not finished.wait(timeout_s):
            raise DeliveryFailedError("no delivery report in time")
        outcome = result[0]
        if isinstance(outcome, DeliveryFailedError):
            raise outcome
        return outcome

    def _produce(self, event: Event, key: str, on_delivery: Any) -> None:
        topic = self.serde.topic_of(type(event))
        value = self.serde.serialize(event)
        producer = self._replace_if_fatal()
        with tracing.producing(topic, key):
            try:
                produce_bounded(
                    producer,
                    topic=topic,
                    key=key.encode(),
                    value=value,
                    headers=record_headers(event),
                    on_delivery=on_delivery,
                )
            except KafkaException as exc:
                # librdkafka reports a fatal error to error_cb; produce() after it fails _FATAL.
                error = kafka_error(exc)
                if error is not None and (error.fatal() or error.code() == KafkaError._FATAL):
                    self._fatal = error
                raise DeliveryFailedError(f"not produced: {exc}") from exc

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        self._running = False
        self._poller.join(timeout=2)


def _outcome(err: KafkaError | None, msg: Message) -> Delivered | DeliveryFailedError:
    if err is not None:
        return DeliveryFailedError(str(err))
    return Delivered(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)


def _settle(done: asyncio.Future[Delivered], err: KafkaError | None, msg: Message) -> None:
    if done.done():
        return
    outcome = _outcome(err, msg)
    if isinstance(outcome, DeliveryFailedError):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
