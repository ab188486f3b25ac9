"""One idempotent producer per process: acks=all, murmur2, bounded delivery, headers with trace context."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from golive_contracts.events import Event

from golive_eventing import tracing
from golive_eventing.serde import EventSerde
from golive_eventing.settings import KafkaSettings

BUFFER_FULL_RETRY_S = 2.0


class DeliveryFailedError(RuntimeError):
    """The broker did not acknowledge in time: the outcome is unknown, retry with the same key."""


@dataclass(frozen=True)
class Delivered:
    topic: str
    partition: int
    offset: int


def producer_config(settings: KafkaSettings, client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        # Java clients hash keys with murmur2: the same key lands on the same partition from both.
        "partitioner": "murmur2_random",
        "linger.ms": settings.linger_ms,
        "delivery.timeout.ms": settings.delivery_timeout_ms,
        "request.timeout.ms": min(3000, settings.delivery_timeout_ms),
        **extra,
    }


def record_headers(event: Event) -> tracing.Headers:
    return tracing.inject([("event_type", event.type_name().encode())])


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
    """Publishes events and tells the caller when (and where) the broker acknowledged them."""

    def __init__(self, settings: KafkaSettings, serde: EventSerde, client_id: str) -> None:
        self.serde = serde
        self._producer = Producer(producer_config(settings, client_id))
        self._running = True
        # Delivery callbacks run on this thread (librdkafka's), never on the event loop.
        self._poller = threading.Thread(target=self._poll, name=f"{client_id}-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while self._running:
            self._producer.poll(0.1)

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
        with tracing.producing(topic):
            produce_bounded(
                self._producer,
                topic=topic,
                key=key.encode(),
                value=self.serde.serialize(event),
                headers=record_headers(event),
                on_delivery=on_delivery,
            )

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
