"""Console entry points: golive-order (API + projection) and golive-order-process-manager."""

from __future__ import annotations

import uvicorn

from golive_order.bootstrap import order_app, process_manager_app
from golive_order.settings import OrderSettings


def api() -> None:
    settings = OrderSettings()
    uvicorn.run(
        order_app(settings), host=settings.order_host, port=settings.order_port, log_level="warning"
    )


def process_manager() -> None:
    settings = OrderSettings()
    uvicorn.run(
        process_manager_app(settings),
        host=settings.order_host,
        port=settings.order_process_manager_port,
        log_level="warning",
    )
