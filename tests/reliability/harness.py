"""Real service processes to break: start, kill -9, restart one; stream events; read the outcome."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import httpx
from golive_cli.system import Cluster as Where
from golive_cli.system import service_specs
from golive_contracts.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    PaymentAuthorized,
    PaymentDeclined,
)
from golive_contracts.scopes import Scope
from golive_eventing import clients
from golive_eventing.producer import record_headers
from golive_eventing.serde import EventSerde, PoisonRecordError
from golive_platform import process
from golive_platform.config import PlatformConfig
from golive_platform.kafka import KafkaNode, server_log
from golive_platform.platform import Platform
from golive_platform.services import ServiceSpec
from golive_platform.testing import Cluster

from tests.factories import order_placed, order_request
from tests.helpers import Topics, free_port, read_topic

CARDS = ("tok_visa_4242", "tok_visa_4242", "tok_visa_4242", "tok_visa_9995", "tok_visa_0002")


# What takes an order to its end: the order API, the process manager, payment's router (with its
# read model and API) and the version slot the route names (blue; the release tests start green).
PIPELINE = ("order", "order-pm", "payment", "payment-blue")


@dataclass
class Services:
    """The four services (and a second payment instance, `payment-b`) on a test's own topics."""

    config: PlatformConfig
    specs: dict[str, ServiceSpec]
    started: set[str] = field(default_factory=set)

    @classmethod
    def on(cls, cluster: Cluster, topics: Topics, config: PlatformConfig, **env: str) -> Services:
        where = Where(cluster.connection, cluster.services)
        specs = {s.name: s for s in service_specs(config, where, topics.names, env=env)}
        second = free_port()  # a second instance of the blue slot, for a failover
        specs["payment-blue-b"] = dataclasses.replace(
            specs["payment-blue"],
            name="payment-blue-b",
            port=second,
            env={**specs["payment-blue"].env, "PAYMENT_SLOT_PORT": str(second), "INSTANCE_ID": "1"},
        )
        return cls(config, specs)

    @property
    def headers(self) -> dict[str, str]:
        """A token that may place and read orders, from the issuer the services trust."""
        return self.config.issuer().headers(Scope.PLACE_ORDERS, Scope.READ_ORDERS)

    def url(self, name: str) -> str:
        found = self.specs[name].url
        assert found is not None
        return found

    def start(self, *names: str) -> None:
        platform = Platform(
            self.config, services=[self.specs[n] for n in names], echo=lambda _line: None
        )
        platform.start_services()
        self.started |= set(names)

    def kill(self, name: str) -> None:
        """kill -9: no shutdown hook, no transaction abort, no group leave."""
        running = process.read(self.config.run_dir, name)
        assert running is not None and running.alive, f"{name} is not running"
        os.killpg(running.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while running.process() is not None:
            assert time.monotonic() < deadline, f"{name} survived SIGKILL"
            time.sleep(0.05)  # the polling interval of a deadline-bounded wait
        process.pid_file(self.config.run_dir, name).unlink(missing_ok=True)
        self.started.discard(name)

    def stop(self, *names: str) -> None:
        for name in names:
            process.stop(self.config.run_dir, name, self.config.stop_timeout_s)
            self.started.discard(name)

    def revive(self) -> list[str]:
        """Restart every started service whose process has exited (a supervisor's job)."""
        dead = []
        for name in sorted(self.started):
            running = process.read(self.config.run_dir, name)
            if running is None or not running.alive:
                process.pid_file(self.config.run_dir, name).unlink(missing_ok=True)
                dead.append(name)
        if dead:
            self.start(*dead)
        return dead

    def stop_all(self) -> None:
        self.stop(*sorted(self.started))

    def log_tails(self, lines: int = 12) -> str:
        """The last lines of every process's log in this run dir (services, and a test's own
        broker or registry), health checks left out and runs of the same line (a client retrying
        a connection, say) told once with their count: for a failed fault test's message. The
        whole logs are kept too (tests/plugins/logs.py says where)."""
        parts = []
        for pid_file in sorted(self.config.run_dir.glob("*.json")):
            running = process.read(self.config.run_dir, pid_file.stem)
            if running is None:
                continue
            # The broker's stdout holds only JVM start-up failures; its own log is server.log.
            log = server_log(self.config) if running.name == KafkaNode.name else Path(running.log)
            if not log.exists():
                continue
            kept = _runs(
                line[:300]
                for line in log.read_text(errors="replace").splitlines()
                if '"GET /' not in line
            )
            state = "running" if running.alive else "exited"
            parts.append(
                f"--- {running.name} ({state}), {log} (last {lines} lines)\n"
                + "\n".join(kept[-lines:])
            )
        return "\n".join(parts)


def _runs(lines: Iterable[str]) -> list[str]:
    """Consecutive lines that differ only in their digits (times, ports, counters) as one."""
    out = []
    for _, run in groupby(lines, key=lambda line: re.sub(r"\d+", "#", line)):
        first, *more = run
        out.append(f"{first}  [and {len(more)} more like it]" if more else first)
    return out


def new_orders(count: int, placed_at: datetime | None = None) -> list[OrderPlaced]:
    when = placed_at or datetime.now(UTC)
    return [
        order_placed(str(uuid.uuid4()), card=CARDS[i % len(CARDS)], placed_at=when)
        for i in range(count)
    ]


def serde_for(cluster: Cluster, topics: Topics) -> EventSerde:
    return EventSerde(clients.registry(cluster.connection), topics.as_map())


def publish(
    cluster: Cluster, topics: Topics, events: Sequence[Event], per_second: float | None = None
) -> None:
    """Publish (keyed by journey), paced at `per_second` if given; every record acknowledged."""
    serde = serde_for(cluster, topics)
    producer = clients.producer(
        cluster.connection,
        **{
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
            "linger.ms": 5,
        },
    )
    started = time.monotonic()
    for i, event in enumerate(events):
        if per_second is not None:
            wait = started + i / per_second - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # pacing the load, not synchronising
        producer.produce(
            serde.topic_of(type(event)),
            key=event.envelope.correlation_id.encode(),
            value=serde.serialize(event),
            headers=record_headers(event),  # type: ignore[arg-type]
        )
        producer.poll(0)
    assert producer.flush(30) == 0, "not every event was acknowledged"


@dataclass(frozen=True)
class Outcome:
    payments: Counter[str]  # order id -> payment events
    terminal: Counter[str]  # order id -> OrderConfirmed/OrderCancelled events
    placed: Counter[str]  # order id -> OrderPlaced events
    cancel_reasons: dict[str, str]
    # order id -> the version that decided its payment (producer_version: each slot's own)
    versions: dict[str, str] = field(default_factory=dict)

    def gaps(self, order_ids: Sequence[str]) -> str:
        """What is missing for these orders, for a failure message."""
        missing = {
            "no OrderPlaced": [i for i in order_ids if not self.placed[i]],
            "no payment": [i for i in order_ids if not self.payments[i]],
            "no end": [i for i in order_ids if not self.terminal[i]],
        }
        told = [f"{len(ids)} {what} (first {ids[0]})" for what, ids in missing.items() if ids]
        return f"of {len(order_ids)} orders: {'; '.join(told) or 'none missing'}"


def outcome(cluster: Cluster, topics: Topics, serde: EventSerde | None = None) -> Outcome:
    """What the topics hold; pass a `serde` to read with the schemas it has cached already."""
    serde = serde or serde_for(cluster, topics)
    payments: Counter[str] = Counter()
    terminal: Counter[str] = Counter()
    placed: Counter[str] = Counter()
    reasons: dict[str, str] = {}
    versions: dict[str, str] = {}
    for topic in (topics.orders, topics.payments):
        for _key, value in read_topic(cluster.connection, topic, timeout_s=30):
            match event := _decoded(serde, value):
                case PaymentAuthorized() | PaymentDeclined():
                    payments[str(event.order_id)] += 1
                    versions[str(event.order_id)] = event.envelope.producer_version
                case OrderConfirmed():
                    terminal[str(event.order_id)] += 1
                case OrderCancelled():
                    terminal[str(event.order_id)] += 1
                    reasons[str(event.order_id)] = event.reason
                case OrderPlaced():
                    placed[str(event.order_id)] += 1
    return Outcome(payments, terminal, placed, reasons, versions)


def _decoded(serde: EventSerde, value: bytes | None) -> Event | None:
    try:
        return serde.deserialize(value)
    except PoisonRecordError:  # poison records a test injected
        return None


def all_settled(cluster: Cluster, topics: Topics, orders: Iterable[OrderPlaced]) -> Outcome | None:
    """The outcome once every order has a payment event and a terminal event, else None."""
    found = outcome(cluster, topics)
    ids = [str(o.order_id) for o in orders]
    if all(found.payments[i] and found.terminal[i] for i in ids):
        return found
    return None


# -- placing orders over HTTP while something is down -----------------------------------------

# The order API bounds delivery at 5 s (delivery.timeout.ms): a request that outlives this is a hang.
ANSWER_WITHIN_S = 10.0


@dataclass
class Answer:
    key: str
    body: dict[str, Any]
    status: int | None  # None: no answer in ANSWER_WITHIN_S, or the connection failed
    retry_after: str | None
    order_id: str | None
    phase: str


@dataclass
class Clients:
    """Workers POSTing new orders, each with its own Idempotency-Key, until stopped."""

    order_url: str
    headers: dict[str, str]
    answers: list[Answer] = field(default_factory=list)
    phase: str = "up"
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _work(self) -> None:
        with httpx.Client(
            base_url=self.order_url, timeout=ANSWER_WITHIN_S, headers=self.headers
        ) as client:
            while not self._stop.is_set():
                phase = self.phase
                answer = place(client, f"outage-{uuid.uuid4()}", order_request(), phase)
                with self._lock:
                    self.answers.append(answer)

    def count(self, status: int | None, phase: str) -> int:
        with self._lock:
            return sum(1 for a in self.answers if a.status == status and a.phase == phase)

    def accepted(self) -> list[str]:
        """The ids of the orders the API accepted (202) so far."""
        with self._lock:
            return [a.order_id for a in self.answers if a.order_id is not None]

    def __enter__(self) -> Clients:
        self._pool = ThreadPoolExecutor(4)
        self._futures = [self._pool.submit(self._work) for _ in range(4)]
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for future in self._futures:
            future.result(timeout=ANSWER_WITHIN_S + 5)
        self._pool.shutdown()


def place(client: httpx.Client, key: str, body: dict[str, Any], phase: str) -> Answer:
    try:
        got = client.post("/orders", json=body, headers={"Idempotency-Key": key})
    except httpx.HTTPError:
        return Answer(key, body, None, None, None, phase)
    order_id = got.json().get("order_id") if got.status_code == 202 else None
    return Answer(key, body, got.status_code, got.headers.get("retry-after"), order_id, phase)
