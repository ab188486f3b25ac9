"""Console entry points: golive-order (API + projection) and golive-order-process-manager."""

from __future__ import annotations

from golive_eventing.app import serve

from golive_order.bootstrap import order_app, process_manager_app
from golive_order.settings import OrderSettings


def api() -> None:
    settings = OrderSettings()
    serve(order_app(settings), settings.order_host, settings.order_port)


def process_manager() -> None:
    settings = OrderSettings()
    serve(process_manager_app(settings), settings.order_host, settings.order_process_manager_port)
