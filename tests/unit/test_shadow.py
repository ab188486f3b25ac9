"""A shadow run compared with the live version (golive_cli.shadow.compare), pure: the orders
decided in shadow, paired with the live decisions, and each difference intended or not."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from golive_cli.release import recorded, route
from golive_cli.shadow import Window, compare, shadow_window
from golive_contracts.events import ReleaseRouteChanged
from golive_eventing.decider import Received
from golive_payment.entrypoints.consumers import AuthorizeOrders
from golive_platform.config import PlatformConfig

from tests.factories import NOW, order_placed

FLAGS = PlatformConfig().flags_source

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
        "1 differ otherwise, 0 have no live decision yet; "
        "0 handed to the candidate have no shadow decision"
    )


def test_an_order_without_a_live_decision_yet_is_missing_not_different() -> None:
    placed = order_placed()
    found = compare([], _decided("1", placed, shadow=True), _v2_declines)
    assert (found.missing_live, found.unintended, found.ok) == ([str(placed.order_id)], [], True)


def test_an_order_handed_to_the_candidate_and_never_decided_stops_the_promotion() -> None:
    decided, failed = order_placed(), order_placed(card="tok_visa_0002")
    handed = [str(decided.order_id), str(failed.order_id)]
    found = compare(
        _decided("1", decided, failed), _decided("1", decided, shadow=True), _v2_declines, handed
    )
    assert (found.agreed, found.missing_shadow, found.ok) == (1, [str(failed.order_id)], False)
    assert found.refused == [str(failed.order_id)]
    assert f"  no shadow decision: order {failed.order_id}" in found.text()


def _released(mode_before: str, mode: str, group: str = "payment") -> ReleaseRouteChanged:
    now = route(json.loads(FLAGS.read_text()), "payment")
    event = recorded("x", now, now, by="me", reason=None, where="f", now=NOW)
    return event.model_copy(update={"group": group, "mode_before": mode_before, "mode": mode})


def test_the_shadow_window_runs_from_the_action_that_started_it_to_the_one_that_ended_it() -> None:
    assert shadow_window([], "payment") == Window(0, None)  # no record: the whole log
    started = [(_released("live", "shadow"), 100)]
    assert shadow_window(started, "payment") == Window(100, None)
    ended = [*started, (_released("shadow", "switched"), 200)]
    assert shadow_window(ended, "payment") == Window(100, 200)
    assert not Window(100, 200).holds(99) and Window(100, 200).holds(199)
    assert not Window(100, 200).holds(200)
    # A later shadow starts a new window; another group's actions are not this one's.
    again = [*ended, (_released("live", "shadow"), 300), (_released("live", "canary", "x"), 400)]
    assert shadow_window(again, "payment") == Window(300, None)
