"""Regress for real: capture a run of the four service processes, then diff builds against it."""

from __future__ import annotations

import dataclasses
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from golive_cli.recorder.archive import read_capture
from golive_cli.recorder.capture import CaptureOptions, Window, capture_to_file
from golive_cli.recorder.desensitise import DEV_KEY, Tokeniser
from golive_cli.recorder.environment import Cluster, make_topics, running_system
from golive_cli.recorder.regress import regress
from golive_contracts.scopes import Scope
from golive_platform.services import ServiceSpec
from golive_platform.testing import Cluster as ProvidedCluster

from tests.factories import order_request
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

CARDS = ["tok_visa_4242", "tok_mc_1111", "tok_visa_0002", "tok_amex_1111", "tok_visa_5556"]
# The candidate build's changed rule, applied inside the payment slot that decides (the route
# sends every order to blue): cards ending 1111 decline.
STRICTER_PAYMENT = (
    "import golive_payment.domain.rules as rules; rules.TEST_CARDS['1111'] = 'card_declined'; "
    "from golive_payment.bootstrap import slot; slot()"
)


def stricter_payment(specs: list[ServiceSpec]) -> list[ServiceSpec]:
    return [
        dataclasses.replace(s, argv=[sys.executable, "-c", STRICTER_PAYMENT])
        if s.name == "payment-blue"
        else s
        for s in specs
    ]


@pytest.fixture(scope="module")
def recorded(
    cluster: ProvidedCluster, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """A real run: orders over HTTP through the four processes, captured desensitised."""
    where = Cluster(cluster.connection, cluster.services)
    suffix = f"rec{uuid.uuid4().hex[:8]}"
    names = make_topics(where, suffix)
    start = datetime.now(UTC) - timedelta(seconds=1)
    cards: dict[str, str] = {}
    with (
        running_system(where, names, tmp_path_factory.mktemp("recorded"), suffix) as system,
        httpx.Client(
            base_url=system.order_url,
            timeout=10,
            headers=system.issuer.headers(Scope.PLACE_ORDERS, Scope.READ_ORDERS),
        ) as client,
    ):
        for i, card in enumerate(CARDS):
            answer = client.post(
                "/orders",
                json=order_request(customer=f"c-{i}", card=card),
                headers={"Idempotency-Key": f"{suffix}-{i}"},
            )
            assert answer.status_code == 202, answer.text
            cards[answer.json()["order_id"]] = card

        def ended() -> bool:
            states = [client.get(f"/orders/{o}").json()["status"] for o in cards]
            return all(s in ("CONFIRMED", "CANCELLED") for s in states)

        eventually(ended, 30, "every order to be confirmed or cancelled")
    out = tmp_path_factory.mktemp("capture") / "run.jsonl.gz"
    window = Window(start, datetime.now(UTC) + timedelta(seconds=1))
    capture_to_file(
        out,
        where.connection,
        list(names.topics.values()),
        window,
        Tokeniser(DEV_KEY),
        "dev",
        CaptureOptions(skew=timedelta(seconds=5)),
    )
    return out, cards


def test_the_same_build_replays_to_no_differences(
    cluster: ProvidedCluster, recorded: tuple[Path, dict[str, str]]
) -> None:
    path, cards = recorded
    report = regress(
        read_capture(path), Cluster(cluster.connection, cluster.services), timeout_s=60
    )
    assert report.orders == len(cards) == report.terminal
    assert report.ok, report.text()


def test_a_changed_payment_rule_names_exactly_the_orders_whose_outcome_changed(
    cluster: ProvidedCluster, recorded: tuple[Path, dict[str, str]]
) -> None:
    path, cards = recorded
    report = regress(
        read_capture(path),
        Cluster(cluster.connection, cluster.services),
        timeout_s=60,
        customise=stricter_payment,
    )
    expected = sorted(order for order, card in cards.items() if card.endswith("1111"))
    assert report.changed_orders() == expected, report.text()
    kinds = {(d.at, d.recorded, d.candidate) for d in report.differences}
    assert kinds == {
        ("payments[0]", "PaymentAuthorized", "PaymentDeclined"),
        ("orders[0]", "OrderConfirmed", "OrderCancelled"),
    }
    assert not report.ok
