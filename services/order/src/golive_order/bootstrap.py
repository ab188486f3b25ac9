"""Wiring: settings -> database, registry, producer, consumer loops -> the app. Tests wire their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from golive_contracts.topology import state_topic
from golive_eventing import tracing
from golive_eventing.app import RunnerThreads, add_health, make_serde, runner_lifespan
from golive_eventing.db import make_engine
from golive_eventing.health import service_readiness
from golive_eventing.producer import EventProducer
from golive_eventing.rebuild import ReadModel
from golive_eventing.runner import ProjectionRunner, TransactionalProcessor

from golive_order import store
from golive_order.api import PROJECTOR_GROUP, SERVICE, OrderService, create_app
from golive_order.process_manager import GROUP, SettleOrders
from golive_order.settings import OrderSettings


def utc_now() -> datetime:
    return datetime.now(UTC)


def order_app(settings: OrderSettings, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    tracing.setup(SERVICE)
    engine = make_engine(settings.order_database_url)
    keys_engine = make_engine(settings.keys_database_url)
    store.create_schema(engine, keys_engine)
    serde = make_serde(settings)
    producer = EventProducer(settings, serde, client_id=f"{SERVICE}-api-{settings.instance_id}")
    projector = ProjectionRunner(
        settings, serde, PROJECTOR_GROUP, [settings.orders_topic], store.OrderProjection(engine)
    )
    readiness = service_readiness(settings, [projector], engine)
    service = OrderService(
        settings=settings,
        engine=engine,
        producer=producer,
        keys=store.IdempotencyStore(keys_engine, settings.idempotency_lease_s),
        readiness=readiness,
        runners=RunnerThreads([projector]),
        clock=clock,
    )
    return create_app(service)


def process_manager_app(
    settings: OrderSettings, clock: Callable[[], datetime] = utc_now
) -> FastAPI:
    """The process manager in its own process; HTTP only for health."""
    tracing.setup("order-process-manager")
    serde = make_serde(settings)
    processor = TransactionalProcessor(
        settings, serde, GROUP, [settings.orders_topic, settings.payments_topic],
        SettleOrders(clock, settings.version, timedelta(seconds=settings.payment_timeout_s)),
        instance=settings.instance_id,
        state_topic=state_topic(settings.orders_topic, GROUP),
        clock=clock,
    )  # fmt: skip
    runners = RunnerThreads([processor])
    readiness = service_readiness(settings, [processor])
    app = FastAPI(
        title="Golive order process manager",
        version=settings.version,
        lifespan=runner_lifespan(runners),
    )
    add_health(app, readiness)
    return app


def read_model(settings: OrderSettings) -> ReadModel:
    return ReadModel(
        name="order",
        database_url=settings.order_database_url,
        metadata=store.metadata,
        projection=store.OrderProjection,
        group=PROJECTOR_GROUP,
        topics=lambda: [settings.orders_topic],
    )
