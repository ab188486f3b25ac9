"""The one place the order service is wired: settings -> databases, registry, producer, consumer
loops, routes -> the apps; and the console entry points that serve them.

Two processes start here. What only the API's uses (its databases, so SQLAlchemy; its routes,
tokens and flags) is imported where the API is wired: the process manager's process never
loads it, about 20 MB less resident (tests/unit/test_bootstrap.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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

from golive_order.entrypoints.consumers import SettleOrders
from golive_order.settings import OrderSettings

if TYPE_CHECKING:
    from golive_eventing.rebuild import ReadModel


def utc_now() -> datetime:
    return datetime.now(UTC)


def order_app(settings: OrderSettings, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """The order API and, in the same process, the orders read model's projection."""
    from golive_eventing.auth import Verifier, use_tokens  # noqa: PLC0415 (the module's docstring)
    from golive_eventing.changes import Changes, Listener  # noqa: PLC0415
    from golive_eventing.db import database_check, make_engine  # noqa: PLC0415
    from golive_eventing.flags import Flags  # noqa: PLC0415
    from golive_eventing.producer import EventProducer  # noqa: PLC0415
    from golive_eventing.projection import ProjectionRunner  # noqa: PLC0415
    from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: PLC0415

    from golive_order.adapters import keys, orders  # noqa: PLC0415
    from golive_order.entrypoints import http  # noqa: PLC0415

    verifier = Verifier(settings)  # before any connection: no keys, no start
    flags = Flags(settings.flags_file)  # a malformed flags file: no start either
    tracing.setup(http.SERVICE, settings.version)
    metrics.setup(http.SERVICE, settings.version)
    engine = make_engine(settings.order_database_url)
    keys_engine = make_engine(settings.keys_database_url)
    orders.create_schema(engine)
    keys.create_schema(keys_engine)
    serde = make_serde(settings)
    producer = EventProducer(
        settings, serde, client_id=f"{http.SERVICE}-api-{settings.instance_id}"
    )
    changes = Changes()
    projector = ProjectionRunner(
        settings, serde, topology.ORDER_PROJECTOR, orders.OrderProjection(engine, changes=changes)
    )
    # Instances sharing a PostgreSQL read model: woken by each other's projections too.
    listener = Listener(engine, orders.CHANGES_CHANNEL, changes)
    keys_store = keys.IdempotencyStore(keys_engine, settings.idempotency_lease_s)
    lifespan = runner_lifespan(
        RunnerThreads([projector]),
        producer.close,
        keys_store.close,
        flags.close,
        listener.close,
        starters=[listener.start],
    )
    app = FastAPI(title="Golive order API", version=settings.version, lifespan=lifespan)
    tracing.instrument(app)
    metrics.instrument(app)
    app.state.ordering = http.Ordering(
        settings=settings,
        engine=engine,
        producer=producer,
        keys=keys_store,
        clock=clock,
        flags=flags,
        changes=changes,
    )
    app.add_middleware(http.BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_exception_handler(StarletteHTTPException, http.unparseable_body_is_422)
    add_health(app, service_readiness(settings, [projector], database_check(engine)))
    use_tokens(app, verifier)
    app.include_router(http.router)
    return app


def process_manager_app(
    settings: OrderSettings, clock: Callable[[], datetime] = utc_now
) -> FastAPI:
    """The order process manager in its own process; HTTP only for health."""
    tracing.setup(topology.ORDER_PROCESS_MANAGER.name, settings.version)
    metrics.setup(topology.ORDER_PROCESS_MANAGER.name, settings.version)
    processor = TransactionalProcessor(
        settings,
        make_serde(settings),
        topology.ORDER_PROCESS_MANAGER,
        SettleOrders(settings.version, timedelta(seconds=settings.payment_timeout_s)),
        settings.instance_id,
        clock=clock,
    )
    app = FastAPI(
        title="Golive order process manager",
        version=settings.version,
        lifespan=runner_lifespan(RunnerThreads([processor])),
    )
    tracing.instrument(app)
    metrics.instrument(app)
    add_health(app, service_readiness(settings, [processor]))
    return app


def read_model(settings: OrderSettings) -> ReadModel:
    """The orders read model, for `golive rebuild order`."""
    from golive_eventing.rebuild import ReadModel  # noqa: PLC0415 (the module's docstring)

    from golive_order.adapters import orders  # noqa: PLC0415

    return ReadModel(
        name="order",
        database_url=settings.order_database_url,
        metadata=orders.metadata,
        projection=orders.OrderProjection,
        group=topology.ORDER_PROJECTOR.name,
        topics=lambda: [settings.orders_topic],
    )


def api() -> None:
    """golive-order: the API and its read model."""
    with configured("golive-order"):
        settings = OrderSettings()
        app = order_app(settings)
    # Asked to stop: the long polls answer now (304), not when their wait is over.
    serve(app, settings.order_host, settings.order_port, on_exit=app.state.ordering.changes.close)


def process_manager() -> None:
    """golive-order-process-manager."""
    with configured("golive-order-process-manager"):
        settings = OrderSettings()
        app = process_manager_app(settings)
    serve(app, settings.order_host, settings.order_process_manager_port)
