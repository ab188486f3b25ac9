"""The one place payment is wired: settings -> database, registry, the processor and the
projection -> the app; and the console entry point that serves it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI
from golive_contracts import topology
from golive_eventing import tracing
from golive_eventing.app import (
    RunnerThreads,
    add_health,
    configured,
    make_serde,
    runner_lifespan,
    serve,
)
from golive_eventing.auth import Verifier, use_tokens
from golive_eventing.db import database_check, make_engine
from golive_eventing.health import service_readiness
from golive_eventing.processor import TransactionalProcessor
from golive_eventing.projection import ProjectionRunner
from golive_eventing.rebuild import ReadModel

from golive_payment.adapters import payments
from golive_payment.domain.payment import SERVICE, VERSION
from golive_payment.entrypoints import http
from golive_payment.entrypoints.consumers import AuthorizeOrders
from golive_payment.settings import PaymentSettings


def payment_app(
    settings: PaymentSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> FastAPI:
    """The processor deciding payments, the payments read model and its API, in one process."""
    verifier = Verifier(settings)  # before any connection: no keys, no start
    tracing.setup(SERVICE, VERSION)
    engine = make_engine(settings.payment_database_url)
    payments.create_schema(engine)
    serde = make_serde(settings)
    processor = TransactionalProcessor(
        settings, serde, topology.PAYMENT, AuthorizeOrders(), settings.instance_id, clock=clock
    )
    projector = ProjectionRunner(
        settings, serde, topology.PAYMENT_PROJECTOR, payments.PaymentProjection(engine)
    )
    app = FastAPI(
        title="Golive payment API",
        version=VERSION,
        lifespan=runner_lifespan(RunnerThreads([processor, projector])),
    )
    tracing.instrument(app)
    app.state.engine = engine
    add_health(app, service_readiness(settings, [processor, projector], database_check(engine)))
    use_tokens(app, verifier)
    app.include_router(http.router)
    return app


def read_model(settings: PaymentSettings) -> ReadModel:
    """The payments read model, for `golive rebuild payment`."""
    return ReadModel(
        name="payment",
        database_url=settings.payment_database_url,
        metadata=payments.metadata,
        projection=payments.PaymentProjection,
        group=topology.PAYMENT_PROJECTOR.name,
        topics=lambda: [settings.payments_topic],
    )


def main() -> None:
    """golive-payment."""
    with configured("golive-payment"):
        settings = PaymentSettings()
        app = payment_app(settings)
    serve(app, settings.payment_host, settings.payment_port)
