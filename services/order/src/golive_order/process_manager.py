"""The order process manager: payment outcome in, OrderConfirmed / OrderCancelled out, transactionally."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from golive_contracts.events import Event, PaymentAuthorized, PaymentDeclined
from golive_eventing.runner import Consumed

from golive_order.domain import Context, OrderState, OrderStatus, SettlePayment, decide

GROUP = "order-process-manager"
SERVICE = "order-process-manager"


def settle_payments(
    clock: Callable[[], datetime], version: str
) -> Callable[[Event, Consumed], list[Event]]:
    """The handler: only payment outcomes matter here; everything else on the topic is skipped."""

    def handle(event: Event, record: Consumed) -> list[Event]:
        del record
        if not isinstance(event, PaymentAuthorized | PaymentDeclined):
            return []
        # Every payment outcome answers an OrderPlaced, so the order is PLACED when it arrives.
        # Output ids derive from the payment event: a redelivered outcome makes the same event.
        state = OrderState(order_id=event.order_id, status=OrderStatus.PLACED)
        ctx = Context(now=clock(), producer=SERVICE, version=version)
        return decide(SettlePayment(event), state, ctx)

    return handle
