"""Customers, as locust users: `make load` (load/run_load.py) runs them headless against the
system and gates the run on load/slo.toml.

A customer places an order with an Idempotency-Key (a 503 is retried with the same key, after
its Retry-After), follows it until it is final (reported as the request "JOURNEY placed to
final": from the 202 until GET /orders/{id} answers the final state), reads its timeline from
audit, and now and then lists their orders. It follows an order as a client of this API
should: one GET, then long polls (If-None-Match with the ETag it got, Prefer: wait=N), each
answered when the read model changes the order, reported apart as "/orders/:id until changed"
(they last as long as the order takes, so they are not reads to hold to a read's SLO). The token and audit's address come from the
runner (LOAD_TOKEN, LOAD_AUDIT_URL); the order API is locust's host.
"""

from __future__ import annotations

import math
import os
import random
import time
import uuid
from typing import Any

from locust import HttpUser, between, task

JOURNEY_DEADLINE_S = 10.0
POLL_EVERY_S = 0.05  # when a GET has no ETag to wait on (404: not yet readable)
MAX_ATTEMPTS = 5
CARDS = ("tok_visa_4242",) * 8 + ("tok_visa_0002", "tok_mc_9995")  # mostly paid, some declined
mix = random.Random()  # noqa: S311 (a load mix, not a secret)


def order_body(customer: str) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "email": f"{customer}@example.com",
        "shipping_address": {
            "name": "Load Customer",
            "line1": "Kafkastraat 1",
            "city": "Utrecht",
            "postal_code": "3511AA",
            "country": "NL",
        },
        "lines": [{"sku": "LOAD-1", "quantity": mix.randint(1, 3), "unit_price_minor": 1250}],
        "currency": "EUR",
        "card_token": mix.choice(CARDS),
    }


class Customer(HttpUser):
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {os.environ['LOAD_TOKEN']}"
        self.audit_url = os.environ["LOAD_AUDIT_URL"]
        self.customer = f"load-{uuid.uuid4().hex[:12]}"

    @task(4)
    def place_and_follow(self) -> None:
        started = time.perf_counter()
        order_id = self._place()
        if order_id is None:  # refused, or 503 every time: the journey did not happen
            self._journey(started, RuntimeError("the order was not accepted"))
            return
        if order_id is not None and self._follow(order_id):
            self.client.get(
                f"{self.audit_url}/orders/{order_id}/timeline", name="audit /orders/:id/timeline"
            )

    @task(1)
    def list_my_orders(self) -> None:
        self.client.get(
            "/orders", params={"customer_id": self.customer}, name="/orders?customer_id"
        )

    def _place(self) -> str | None:
        """POST /orders; a 503 (the broker is away) is retried with the same key."""
        key = f"load-{uuid.uuid4()}"
        body = order_body(self.customer)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with self.client.post(
                "/orders", json=body, headers={"Idempotency-Key": key}, catch_response=True
            ) as answer:
                if answer.status_code == 202:
                    answer.success()
                    order_id: str = answer.json()["order_id"]
                    return order_id
                if answer.status_code != 503:
                    answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                    return None
                answer.failure("503: retried with the same key")
                pause = float(answer.headers.get("Retry-After", "0.2"))
            if attempt < MAX_ATTEMPTS:
                time.sleep(pause)  # the server's Retry-After (gevent: only this user waits)
        return None

    def _follow(self, order_id: str) -> bool:
        """Poll until the order is final; report the journey."""
        started = time.perf_counter()
        deadline = started + JOURNEY_DEADLINE_S
        answer = self.client.get(f"/orders/{order_id}", name="/orders/:id")
        while True:
            if answer.status_code == 200 and answer.json()["status"] != "PLACED":
                self._journey(started, None)
                return True
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            etag = answer.headers.get("ETag")
            if etag is None:
                time.sleep(POLL_EVERY_S)  # not readable yet: poll (gevent: only this user waits)
                answer = self.client.get(f"/orders/{order_id}", name="/orders/:id")
                continue
            answer = self.client.get(
                f"/orders/{order_id}",
                headers={"If-None-Match": etag, "Prefer": f"wait={math.ceil(left)}"},
                name="/orders/:id until changed",
            )  # a 304 (unchanged) carries the same ETag: the loop waits on it again
        self._journey(started, TimeoutError(f"not final within {JOURNEY_DEADLINE_S:g} s"))
        return False

    def _journey(self, started: float, failure: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="JOURNEY",
            name="placed to final",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=failure,
            context={},
        )
