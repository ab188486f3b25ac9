"""Console entry point: golive-payment (processor, projection and API in one process)."""

from __future__ import annotations

import uvicorn

from golive_payment.service import PaymentSettings, payment_app


def main() -> None:
    settings = PaymentSettings()
    uvicorn.run(
        payment_app(settings),
        host=settings.payment_host,
        port=settings.payment_port,
        log_level="warning",
    )
