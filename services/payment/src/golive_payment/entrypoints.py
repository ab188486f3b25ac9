"""Console entry point: golive-payment (processor, projection and API in one process)."""

from __future__ import annotations

from golive_eventing.app import serve

from golive_payment.service import PaymentSettings, payment_app


def main() -> None:
    settings = PaymentSettings()
    serve(payment_app(settings), settings.payment_host, settings.payment_port)
