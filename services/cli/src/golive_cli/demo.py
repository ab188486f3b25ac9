"""`make demo`: a mix of orders against the running system, each one's final state and timeline."""

from __future__ import annotations

import time
import uuid
from math import ceil
from typing import Any

import httpx
from golive_contracts.events import JOURNEY_ENDS

CASES = [
    ("a paid book order", "tok_visa_4242", "EUR", 2, 1250),
    ("a card that is declined", "tok_visa_0002", "EUR", 1, 4999),
    ("insufficient funds", "tok_mc_9995", "USD", 3, 1999),
    ("yen, no minor unit", "tok_visa_4242", "JPY", 1, 3500),
    ("over the provider's limit", "tok_visa_4242", "EUR", 3, 600_000),
    ("a currency the provider does not take", "tok_visa_4242", "BRL", 1, 1000),
    ("an expired card", "tok_amex_0069", "GBP", 1, 2500),
]


def order_body(card: str, currency: str, quantity: int, price: int, n: int) -> dict[str, Any]:
    return {
        "customer_id": f"demo-{n % 3}",
        "email": f"customer{n}@example.com",
        "shipping_address": {
            "name": "Demo Customer",
            "line1": "Kafkastraat 1",
            "city": "Utrecht",
            "postal_code": "3511AA",
            "country": "NL",
        },
        "lines": [{"sku": f"DEMO-{n}", "quantity": quantity, "unit_price_minor": price}],
        "currency": currency,
        "card_token": card,
    }


def trace_id(answer: httpx.Response) -> str | None:
    """The trace a response belongs to, from its W3C `traceresponse` header
    (version-traceid-spanid-flags), if it has one."""
    parts = answer.headers.get("traceresponse", "").split("-")
    return parts[1] if len(parts) == 4 else None


def run_demo(
    order_url: str,
    audit_url: str,
    headers: dict[str, str],
    timeout_s: float,
    echo: Any,
    traces_url: str | None = None,
) -> int:
    """Place the cases, wait (bounded) for each to end, print it with its trace (a link into
    the trace viewer at `traces_url` when one runs). Exit code 1 if any stays open."""
    placed: list[tuple[str, str, str | None]] = []
    with httpx.Client(timeout=15, headers=headers) as http:
        for n, (label, card, currency, quantity, price) in enumerate(CASES):
            answer = http.post(
                f"{order_url}/orders",
                json=order_body(card, currency, quantity, price, n),
                headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"},
            )
            if answer.status_code != 202:
                echo(f"{label}: HTTP {answer.status_code} {answer.text}")
                return 1
            placed.append((label, answer.json()["order_id"], trace_id(answer)))

        deadline = time.monotonic() + timeout_s
        open_orders = 0
        for label, order_id, trace in placed:
            order = _final(http, f"{order_url}/orders/{order_id}", deadline)
            open_orders += order["status"] == "PLACED"
            amount = f"{order['total_minor']} {order['currency']} (minor units)"
            reason = f"  {order['cancel_reason']}" if order["cancel_reason"] else ""
            echo(f"\n{label}: order {order_id}  {amount}\n  -> {order['status']}{reason}")
            if trace is not None:
                echo(f"  trace {traces_url}{trace}" if traces_url else f"  trace id {trace}")
            for event in _timeline(http, f"{audit_url}/orders/{order_id}/timeline", deadline):
                echo(f"     {event['timestamp']}  {event['topic']:<9} {event['event_type']}")
    return 1 if open_orders else 0


def _final(http: httpx.Client, url: str, deadline: float) -> dict[str, Any]:
    """The order once it is final, or as it stands at the deadline. It waits as a client of
    the order API should: a long poll on the version it has (If-None-Match, Prefer: wait=N),
    answered as soon as the read model changes the order."""
    answer = http.get(url)
    order: dict[str, Any] = answer.json()
    while order["status"] == "PLACED" and (left := deadline - time.monotonic()) > 0:
        wait = {"If-None-Match": answer.headers["ETag"], "Prefer": f"wait={min(10, ceil(left))}"}
        answer = http.get(url, headers=wait)
        if answer.status_code == 200:
            order = answer.json()
    return order


# A timeline holding one of these has recorded the whole journey.
ENDS = tuple(end.type_name() for end in JOURNEY_ENDS)


def _timeline(http: httpx.Client, url: str, deadline: float) -> list[dict[str, Any]]:
    """The order's timeline once the recorder has its end (it batches its reads, so it trails
    the order's own state by up to a tenth of a second), or as it stands at the deadline."""
    events: list[dict[str, Any]] = http.get(url).json()
    while not any(e["event_type"] in ENDS for e in events) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the running system, bounded by the deadline
        events = http.get(url).json()
    return events
