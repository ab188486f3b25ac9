"""The golden capture of the replay-regression stage: `make replay-golden` writes it.

A clean environment (fresh topics, the four service processes), one order per payment rule over
HTTP, every journey to its end, captured desensitised with the public development key.
Usage: python -m golive_cli.recorder.golden OUT [--bootstrap B --registry URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from golive_contracts.scopes import Scope

from golive_cli.recorder.capture import CaptureOptions, Window, capture_to_file
from golive_cli.recorder.desensitise import DEV_KEY, Tokeniser
from golive_cli.recorder.environment import cluster_for_regress, make_topics, running_system

# (currency, unit price in minor units, card): one order for each rule in golive_payment.domain.rules
ORDERS = [
    ("EUR", 1250, "tok_visa_4242"),
    ("USD", 1999, "tok_mc_5556"),
    ("JPY", 3500, "tok_visa_1881"),
    ("EUR", 600_000, "tok_visa_4242"),  # 3 x 6,000 EUR: over the limit
    ("BRL", 1000, "tok_visa_4242"),  # not a supported currency
    ("EUR", 2500, "tok_visa_0002"),
    ("GBP", 2500, "tok_visa_9995"),
    ("CHF", 2500, "tok_visa_0069"),
    ("SEK", 2500, "tok_visa_0127"),
]


def order_body(i: int, currency: str, price: int, card: str) -> dict[str, Any]:
    return {
        "customer_id": f"golden-customer-{i % 3}",
        "email": f"golden{i % 3}@example.org",
        "currency": currency,
        "card_token": card,
        "shipping_address": {
            "name": f"Golden {i}",
            "line1": f"Main {i}",
            "city": "Utrecht",
            "postal_code": "3511AA",
            "country": "NL",
        },
        "lines": [{"sku": f"GOLD-{i}", "quantity": 3, "unit_price_minor": price}],
    }


def place_orders(order_url: str, headers: dict[str, str], timeout_s: float = 60.0) -> list[str]:
    with httpx.Client(base_url=order_url, timeout=10, headers=headers) as client:
        ids = []
        for i, (currency, price, card) in enumerate(ORDERS):
            answer = client.post(
                "/orders",
                json=order_body(i, currency, price, card),
                headers={"Idempotency-Key": f"golden-{i}"},
            )
            answer.raise_for_status()
            ids.append(answer.json()["order_id"])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = {client.get(f"/orders/{o}").json()["status"] for o in ids}
            if states <= {"CONFIRMED", "CANCELLED"}:
                return ids
            time.sleep(0.2)  # polling interval of a deadline-bounded wait
    raise RuntimeError(f"orders did not end within {timeout_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--bootstrap")
    parser.add_argument("--registry")
    args = parser.parse_args()
    with cluster_for_regress(args.bootstrap, args.registry) as cluster:
        suffix = f"golden-{uuid.uuid4().hex[:8]}"
        names = make_topics(cluster, suffix)
        start = datetime.now(UTC) - timedelta(seconds=1)
        with (
            tempfile.TemporaryDirectory(prefix="golive-golden-") as tmp,
            running_system(cluster, names, Path(tmp), suffix) as system,
        ):
            scopes = (Scope.PLACE_ORDERS, Scope.READ_ORDERS)
            ids = place_orders(system.order_url, system.issuer.headers(*scopes))
        window = Window(start, datetime.now(UTC) + timedelta(seconds=1))
        manifest = capture_to_file(
            args.out,
            cluster.connection,
            list(names.topics.values()),
            window,
            Tokeniser(DEV_KEY),
            "dev",
            CaptureOptions(skew=timedelta(seconds=5)),
        )
    print(f"{args.out}: {len(ids)} orders, {manifest.records}")


if __name__ == "__main__":
    main()
