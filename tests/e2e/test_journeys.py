"""200 orders over HTTP through the real processes: each ends exactly as the payment rules predict."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from golive_cli.main import app
from golive_cli.system import TOKEN_ENV
from golive_contracts.metrics import (
    CONSUMER_LAG,
    HTTP_DURATION,
    HTTP_REQUESTS,
    JOURNEY_DURATION,
    METRICS,
    PAYMENT_DECISIONS,
    RECORDS_DEAD_LETTERED,
    RECORDS_PROCESSED,
    UNIFIED_TAGS,
    Kind,
)
from golive_contracts.scopes import Scope
from golive_contracts.topology import ORDERS, PAYMENT_BLUE, PAYMENTS
from golive_eventing import clients
from golive_payment.domain.rules import card_last4, decide_payment
from golive_platform.testing import Cluster
from typer.testing import CliRunner

from tests import otlp
from tests.factories import order_request
from tests.helpers import eventually
from tests.plugins.system import System

pytestmark = pytest.mark.e2e

CARDS = [
    "tok_visa_4242",
    "tok_mc_5555",
    "tok_visa_0002",
    "tok_visa_9995",
    "tok_visa_0069",
    "tok_amex_0127",
]
CURRENCIES = ["EUR", "EUR", "JPY", "USD", "BRL"]


def _orders(count: int) -> list[dict[str, Any]]:
    bodies = []
    for i, card, currency in zip(
        range(count), itertools.cycle(CARDS), itertools.cycle(CURRENCIES), strict=False
    ):
        over_limit = (
            i % 17 == 0
        )  # above the provider's 10,000-unit limit in every currency used here
        line = {
            "sku": f"SKU-{i}",
            "quantity": 3 if over_limit else 1 + i % 3,
            "unit_price_minor": 600_000 if over_limit else 1250 + i,
        }
        bodies.append(
            order_request(customer=f"c-{i % 23}", card=card, currency=currency, lines=[line])
        )
    return bodies


def _expected(body: dict[str, Any]) -> tuple[str, str | None]:
    total = sum(line["quantity"] * line["unit_price_minor"] for line in body["lines"])
    decision = decide_payment(total, body["currency"], card_last4(body["card_token"]))
    if decision.authorized:
        return "CONFIRMED", None
    return "CANCELLED", f"payment_declined:{decision.reason}"


def test_200_orders_end_as_the_rules_predict_with_ordered_timelines(system: System) -> None:
    bodies = _orders(200)
    placing = system.headers(Scope.PLACE_ORDERS, Scope.READ_ORDERS)
    with (
        httpx.Client(base_url=system.order_url, timeout=30, headers=placing) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        answers = list(
            pool.map(
                lambda b: client.post(
                    "/orders", json=b, headers={"Idempotency-Key": str(uuid.uuid4())}
                ),
                bodies,
            )
        )
        assert [a.status_code for a in answers] == [202] * 200
        order_ids = [a.json()["order_id"] for a in answers]
        expected = dict(zip(order_ids, map(_expected, bodies), strict=True))
        assert {status for status, _ in expected.values()} == {"CONFIRMED", "CANCELLED"}

        pending = set(order_ids)
        final: dict[str, dict[str, Any]] = {}

        def all_terminal() -> bool:
            for order_id in list(pending):
                order = client.get(f"/orders/{order_id}").json()
                if order["status"] != "PLACED":
                    final[order_id] = order
                    pending.discard(order_id)
            return not pending

        eventually(all_terminal, 120, "every order to reach a terminal state", every_s=0.5)

    for order_id, (status, reason) in expected.items():
        assert (final[order_id]["status"], final[order_id]["cancel_reason"]) == (status, reason), (
            order_id
        )

    reading = system.headers(Scope.READ_AUDIT)
    with httpx.Client(base_url=system.audit_url, timeout=30, headers=reading) as audit:
        for order_id in order_ids:

            def complete(oid: str = order_id) -> list[dict[str, Any]] | None:
                events: list[dict[str, Any]] = audit.get(f"/orders/{oid}/timeline").json()
                return events if len(events) >= 3 else None

            timeline = eventually(complete, 30, f"the timeline of {order_id}", every_s=0.2)
            types = [e["event_type"] for e in timeline]
            outcome = (
                "PaymentAuthorized" if expected[order_id][0] == "CONFIRMED" else "PaymentDeclined"
            )
            final_event = (
                "OrderConfirmed" if expected[order_id][0] == "CONFIRMED" else "OrderCancelled"
            )
            assert types == ["OrderPlaced", outcome, final_event], order_id
            assert {e["correlation_id"] for e in timeline} == {order_id}
            times = [datetime.fromisoformat(e["timestamp"]) for e in timeline]
            assert times == sorted(times)
            # Each step names its cause: the chain runs request -> OrderPlaced -> payment -> outcome.
            ids = [e["payload"]["envelope"]["event_id"] for e in timeline]
            causes = [e["payload"]["envelope"]["causation_id"] for e in timeline]
            assert causes[1:] == ids[:-1]
            # One W3C trace across the three hops: traceparent = version-traceid-spanid-flags.
            parents = [dict(map(tuple, e["headers"])).get("traceparent", "") for e in timeline]
            assert all(p.count("-") == 3 for p in parents), parents
            assert len({p.split("-")[1] for p in parents}) == 1, parents


def test_every_service_is_ready_and_documents_its_api(system: System) -> None:
    for url in (system.order_url, system.payment_url, system.audit_url):
        assert httpx.get(f"{url}/healthz").status_code == 200
        ready = httpx.get(f"{url}/readyz").json()
        assert ready == {
            "ready": True,
            "checks": {"broker": True, "registry": True, "database": True, "consumer": True},
        }
        assert httpx.get(f"{url}/openapi.json").json()["openapi"].startswith("3.")


OPERATIONS = {  # one operation of each API, and the scope it needs
    "order": ("POST", "/orders", Scope.PLACE_ORDERS),
    "payment": ("GET", f"/payments/{uuid.uuid4()}", Scope.READ_PAYMENTS),
    "audit": ("GET", "/events", Scope.READ_AUDIT),
}


@pytest.mark.parametrize("service", OPERATIONS)
def test_every_api_wants_a_token_with_its_scope(system: System, service: str) -> None:
    """No token: 401. A token without the scope: 403. Both say so in WWW-Authenticate."""
    url = {"order": system.order_url, "payment": system.payment_url, "audit": system.audit_url}
    method, path, scope = OPERATIONS[service]
    others = [s for s in Scope if s is not scope]
    with httpx.Client(base_url=url[service], timeout=30) as client:
        anonymous = client.request(method, path, json=order_request())
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        forged = client.request(method, path, headers={"Authorization": "Bearer x.y.z"})
        assert forged.status_code == 401
        wrong = client.request(method, path, json=order_request(), headers=system.headers(*others))
        assert wrong.status_code == 403, wrong.text
        assert f'scope="{scope}"' in wrong.headers["www-authenticate"]
        spec = client.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("service", ["order", "payment", "audit"])
def test_every_api_survives_schemathesis(system: System, service: str) -> None:
    """Generated requests against each service's OpenAPI document: no 5xx, every response
    matches the schema (payment and audit answer 404 and 422 as documented, too)."""
    url = {"order": system.order_url, "payment": system.payment_url, "audit": system.audit_url}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{url[service]}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "40",
            "--generation-deterministic",
            "--request-timeout",
            "15",
            "--exclude-path",
            "/readyz",
            "--header",
            f"Authorization: Bearer {system.issuer.token(*Scope)}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_inspect_shows_a_journey_from_kafka_and_from_the_audit_store(
    system: System, cluster: Cluster
) -> None:
    """golive inspect, the incident runbook's first step: one journey as a timeline, in order,
    personal fields masked unless asked, the same from Kafka as from the audit store."""
    email = f"inspect-{uuid.uuid4().hex[:8]}@example.com"
    start = datetime.now(UTC) - timedelta(seconds=1)
    placing = system.headers(Scope.PLACE_ORDERS)
    with httpx.Client(base_url=system.order_url, timeout=30, headers=placing) as client:
        answer = client.post(
            "/orders",
            json=order_request(email=email),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert answer.status_code == 202
        order_id = answer.json()["order_id"]
    reading = system.headers(Scope.READ_AUDIT)
    with httpx.Client(base_url=system.audit_url, timeout=30, headers=reading) as audit:
        eventually(
            lambda: len(audit.get(f"/orders/{order_id}/timeline").json()) >= 3,
            60,
            "the journey to end and be audited",
            every_s=0.2,
        )
    window = [
        "--from",
        start.isoformat(),
        "--to",
        (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
        "--correlation-id",
        order_id,
    ]
    kafka = [
        "--source",
        "kafka",
        "--bootstrap",
        cluster.bootstrap_servers,
        "--registry",
        cluster.registry_url,
        "--topics",
        f"{system.topics.orders},{system.topics.payments}",
    ]
    sources = {"kafka": kafka, "audit": ["--source", "audit", "--audit-url", system.audit_url]}
    # Another Kafka's login comes from the environment, as on a shell; so does the API token
    # of a system the local platform did not issue tokens for.
    env = {**cluster.connection.env(), TOKEN_ENV: system.issuer.token(Scope.READ_AUDIT)}
    for name, where in sources.items():
        shown = CliRunner().invoke(app, ["inspect", *window, *where], env=env)
        assert shown.exit_code == 0, (name, shown.output)
        lines = shown.output.splitlines()
        assert lines[-1] == "3 events", (name, shown.output)
        types = [line.split()[3] for line in lines[:-1]]
        assert types == ["OrderPlaced", "PaymentAuthorized", "OrderConfirmed"], (name, lines)
        assert all(order_id in line for line in lines[:-1]), (name, lines)
        assert email not in shown.output and "***" in lines[0], (name, lines[0])
    personal = CliRunner().invoke(
        app, ["inspect", *window, *kafka, "--show-personal"], env=cluster.connection.env()
    )
    assert personal.exit_code == 0 and email in personal.output, personal.output


def test_one_order_is_one_trace_from_the_http_request_through_every_hop(system: System) -> None:
    answer = httpx.post(
        f"{system.order_url}/orders",
        json=order_request(card="tok_visa_4242"),
        headers={**system.headers(Scope.PLACE_ORDERS), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert answer.status_code == 202
    # W3C traceresponse: version-traceid-spanid-flags, the trace the client can quote.
    _, trace_id, _, _ = answer.headers["traceresponse"].split("-")
    order_id = answer.json()["order_id"]
    reads = system.headers(Scope.READ_ORDERS)

    def confirmed() -> bool:
        found = httpx.get(f"{system.order_url}/orders/{order_id}", headers=reads)
        return found.status_code == 200 and found.json()["status"] == "CONFIRMED"

    eventually(confirmed, 30, "the order to be confirmed")
    names = system.topics.names

    def hop(parent: str, service: str, name: str, group: str | None = None) -> Any:
        found = [
            s
            for s in system.traces.trace(trace_id)
            if s.parent_id == parent
            and s.service == service
            and s.name == name
            and (group is None or s.attributes.get("messaging.consumer.group.name") == group)
        ]
        return found[0] if found else None

    def chain() -> Any:
        servers = [s for s in system.traces.trace(trace_id) if s.kind == otlp.SERVER]
        if len(servers) != 1:
            return None
        server = servers[0]
        placed = hop(server.span_id, "order", f"send {names.topic(ORDERS)}")
        # payment's router hands it to the version slot the route names (blue), which decides.
        routed = placed and hop(
            placed.span_id, "payment", f"process {names.topic(ORDERS)}", "payment-router"
        )
        blue = names.inputs(PAYMENT_BLUE)[0]
        handed = routed and hop(routed.span_id, "payment", f"send {blue}")
        decided = handed and hop(handed.span_id, "payment", f"process {blue}", "payment-blue")
        paid = decided and hop(decided.span_id, "payment", f"send {names.topic(PAYMENTS)}")
        settled = paid and hop(
            paid.span_id, "order-process-manager", f"process {names.topic(PAYMENTS)}"
        )
        ended = settled and hop(
            settled.span_id, "order-process-manager", f"send {names.topic(ORDERS)}"
        )
        projected = placed and hop(
            placed.span_id, "order", f"process {names.topic(ORDERS)}", "order-projector"
        )
        recorded = paid and hop(paid.span_id, "audit", f"process {names.topic(PAYMENTS)}", "audit")
        booked = paid and hop(
            paid.span_id, "payment", f"process {names.topic(PAYMENTS)}", "payment-projector"
        )
        return (
            (server, placed, ended, projected, recorded, booked)
            if all((ended, projected, recorded, booked))
            else None
        )

    server, placed, ended, projected, _, _ = eventually(
        chain, 30, f"trace {trace_id}: HTTP -> order -> payment -> process manager, and the readers"
    )
    assert server.service == "order"
    assert server.attributes["http.route"] == "/orders"
    assert placed.kind == otlp.PRODUCER
    assert placed.attributes["messaging.system"] == "kafka"
    assert placed.attributes["messaging.kafka.message.key"] == order_id
    assert ended.attributes["messaging.destination.name"] == names.topic(ORDERS)
    assert projected.kind == otlp.CONSUMER
    assert projected.attributes["golive.event_type"] == "OrderPlaced"
    assert {s.trace_id for s in system.traces.trace(trace_id)} == {trace_id}

    # The order API's log says it, as a JSON line carrying the request's trace id.
    log = system.config.data_dir / "services" / "order.log"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    (said,) = [line for line in lines if line["message"].startswith(f"order {order_id} placed")]
    assert said["trace_id"] == trace_id
    assert (said["level"], said["service"], said["version"]) == ("INFO", "order", "0.1.0")


def _place(system: System, bodies: list[dict[str, Any]]) -> list[str]:
    """Place orders and wait until each has its final state."""
    placing = system.headers(Scope.PLACE_ORDERS, Scope.READ_ORDERS)
    with httpx.Client(base_url=system.order_url, timeout=30, headers=placing) as client:
        ids = []
        for body in bodies:
            answer = client.post(
                "/orders", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
            )
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["order_id"])

        def ended() -> bool:
            return all(client.get(f"/orders/{i}").json()["status"] != "PLACED" for i in ids)

        eventually(ended, 60, "the orders to end", every_s=0.2)
    return ids


def test_every_metric_arrives_by_dogstatsd_and_otlp_with_its_tags(
    system: System, cluster: Cluster
) -> None:
    bodies = _orders(18)  # authorized and declined (over the limit, a declined card)
    assert {_expected(b)[0] for b in bodies} == {"CONFIRMED", "CANCELLED"}
    _place(system, bodies)
    poison = clients.producer(cluster.connection)  # every reader of orders dead-letters it
    poison.produce(system.topics.orders, key=str(uuid.uuid4()).encode(), value=b"not avro")
    assert poison.flush(10) == 0

    def every_metric() -> bool:
        return all(system.statsd.named(m.name) for m in METRICS)

    eventually(every_metric, 30, "a data point of every metric", every_s=0.5)
    for m in METRICS:
        for point in system.statsd.named(m.name):
            assert set(point.tags) == {*m.tags, *UNIFIED_TAGS}, (m.name, point.tags)
            assert point.tags["env"] == "e2e"
    kinds = {"c": Kind.COUNT, "g": Kind.GAUGE, "d": Kind.DISTRIBUTION}
    assert {m.name: kinds[system.statsd.named(m.name)[0].kind] for m in METRICS} == {
        m.name: m.kind for m in METRICS
    }
    placed = system.statsd.named(HTTP_REQUESTS.name, route="/orders", method="POST")
    assert "202" in {p.tags["status"] for p in placed}  # refusals too, when other tests ran
    assert {p.tags["service"] for p in placed} == {"order"}
    timed = system.statsd.named(HTTP_DURATION.name, route="/orders/:order_id", status="200")
    assert timed and all(0 < p.value < 30 for p in timed)
    journeys = system.statsd.named(JOURNEY_DURATION.name)
    assert {p.tags["outcome"] for p in journeys} == {"confirmed", "cancelled"}
    assert all(0 < p.value < 60 for p in journeys)
    decided = system.statsd.named(PAYMENT_DECISIONS.name)
    assert {(p.tags["outcome"], p.tags["decided_by"]) for p in decided} >= {
        ("authorized", "0.1.0"),
        ("declined", "0.1.0"),
    }
    dead = {p.tags["group"] for p in system.statsd.named(RECORDS_DEAD_LETTERED.name)}
    assert {"order-projector", "order-process-manager"} <= dead
    processed = {p.tags["group"] for p in system.statsd.named(RECORDS_PROCESSED.name)}
    assert {"payment-router", "payment-blue", "order-process-manager", "audit"} <= processed
    # The same metrics through OpenTelemetry: a team without Datadog loses nothing.
    eventually(
        lambda: {m.name for m in METRICS} <= {n for _, n in system.traces.metric_names()},
        30,
        "every metric exported by OTLP",
        every_s=0.5,
    )


def _lag(system: System, group: str) -> int | None:
    """The group's lag as the last measurement per partition says (None: not measured yet)."""
    latest: dict[tuple[str, str], float] = {}
    for point in system.statsd.named(CONSUMER_LAG.name, group=group):
        latest[(point.tags["topic"], point.tags["partition"])] = point.value
    return int(sum(latest.values())) if latest else None


def test_the_lag_metric_rises_while_a_consumer_is_stopped_and_falls_when_it_resumes(
    system: System,
) -> None:
    system.stop(PAYMENT_BLUE.name)
    try:
        placing = system.headers(Scope.PLACE_ORDERS)
        with httpx.Client(base_url=system.order_url, timeout=30, headers=placing) as client:
            for body in _orders(12):
                key = {"Idempotency-Key": str(uuid.uuid4())}
                assert client.post("/orders", json=body, headers=key).status_code == 202
        eventually(
            lambda: (_lag(system, PAYMENT_BLUE.name) or 0) >= 12,
            30,
            "payment-blue's lag to show the 12 orders it has not read",
            every_s=0.5,
        )
    finally:
        system.start(PAYMENT_BLUE.name)
    # Back: it reads them; what is left is at most a commit marker per partition.
    partitions = len(
        {
            p.tags["partition"]
            for p in system.statsd.named(CONSUMER_LAG.name, group=PAYMENT_BLUE.name)
        }
    )
    eventually(
        lambda: (_lag(system, PAYMENT_BLUE.name) or 0) <= partitions,
        60,
        "payment-blue's lag to fall once it is back",
        every_s=0.5,
    )
