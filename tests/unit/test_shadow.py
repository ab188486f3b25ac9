"""A shadow run compared with the live version (golive_cli.shadow.compare), pure: the orders
decided in shadow, paired with the live decisions, and each difference intended or not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from golive_cli.shadow import compare
from golive_eventing.decider import Received
from golive_payment.entrypoints.consumers import AuthorizeOrders

from tests.factories import NOW, order_placed

pytestmark = pytest.mark.unit


def _decided(rules: str, *orders: Any, shadow: bool = False) -> list[tuple[str, Any]]:
    decider = AuthorizeOrders(rules)
    later = NOW + timedelta(seconds=1) if shadow else NOW  # decided at another time
    found = []
    for placed in orders:
        (event,) = decider.decide(Received(placed, NOW, shadow=shadow), None, later).events
        found.append((str(placed.order_id), event))
    return found


def _v2_declines(live: Any, candidate: Any) -> bool:
    return bool(
        live["type"] == "PaymentAuthorized"
        and candidate["type"] == "PaymentDeclined"
        and candidate["reason"] == "amount_over_limit"
    )


def test_the_same_rules_agree_whatever_their_version_and_clock() -> None:
    orders = [order_placed(), order_placed(card="tok_visa_0002")]
    found = compare(_decided("1", *orders), _decided("1", *orders, shadow=True), _v2_declines)
    assert (found.orders, found.agreed, found.ok) == (2, 2, True)


def test_a_change_the_candidate_intends_passes_and_any_other_stops_the_promotion() -> None:
    between = order_placed(total_minor=700_000)
    small = order_placed()
    live = _decided("1", between, small)
    found = compare(live, _decided("2", between, small, shadow=True), _v2_declines)
    assert (found.intended, found.unintended, found.ok) == ([str(between.order_id)], [], True)
    assert "reason: None -> 'amount_over_limit'" in found.text()

    def nothing_intended(live: Any, candidate: Any) -> bool:
        return False

    strict = compare(live, _decided("2", between, small, shadow=True), nothing_intended)
    assert (strict.unintended, strict.ok) == ([str(between.order_id)], False)
    assert strict.text().splitlines()[0] == (
        "2 orders decided in shadow: 1 agree, 0 differ as the candidate intends, "
        "1 differ otherwise, 0 have no live decision yet"
    )


def test_an_order_without_a_live_decision_yet_is_missing_not_different() -> None:
    placed = order_placed()
    found = compare([], _decided("1", placed, shadow=True), _v2_declines)
    assert (found.missing_live, found.unintended, found.ok) == ([str(placed.order_id)], [], True)
