"""The one place payment is wired: settings -> database, registry, the processor and the
projection -> the app; and the console entry point that serves it.

Two kinds of process start here. What only the router's uses (its database, so SQLAlchemy; its
routes, tokens and flags) is imported where the router is wired: a slot's process never loads
it, about 20 MB less resident (tests/unit/test_bootstrap.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI
from golive_contracts import topology
from golive_eventing import metrics, tracing
from golive_eventing.app import (
    RunnerThreads,
    add_health,
    configured,
    make_serde,
    runner_lifespan,
    serve,
)
from golive_eventing.health import service_readiness
from golive_eventing.processor import TransactionalProcessor

from golive_payment.domain.payment import SERVICE, VERSION
from golive_payment.entrypoints.consumers import AuthorizeOrders
from golive_payment.settings import PaymentSettings

if TYPE_CHECKING:
    from golive_eventing.rebuild import ReadModel


def payment_app(
    settings: PaymentSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> FastAPI:
    """The router handing each order to a version slot, the payments read model and its API, in
    one process. The slots decide, each in its own process (slot_app)."""
    from golive_eventing.auth import Verifier, use_tokens  # noqa: PLC0415 (the module's docstring)
    from golive_eventing.db import database_check, make_engine  # noqa: PLC0415
    from golive_eventing.flags import Flags  # noqa: PLC0415
    from golive_eventing.projection import ProjectionRunner  # noqa: PLC0415
    from golive_eventing.router import Router  # noqa: PLC0415

    from golive_payment.adapters import payments  # noqa: PLC0415
    from golive_payment.entrypoints import http  # noqa: PLC0415

    verifier = Verifier(settings)  # before any connection: no keys, no start
    flags = Flags(settings.flags_file)  # the route: a malformed flags file, no start either
    tracing.setup(SERVICE, VERSION)
    metrics.setup(SERVICE, VERSION)
    engine = make_engine(settings.payment_database_url)
    payments.create_schema(engine)
    serde = make_serde(settings)
    router = Router(settings, serde, topology.PAYMENT_ROUTER, flags, settings.instance_id)
    projector = ProjectionRunner(
        settings, serde, topology.PAYMENT_PROJECTOR, payments.PaymentProjection(engine)
    )
    app = FastAPI(
        title="Golive payment API",
        version=VERSION,
        lifespan=runner_lifespan(RunnerThreads([router, projector]), flags.close),
    )
    tracing.instrument(app)
    metrics.instrument(app)
    app.state.engine = engine
    add_health(app, service_readiness(settings, [router, projector], database_check(engine)))
    use_tokens(app, verifier)
    app.include_router(http.router)
    return app


def slot_app(
    settings: PaymentSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> FastAPI:
    """One version slot (settings.payment_slot) deciding the payments its router hands it, with
    the rules of settings.payment_rules; HTTP only for health."""
    group = topology.slot_group(topology.PAYMENT.name, settings.payment_slot)
    decider = AuthorizeOrders(settings.payment_rules)
    tracing.setup(SERVICE, decider.version)  # the version tells the slots apart
    metrics.setup(SERVICE, decider.version)
    processor = TransactionalProcessor(
        settings, make_serde(settings), group, decider, settings.instance_id, clock=clock
    )
    app = FastAPI(
        title=f"Golive payment, {settings.payment_slot} slot (rules {settings.payment_rules})",
        version=decider.version,
        lifespan=runner_lifespan(RunnerThreads([processor])),
    )
    tracing.instrument(app)
    metrics.instrument(app)
    add_health(app, service_readiness(settings, [processor]))
    return app


def read_model(settings: PaymentSettings) -> ReadModel:
    """The payments read model, for `golive rebuild payment`."""
    from golive_eventing.rebuild import ReadModel  # noqa: PLC0415 (the module's docstring)

    from golive_payment.adapters import payments  # noqa: PLC0415

    return ReadModel(
        name="payment",
        database_url=settings.payment_database_url,
        metadata=payments.metadata,
        projection=payments.PaymentProjection,
        group=topology.PAYMENT_PROJECTOR.name,
        topics=lambda: [settings.payments_topic],
    )


def slot() -> None:
    """golive-payment-slot: one version slot (PAYMENT_SLOT, PAYMENT_RULES)."""
    with configured("golive-payment-slot"):
        settings = PaymentSettings()
        app = slot_app(settings)
    serve(app, settings.payment_host, settings.payment_slot_port)


def main() -> None:
    """golive-payment."""
    with configured("golive-payment"):
        settings = PaymentSettings()
        app = payment_app(settings)
    serve(app, settings.payment_host, settings.payment_port)
