"""make bench: orders through the whole running system, beside references measured in the same run.

References: the raw confluent-kafka produce/consume rate (512-byte records, acks=all), a bare
FastAPI endpoint taking the same request model (OrderCreate), and the same endpoint checking the
token and answering only once the broker acknowledged the order (the least a durable POST does:
echo_app.py), all under the same load driver; and the system floor, that durable endpoint with
the system's Kafka work behind it done bare (bench_floor.py), under the load POST /orders gets:
the most the architecture's Kafka work allows on this machine.
Figures: POST /orders req/s, sustained orders/s placed-to-outcome (and how many journeys were open
when the load stopped), journey latency (POST sent -> OrderConfirmed/OrderCancelled record
timestamp) at half the sustained rate and at a light 20 orders/s, each beside the floor at its
rate and split into its stages (STAGES: where the time goes, hop by hop, from one read of the
records); at the light rate also the journey as issue 18 defines it, as a client sees it (from
the 202 until GET /orders/{id}, a long poll, answers the final state); and the whole stack's
resident memory. On its own instance (var/bench-system, ports
2709x/260xx), never the one `make run` started, started on fresh data each run.
Bounded in count and time.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bench_floor
import bench_table
import echo_app
import psutil
from bench_platform import cpu_s, process_cpu_s, resident_mb, throughput, write_figures
from confluent_kafka import Consumer
from golive_cli.system import TOKEN_ENV, system
from golive_contracts.events import JOURNEY_ENDS
from golive_contracts.scopes import Scope
from golive_contracts.topology import ORDERS, PAYMENT_BLUE, PAYMENT_GREEN, PAYMENTS, slot_topic
from golive_eventing import clients
from golive_eventing.auth import Verifier
from golive_eventing.clients import Connection
from golive_eventing.settings import AuthSettings
from golive_platform.config import PlatformConfig
from golive_platform.kafka import admin_client
from golive_platform.platform import Platform
from golive_platform.process import port_in_use
from golive_platform.topics import TopicSpec, apply

# Every port of the bench's instance is below Linux's ephemeral range (32768-60999): a port
# in it can be held for a minute after any outgoing connection happened to use it (TIME_WAIT),
# and the start then fails "already in use" (38020 did, just after make test).
ECHO_PORT = 26099
SYSTEM_FLOOR_PORT = 26098
# A journey's exactly-once hops: payment's router, the deciding slot, the process manager.
FLOOR_HOPS = 3
# The journey is timed at half the sustained rate, and at this light rate: what one customer
# among few sees, where the hops wait on nothing but each other.
LIGHT_RATE_PER_S = 20.0
# The events that end a journey.
OUTCOMES = tuple(end.type_name().encode() for end in JOURNEY_ENDS)
# A journey's stages, each ended by a record whose log time marks it: which topic, and which
# event types there (empty: any).
STAGES = (
    ("POST -> OrderPlaced", (ORDERS,), (b"OrderPlaced",)),
    ("-> handed to a payment slot", tuple(slot_topic(ORDERS, g.name) for g in (PAYMENT_BLUE, PAYMENT_GREEN)), ()),
    ("-> payment outcome", (PAYMENTS,), ()),
    ("-> order outcome", (ORDERS,), OUTCOMES),
)  # fmt: skip


def bench_config() -> PlatformConfig:
    return PlatformConfig(
        data_dir="var/bench-system",  # type: ignore[arg-type]
        kafka_port=27092,
        kafka_controller_port=27093,
        registry_port=26081,
        registry_management_port=27001,
        postgres_port=26433,
        order_port=26000,
        order_process_manager_port=26010,
        payment_port=26020,
        payment_blue_port=26021,
        payment_green_port=26022,
        audit_port=26030,
        viewers=False,  # measured without export, whatever .env says
    )


def order_body(n: int) -> dict[str, Any]:
    card = "tok_visa_0002" if n % 5 == 0 else "tok_visa_4242"
    return {
        "customer_id": f"bench-{n % 50}",
        "email": f"b{n}@example.com",
        "currency": "EUR",
        "card_token": card,
        "shipping_address": {
            "name": "B",
            "line1": "L",
            "city": "C",
            "postal_code": "1",
            "country": "NL",
        },
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price_minor": 1000 + n % 100}],
    }


def wrk(url: str, seconds: float, connections: int, token: str) -> tuple[float, int]:
    """POST /orders-shaped load from wrk (C, two threads): req/s of 2xx answers, and their count."""
    script = Path(__file__).with_name("post_orders.lua")
    done = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        env={**os.environ, TOKEN_ENV: token},
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT"))
    fields = dict(kv.split("=") for kv in line.split()[1:])
    ok = int(fields["requests"]) - int(fields["errors"]) - int(fields["non2xx"])
    return ok / (int(fields["duration_us"]) / 1e6), ok


@dataclass
class OpenLoop:
    """What an open loop of POSTs saw: each accepted order's send time and its 202's arrival
    (s); and, when it followed them, when a GET first answered each one's final state."""

    sent: dict[str, float] = field(default_factory=dict)
    accepted: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)

    def client_journeys_ms(self) -> list[float]:
        """Issue 18's journey, as a client sees it: from the 202 until GET answers the final
        state, ascending."""
        return sorted(
            (self.final[o] - self.accepted[o]) * 1000 for o in self.final if o in self.accepted
        )


def open_loop(url: str, token: str, rate: float, seconds: float, follow: bool = False) -> OpenLoop:
    """POSTs at a fixed rate, each with its own Idempotency-Key; with `follow`, each accepted
    order followed as a client of the API should, by long poll (If-None-Match, Prefer: wait),
    until a GET answers its final state.

    Sent by vegeta (Go; VEGETA names its binary, `make bench` builds it): a Python client
    at this rate took a third of a core itself, and the system shares the two cores with it
    (measured: the machine 97 % busy at 80 orders/s with it, about half without). Its results
    are read as they come, so a follower starts as soon as its order's 202 arrived."""
    vegeta = os.environ.get("VEGETA", "vegeta")
    seen = OpenLoop()
    with tempfile.TemporaryDirectory(prefix="bench-vegeta-") as scratch:
        work = Path(scratch)
        count = int(rate * seconds)
        targets = []
        for n in range(count):
            body = work / f"body-{n % 16}.json"
            if n < 16:
                body.write_text(json.dumps(order_body(n)))
            targets.append(
                f"POST {url}\nContent-Type: application/json\nAuthorization: Bearer {token}\n"
                f"Idempotency-Key: lat-{uuid.uuid4()}\n@{body}\n"
            )
        (work / "targets.txt").write_text("\n".join(targets))
        attack = subprocess.Popen(
            [vegeta, "attack", "-rate", f"{round(rate * 60)}/1m", "-duration", f"{count / rate:.3f}s",
             "-targets", str(work / "targets.txt"), "-timeout", "30s", "-max-workers", "256"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        encode = subprocess.Popen(
            [vegeta, "encode", "--to", "json"], stdin=attack.stdout, stdout=subprocess.PIPE, text=True
        )  # fmt: skip
        assert attack.stdout is not None
        assert encode.stdout is not None
        attack.stdout.close()  # encode's now: it sees the end when attack exits
        with ThreadPoolExecutor(max_workers=64, thread_name_prefix="follow") as followers:
            following: dict[str, Future[float | None]] = {}
            for line in encode.stdout:
                result = json.loads(line)
                if result["code"] != 202:
                    continue
                order_id = json.loads(base64.b64decode(result["body"]))["order_id"]
                at = datetime.fromisoformat(result["timestamp"]).timestamp()
                # vegeta starts the targets over if it sends more than there are: keep the first.
                if order_id in seen.sent:
                    continue
                seen.sent[order_id] = at
                seen.accepted[order_id] = at + result["latency"] / 1e9
                if follow:
                    order_url = f"{url}/{order_id}"
                    following[order_id] = followers.submit(_until_final, order_url, token)
            for order_id, followed in following.items():
                final_at = followed.result()
                if final_at is not None:
                    seen.final[order_id] = final_at
        if attack.wait(timeout=seconds + 120) != 0 or encode.wait(timeout=60) != 0:
            raise SystemExit(
                f"vegeta failed: attack {attack.returncode}, encode {encode.returncode}"
            )
    return seen


_follower = threading.local()


def _until_final(url: str, token: str, timeout_s: float = 60.0) -> float | None:
    """When a GET of the order first answered its final state (s; None: not by `timeout_s`):
    one GET, then long polls on the version it has, each answered when the read model changes
    the order.

    The standard library's HTTP client, a kept connection per follower thread: light enough
    that the followers start at their 202. httpx was not: one client shared by the threads was
    handed a closed socket, one per order (its TLS context) cost the bench's own process a
    second of delay, and one per thread still left one journey in a hundred starting its first
    GET 60 to 600 ms after its 202 (marks in the GET route, 2026-12-03)."""
    deadline = time.monotonic() + timeout_s
    target = urlsplit(url)
    where = (target.hostname or "127.0.0.1", target.port or 80, target.path)
    auth = {"Authorization": f"Bearer {token}"}
    status, etag, body = _get(*where, auth)
    while time.monotonic() < deadline:
        if status not in (200, 304):
            raise SystemExit(f"GET {url}: {status} {body[:300]!r}")
        if status == 200 and json.loads(body)["status"] != "PLACED":
            return time.time()
        wait = {"If-None-Match": etag, "Prefer": "wait=10"} if etag else {}
        status, etag, body = _get(*where, auth | wait)
    return None


def _get(host: str, port: int, path: str, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
    """GET on this thread's kept connection: status, ETag, body. A connection the server closed
    while it was idle (its keep-alive timeout) is opened again, once."""
    for attempt in (1, 2):
        connection: http.client.HTTPConnection | None = getattr(_follower, "connection", None)
        if connection is None:
            connection = _follower.connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.getheader("ETag"), answer.read()
        except (http.client.RemoteDisconnected, ConnectionError):
            connection.close()
            _follower.connection = None
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _reader(connection: Connection, topics: list[str]) -> Consumer:
    """A consumer of `topics` from their start, committed records only, in a group of its own."""
    consumer = clients.consumer(
        connection,
        **{
            "group.id": f"bench-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        },
    )
    consumer.subscribe(topics)
    return consumer


def outcome_times(
    connection: Connection,
    topic: str,
    want: int,
    since: float,
    timeout_s: float,
    types: tuple[bytes, ...] = OUTCOMES,
) -> dict[str, float]:
    """Record timestamps (s) of the outcomes of `want` orders, written after `since` to
    `topic`: records of the event `types` (empty: any, as a floor's records have none)."""
    consumer = _reader(connection, [topic])
    found: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < want and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.5):
                raw_key = msg.key()
                if msg.error() or raw_key is None:
                    continue
                at = msg.timestamp()[1] / 1000
                event_type = dict(msg.headers() or []).get("event_type")
                if (not types or event_type in types) and at >= since:
                    found[raw_key.decode()] = at
    finally:
        consumer.close()
    return found


def journeys(connection: Connection, sent: dict[str, float], timeout_s: float) -> list[list[float]]:
    """Each journey's marks (s): its POST's send time, then the log time of the record that ends
    each of STAGES. Journeys missing a mark by `timeout_s` are left out."""
    consumer = _reader(connection, sorted({t for _, topics, _ in STAGES for t in topics}))
    marks: dict[str, dict[int, float]] = {}
    wanted = len(sent) * len(STAGES)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and sum(len(m) for m in marks.values()) < wanted:
            for msg in consumer.consume(1000, timeout=0.5):
                raw_key = msg.key()
                if msg.error() or raw_key is None or raw_key.decode() not in sent:
                    continue
                event_type = dict(msg.headers() or []).get("event_type")
                for n, (_, topics, types) in enumerate(STAGES):
                    if msg.topic() in topics and (not types or event_type in types):
                        marks.setdefault(raw_key.decode(), {})[n] = msg.timestamp()[1] / 1000
    finally:
        consumer.close()
    return [
        [sent[order_id], *(at[n] for n in range(len(STAGES)))]
        for order_id, at in marks.items()
        if len(at) == len(STAGES)
    ]


def check_cost_us(config: PlatformConfig, token: str, rounds: int = 2000) -> float:
    """What verifying one token costs when it was not seen before (signature and claims)."""
    verifier = Verifier(AuthSettings(auth_jwks_file=config.issuer().jwks_path))
    started = time.perf_counter()
    for _ in range(rounds):
        verifier.check(token)
    return (time.perf_counter() - started) / rounds * 1e6


def report(config: PlatformConfig, figures: dict[str, Any]) -> None:
    """One table: each figure beside its same-run reference and its target; written as JSON
    and HTML under var/bench/ too."""
    table = bench_table.rows(figures)
    print(bench_table.text(table))
    print(bench_table.cpu_text(figures))
    print(bench_table.host_text(figures))
    resident = ", ".join(f"{name} {mb[0]}/{mb[1]}" for name, mb in figures["resident_mb"].items())
    print(f"resident MB, RSS/PSS: {resident}")
    print(f"a token not seen before takes {figures['token_check_uncached_us']} us to verify")
    for at in (figures, figures["light"]):
        split = ", ".join(f"{name} {ms[0]}/{ms[1]}" for name, ms in at["journey_stages_ms"].items())
        print(f"journey at {at['latency_rate_per_s']}/s by stage, p50/p99 ms: {split}")
    out = config.root / "var" / "bench" / "orders"
    out.parent.mkdir(parents=True, exist_ok=True)
    bench_table.write(table, out, f"make bench, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"table written to {out}.table.json and {out}.html")


def latency(
    config: PlatformConfig,
    order_url: str,
    token: str,
    rate: float,
    seconds: float,
    follow: bool = False,
) -> dict[str, Any]:
    """The journey's latency at `rate` (open loop), then the same rate through bare
    exactly-once hops, as many as the journey has, and through the same hops writing a state
    record each, as the journey's do (bench_floor.py).

    The two floors are measured side by side, in alternating pieces, pooled.

    The journey from the records: from the POST's send until the outcome's record was written.
    With `follow`, also issue 18's, as a client sees it: from the 202 until a GET (a long poll)
    answers the final state. That one adds the read model's lag and leaves out the POST; it
    adds two GETs an order too, so it is measured at the light rate only."""
    seen = open_loop(order_url, token, rate, seconds, follow=follow)
    marks = journeys(config.connection(), seen.sent, timeout_s=60)
    latencies = sorted((m[-1] - m[0]) * 1000 for m in marks)
    split = {
        name: sorted((m[n + 1] - m[n]) * 1000 for m in marks)
        for n, (name, _, _) in enumerate(STAGES)
    }
    floor, stateful = bench_floor.measure_both(config.connection(), FLOOR_HOPS, rate, seconds)
    client = seen.client_journeys_ms()
    followed = (
        {
            "client_journey_samples": len(client),
            "client_journey_p50_ms": round(bench_table.percentile(client, 50), 1),
            "client_journey_p99_ms": round(bench_table.percentile(client, 99), 1),
        }
        if client
        else {}
    )
    return followed | {
        "latency_rate_per_s": round(rate, 1),
        "latency_samples": len(latencies),
        "journey_p50_ms": round(bench_table.percentile(latencies, 50), 1),
        "journey_p99_ms": round(bench_table.percentile(latencies, 99), 1),
        "journey_stages_ms": {
            name: [round(bench_table.percentile(ms, p), 1) for p in (50, 99)]
            for name, ms in split.items()
            if ms
        },
        "floor_hops": floor.hops,
        "floor_samples": floor.samples,
        "floor_p50_ms": floor.p50_ms,
        "floor_p99_ms": floor.p99_ms,
        "floor_read_p50_ms": floor.read_p50_ms,
        "floor_read_p99_ms": floor.read_p99_ms,
        "stateful_floor_p50_ms": stateful.p50_ms,
        "stateful_floor_p99_ms": stateful.p99_ms,
        "stateful_floor_read_p50_ms": stateful.read_p50_ms,
        "stateful_floor_read_p99_ms": stateful.read_p99_ms,
    }


def echo_url(path: str, port: int = ECHO_PORT) -> str:
    """An endpoint of the references (echo_app.py) served on `port` (echo_served)."""
    return f"http://127.0.0.1:{port}/{path}"


@contextmanager
def echo_served(
    config: PlatformConfig, port: int = ECHO_PORT, topic: str = echo_app.DURABLE_TOPIC
) -> Iterator[subprocess.Popen[bytes]]:
    """The references' endpoints (echo_app.py) on `port`, the durable one writing to `topic`
    (made here, as many partitions as the system's topics), until the block ends; ready before
    it begins, so no start-up lands in a measurement."""
    connection = config.connection()
    spec = TopicSpec(
        topic, "bench", False, bench_floor.event_partitions(), 1, {"min.insync.replicas": "1"}
    )
    apply(admin_client(connection), [spec])
    keys = str(config.issuer().jwks_path)
    echo = subprocess.Popen(
        [sys.executable, str(Path(echo_app.__file__)), str(port), keys, topic],
        env={**os.environ, **connection.env()},
    )
    try:
        deadline = time.monotonic() + 60
        while not port_in_use("127.0.0.1", port):
            if echo.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the echo reference did not start (echo_app.py)")
            time.sleep(0.1)
        yield echo
    finally:
        echo.terminate()
        try:
            echo.wait(10)
        except subprocess.TimeoutExpired:
            echo.kill()
            echo.wait(10)


@contextmanager
def host_phase(into: dict[str, dict[str, float]], phase: str) -> Iterator[None]:
    """What the host gave away while the block ran (bench_table.host_shares), as `into[phase]`.
    A slow phase with the hypervisor stealing the CPU, or the disk making it wait, was the
    host's, not the system's: runs of the same build have differed by 1.5 x."""
    before = psutil.cpu_times()._asdict()
    yield
    into[phase] = bench_table.host_shares(before, psutil.cpu_times()._asdict())


def system_floor(
    config: PlatformConfig, platform: Platform, token: str, seconds: float, connections: int
) -> dict[str, Any]:
    """The durable echo in front of the system floor (bench_floor.running with its readers):
    the same load as POST /orders, then until every accepted record reached the chain's end.
    Its POST rate and its sustained rate are the most the system's Kafka work allows on this
    machine, with no framework, no decoding and no database: the references that bound ours."""
    connection = config.connection()
    with (
        bench_floor.running(
            connection, bench_floor.SYSTEM_HOPS, with_readers=True, stateful=True
        ) as chain,
        echo_served(config, SYSTEM_FLOOR_PORT, chain.topics[0]) as front,
    ):
        pids = [front.pid, *chain.pids, platform.running()["kafka"].pid]
        cpu_before = [process_cpu_s(pid) for pid in pids]
        started = time.time()
        rate, accepted = wrk(
            echo_url("durable/orders", SYSTEM_FLOOR_PORT), seconds, connections, token
        )
        ends = outcome_times(
            connection, chain.topics[-1], accepted, since=started, timeout_s=180, types=()
        )
        if len(ends) < accepted:
            raise SystemExit(f"the system floor passed {len(ends)} of {accepted} records")
        cpu = [process_cpu_s(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
    return {
        "system_floor_post_req_per_s": round(rate),
        "system_floor_sustained_per_s": round(accepted / (max(ends.values()) - started)),
        "system_floor_cpu_ms_per_order": round(sum(cpu) * 1000 / accepted, 2),
        "system_floor_kafka_cpu_ms_per_order": round(cpu[-1] * 1000 / accepted, 2),
    }


def references(
    config: PlatformConfig, token: str, seconds: float, connections: int
) -> dict[str, Any]:
    """Raw Kafka, then the three echo endpoints under the same load as POST /orders."""
    produce_rate, consume_rate = throughput(config.connection(), 100_000)
    figures: dict[str, Any] = {
        "raw_produce_msgs_per_s": round(produce_rate),
        "raw_consume_msgs_per_s": round(consume_rate),
    }
    for figure, path in (
        ("echo_req_per_s", "orders"),
        ("echo_with_token_check_req_per_s", "authenticated/orders"),
        ("durable_echo_req_per_s", "durable/orders"),
    ):
        rate, _ = wrk(echo_url(path), seconds, connections, token)
        figures[figure] = round(rate)
    figures["token_check_uncached_us"] = round(check_cost_us(config, token), 1)
    return figures


def sustained(
    config: PlatformConfig,
    platform: Platform,
    order_url: str,
    token: str,
    seconds: float,
    connections: int,
) -> dict[str, Any]:
    """POST /orders under wrk, then until every order it placed has its outcome: the POST
    rate, the sustained rate, and what one order cost each component in CPU."""
    cpu_before = cpu_s(platform)
    started = time.time()
    post_rate, placed = wrk(order_url, seconds, connections, token)
    load_ended = time.time()
    # Consumer lag is read off the outcomes themselves: committed offsets of transactional
    # topics stop one short of the high watermark (the commit marker takes an offset).
    outcomes = outcome_times(config.connection(), ORDERS, want=placed, since=started, timeout_s=180)
    if len(outcomes) < placed:
        raise SystemExit(f"only {len(outcomes)} of {placed} orders reached an outcome in 180 s")
    last = max(outcomes.values())
    # What one order costs the whole stack in CPU, each component's share: every order placed
    # has ended, so all of its work is in (the idle processes' polling too, a little).
    cpu_after = cpu_s(platform)
    return {
        "cpu_ms_per_order": {
            name: round((cpu_after[name] - cpu_before[name]) * 1000 / placed, 2)
            for name in cpu_before
        },
        "cores": os.cpu_count() or 1,
        "post_orders_req_per_s": round(post_rate),
        "orders_placed": placed,
        "sustained_orders_per_s": round(placed / (last - started)),
        "open_at_end_of_load": sum(1 for t in outcomes.values() if t > load_ended),
        "last_outcome_after_load_s": round(last - load_ended, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each load phase")
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections")
    args = parser.parse_args()

    config = bench_config()
    for port in (ECHO_PORT, SYSTEM_FLOOR_PORT):
        if port_in_use("127.0.0.1", port):
            raise SystemExit(f"port {port} (an echo reference) is already in use")
    # On fresh data, as on a fresh clone: an earlier run's topics (its raw-throughput records,
    # 51 MB each) and read models would weigh on this run's memory and start.
    stale = system(config, echo=lambda _line: None)
    stale.down()
    stale.wipe()
    platform = system(config, echo=lambda _line: None)  # its token keys made anew
    figures: dict[str, Any] = {}
    host = figures["host_cpu_pct"] = {}  # phase -> what the host gave away (host_phase)
    try:
        platform.up()
        token = config.issuer().token(Scope.PLACE_ORDERS, Scope.READ_ORDERS, subject="bench")
        with host_phase(host, "references"), echo_served(config):
            figures |= references(config, token, args.seconds, args.concurrency)

        order_url = f"http://127.0.0.1:{config.order_port}/orders"
        with host_phase(host, "POST /orders under wrk, until every order ended"):
            figures |= sustained(config, platform, order_url, token, args.seconds, args.concurrency)

        rate = max(1.0, figures["sustained_orders_per_s"] / 2)
        with host_phase(host, "half the sustained rate, the journey and its floors"):
            figures |= latency(config, order_url, token, rate, args.seconds)
        with host_phase(host, "light load, the journey and its floors"):
            figures["light"] = latency(
                config, order_url, token, LIGHT_RATE_PER_S, args.seconds, follow=True
            )
        rss, pss = resident_mb(platform), resident_mb(platform, proportional=True)
        figures["stack_rss_mb"] = round(sum(rss.values()))
        figures["stack_pss_mb"] = round(sum(pss.values()))
        figures["resident_mb"] = {name: [round(rss[name]), round(pss[name])] for name in rss}
        # After the memory is read: its burst of records grows the broker's heap, and the
        # stack's memory is the system's, not its references'.
        with host_phase(host, "the system floor"):
            figures |= system_floor(config, platform, token, args.seconds, args.concurrency)
        # The echo again: a run whose echo drifted was on a host that did.
        with host_phase(host, "the echo again"), echo_served(config):
            echo_at_end, _ = wrk(echo_url("orders"), args.seconds, args.concurrency, token)
        figures["echo_at_end_req_per_s"] = round(echo_at_end)
    finally:
        platform.down()

    report(config, figures)
    write_figures(config, "orders", figures)


if __name__ == "__main__":
    main()
