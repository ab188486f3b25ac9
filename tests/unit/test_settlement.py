"""The order process manager's rules, one test each, run in memory (no broker): every journey
ends exactly once, by its outcome, or by payment_timeout at its deadline or after it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from golive_contracts.envelope import event_id_for
from golive_contracts.events import OrderCancelled, OrderConfirmed, OrderPlaced
from golive_eventing.memory import InMemory, ManualClock
from golive_order.domain.settlement import Settlement, Stage
from golive_order.entrypoints.consumers import SettleOrders

from tests.factories import NOW, order_confirmed, order_placed, payment_outcome

pytestmark = pytest.mark.unit

TIMEOUT = timedelta(seconds=30)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def manager(clock: ManualClock) -> InMemory[Settlement]:
    return InMemory(SettleOrders("test", TIMEOUT), clock)


def _placed() -> OrderPlaced:
    return order_placed()


def test_an_authorised_payment_confirms_the_order_with_ids_derived_from_the_outcome(
    manager: InMemory[Settlement],
) -> None:
    placed = _placed()
    outcome = payment_outcome(placed.order_id, authorized=True)
    assert manager.receive(placed) == []
    [confirmed] = manager.receive(outcome)
    assert isinstance(confirmed, OrderConfirmed)
    assert confirmed.envelope.event_id == event_id_for(
        str(outcome.envelope.event_id), "OrderConfirmed"
    )
    assert confirmed.envelope.correlation_id == str(placed.order_id)
    assert confirmed.envelope.producer == "order-process-manager"
    assert manager.state(str(placed.order_id)) == Settlement(Stage.CONFIRMED)


def test_a_declined_payment_cancels_naming_its_reason(manager: InMemory[Settlement]) -> None:
    placed = _placed()
    manager.receive(placed)
    [cancelled] = manager.receive(payment_outcome(placed.order_id, False, reason="expired_card"))
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.reason == "payment_declined:expired_card"


def test_an_outcome_before_its_order_waits_for_the_order(manager: InMemory[Settlement]) -> None:
    """The two topics are read independently: the outcome may come first."""
    placed = _placed()
    outcome = payment_outcome(placed.order_id, authorized=True)
    assert manager.receive(outcome) == []
    assert manager.state(str(placed.order_id)) == Settlement(
        Stage.AWAITING_ORDER, outcome=outcome, outcome_logged_at=NOW
    )
    [confirmed] = manager.receive(placed)
    assert isinstance(confirmed, OrderConfirmed)


def test_no_outcome_by_the_deadline_cancels_with_payment_timeout(
    manager: InMemory[Settlement], clock: ManualClock
) -> None:
    placed = _placed()
    manager.receive(placed)
    clock.advance(TIMEOUT - timedelta(seconds=1))
    assert manager.expire_due() == [], "fired before its deadline"
    clock.advance(timedelta(seconds=1))
    [cancelled] = manager.expire_due()
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.reason == "payment_timeout"
    timer = f"timeout:{placed.envelope.event_id}"
    assert cancelled.envelope.event_id == event_id_for(timer, "OrderCancelled")
    assert manager.expire_due() == [], "a deadline fires once"


def test_the_deadline_runs_from_the_log_time_not_placed_at(
    manager: InMemory[Settlement], clock: ManualClock
) -> None:
    """A replay logs old orders anew: judged as the original run was, not as overdue."""
    placed = order_placed(placed_at=NOW - timedelta(days=365))
    manager.receive(placed, logged_at=NOW)
    clock.advance(timedelta(seconds=1))
    assert manager.expire_due() == []


def test_an_outcome_logged_after_the_deadline_cancels(
    manager: InMemory[Settlement], clock: ManualClock
) -> None:
    placed = _placed()
    manager.receive(placed, logged_at=NOW)
    late = clock.advance(TIMEOUT + timedelta(milliseconds=1))
    [cancelled] = manager.receive(payment_outcome(placed.order_id, True), logged_at=late)
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.reason == "payment_timeout"


def test_an_outcome_that_came_first_but_was_logged_late_cancels(
    manager: InMemory[Settlement], clock: ManualClock
) -> None:
    placed = _placed()
    outcome = payment_outcome(placed.order_id, authorized=True)
    manager.receive(outcome, logged_at=NOW + TIMEOUT + timedelta(seconds=1))
    [cancelled] = manager.receive(placed, logged_at=NOW)
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.reason == "payment_timeout"


def test_a_late_or_repeated_outcome_changes_nothing_once_ended(
    manager: InMemory[Settlement], clock: ManualClock
) -> None:
    placed = _placed()
    manager.receive(placed)
    clock.advance(TIMEOUT)
    [_] = manager.expire_due()
    assert manager.receive(payment_outcome(placed.order_id, authorized=True)) == []
    assert manager.receive(payment_outcome(placed.order_id, authorized=False)) == []
    assert manager.state(str(placed.order_id)) == Settlement(Stage.CANCELLED)


def test_a_duplicate_order_placed_changes_nothing(manager: InMemory[Settlement]) -> None:
    placed = _placed()
    manager.receive(placed)
    before = manager.state(str(placed.order_id))
    assert manager.receive(placed) == []
    assert manager.state(str(placed.order_id)) == before
    [_] = manager.receive(payment_outcome(placed.order_id, authorized=True))
    assert manager.receive(placed) == []


def test_an_end_read_back_ends_the_journey_and_disarms_its_deadline(
    manager: InMemory[Settlement], clock: ManualClock
) -> None:
    """Its own end read back, or another writer's: the order is over either way."""
    placed = _placed()
    manager.receive(placed)
    assert manager.receive(order_confirmed(placed.order_id)) == []
    assert manager.state(str(placed.order_id)) == Settlement(Stage.CONFIRMED)
    clock.advance(TIMEOUT * 2)
    assert manager.expire_due() == []
    assert manager.receive(payment_outcome(placed.order_id, authorized=False)) == []


def test_the_state_survives_its_changelog_form(manager: InMemory[Settlement]) -> None:
    """What the changelog holds reads back as what was decided (the driver dumps and loads)."""
    placed = _placed()
    outcome = payment_outcome(placed.order_id, False, reason="card_declined")
    manager.receive(outcome, logged_at=NOW)
    document = manager.documents[str(placed.order_id)]
    assert document["status"] == "AWAITING_ORDER" and "due_at" not in document
    assert manager.state(str(placed.order_id)) == Settlement(
        Stage.AWAITING_ORDER, outcome=outcome, outcome_logged_at=NOW
    )
    other = _placed()
    manager.receive(other, logged_at=NOW)
    assert manager.documents[str(other.order_id)]["due_at"] == (NOW + TIMEOUT).timestamp()
