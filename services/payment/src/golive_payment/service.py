"""Payment: OrderPlaced in, PaymentAuthorized / PaymentDeclined out (one Kafka transaction per batch),
and a read model of the payments topic behind GET /payments/{order_id}.

Exactly one payment event per order: the processor remembers every order it decided in its state
changelog (orders.payment.state), committed in the same transaction as the payment event, so a
duplicated or replayed OrderPlaced, a restart after kill -9 or a failover decides nothing twice.
An OrderPlaced it cannot process (undecodable, or the rules keep failing on it) is dead-lettered
and declined as `unprocessable` in the same transaction, so its journey still ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from golive_contracts import topology
from golive_contracts.envelope import GOLIVE_NAMESPACE, Envelope, event_id_for
from golive_contracts.events import Event, OrderPlaced, PaymentAuthorized, PaymentDeclined
from golive_contracts.topology import state_topic
from golive_eventing import tracing
from golive_eventing.app import RunnerThreads, add_health, make_serde, runner_lifespan
from golive_eventing.db import (
    SqlProjection,
    as_utc,
    create_tables,
    insert_or_ignore,
    make_engine,
    offsets_table,
)
from golive_eventing.health import service_readiness
from golive_eventing.rebuild import ReadModel
from golive_eventing.runner import (
    Consumed,
    Decider,
    ProjectionRunner,
    TransactionalProcessor,
)
from golive_eventing.settings import KafkaSettings
from golive_eventing.state import Changes
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict
from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, select
from sqlalchemy.engine import Connection, Engine

from golive_payment.rules import card_last4, decide_payment

SERVICE = "payment"
PROCESSOR_GROUP = topology.PAYMENT.name
PROJECTOR_GROUP = topology.PAYMENT_PROJECTOR.name
VERSION = "0.1.0"


class PaymentSettings(KafkaSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    payment_database_url: str = "sqlite:///var/payment.db"
    payment_host: str = "127.0.0.1"
    payment_port: int = 8020
    instance_id: str = "0"


def payment_for(
    placed: OrderPlaced, clock: Callable[[], datetime]
) -> PaymentAuthorized | PaymentDeclined:
    """The provider's decision on one order, as an event whose ids derive from the order's."""
    decision = decide_payment(placed.total_minor, placed.currency, card_last4(placed.card_token))
    event_type = "PaymentAuthorized" if decision.authorized else "PaymentDeclined"
    cause = str(placed.envelope.event_id)
    common: dict[str, Any] = {
        "envelope": Envelope(
            event_id=event_id_for(cause, event_type),
            event_type=event_type,
            occurred_at=clock(),
            correlation_id=str(placed.order_id),
            causation_id=cause,
            producer=SERVICE,
            producer_version=VERSION,
        ),
        "order_id": placed.order_id,
        "payment_id": uuid.uuid5(GOLIVE_NAMESPACE, f"payment:{placed.order_id}"),
        "amount_minor": placed.total_minor,
        "currency": placed.currency,
    }
    if decision.authorized:
        return PaymentAuthorized(**common)
    return PaymentDeclined(**common, reason=decision.reason or "declined")


UNPROCESSABLE = "unprocessable"
NO_CURRENCY = (
    "XXX"  # ISO 4217's code for "no currency": the amount of an unreadable order is unknown
)


class AuthorizeOrders(Decider):
    """OrderPlaced -> the provider's decision, once per order."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock

    def decide(self, event: Event, record: Consumed, state: Changes | None) -> list[Event]:
        assert state is not None
        if not isinstance(event, OrderPlaced):
            return []
        order = str(event.order_id)
        if state.get(order) is not None:
            return []  # decided before: a duplicate, a replay or a redelivery
        payment = payment_for(event, self.clock)
        state.put(order, record.partition, _decided(payment))
        return [payment]

    def unprocessable(self, record: Consumed, reason: str, state: Changes | None) -> list[Event]:
        assert state is not None
        placed = record.event if isinstance(record.event, OrderPlaced) else None
        order_id = placed.order_id if placed else _order_id(record.key)
        if order_id is None or state.get(str(order_id)) is not None:
            return []  # not an order's record, or already answered
        cause = f"{record.topic}:{record.partition}:{record.offset}"
        declined = PaymentDeclined(
            envelope=Envelope(
                event_id=event_id_for(cause, "PaymentDeclined"),
                event_type="PaymentDeclined",
                occurred_at=self.clock(),
                correlation_id=str(order_id),
                causation_id=str(placed.envelope.event_id) if placed else cause,
                producer=SERVICE,
                producer_version=VERSION,
            ),
            order_id=order_id,
            payment_id=uuid.uuid5(GOLIVE_NAMESPACE, f"payment:{order_id}"),
            amount_minor=placed.total_minor if placed else 0,
            currency=placed.currency if placed else NO_CURRENCY,
            reason=UNPROCESSABLE,
        )
        state.put(str(order_id), record.partition, _decided(declined))
        return [declined]


def _decided(payment: PaymentAuthorized | PaymentDeclined) -> dict[str, Any]:
    return {"decided": payment.type_name(), "event_id": str(payment.envelope.event_id)}


def _order_id(key: str | None) -> uuid.UUID | None:
    """Records on the orders topic are keyed by order id."""
    try:
        return uuid.UUID(key) if key else None
    except ValueError:
        return None


# -- read model --------------------------------------------------------------------------------

metadata = MetaData()
payments = Table(
    "payments",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("payment_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(100)),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)
consumer_offsets = offsets_table(metadata)


class PaymentPublic(BaseModel):
    order_id: uuid.UUID
    payment_id: uuid.UUID
    status: str
    reason: str | None
    amount_minor: int
    currency: str
    decided_at: datetime


class PaymentProjection(SqlProjection):
    def __init__(self, engine: Engine, tables: Mapping[str, Table] | None = None) -> None:
        super().__init__(engine, metadata, tables)

    def write(self, conn: Connection, batch: Sequence[Consumed]) -> None:
        rows = [
            _payment_row(r.event)
            for r in batch
            if isinstance(r.event, PaymentAuthorized | PaymentDeclined)
        ]
        if rows:
            # Keyed by order: the first decision stands, a duplicate changes nothing.
            conn.execute(insert_or_ignore(self.engine, self.tables["payments"]), rows)


def _payment_row(event: PaymentAuthorized | PaymentDeclined) -> dict[str, Any]:
    return {
        "order_id": str(event.order_id),
        "payment_id": str(event.payment_id),
        "status": "AUTHORIZED" if isinstance(event, PaymentAuthorized) else "DECLINED",
        "reason": event.reason if isinstance(event, PaymentDeclined) else None,
        "amount_minor": event.amount_minor,
        "currency": event.currency,
        "decided_at": event.envelope.occurred_at,
    }


def read_model(settings: PaymentSettings) -> ReadModel:
    return ReadModel(
        name="payment",
        database_url=settings.payment_database_url,
        metadata=metadata,
        projection=PaymentProjection,
        group=PROJECTOR_GROUP,
        topics=lambda: [settings.payments_topic],
    )


def get_payment(engine: Engine, order_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(payments).where(payments.c.order_id == order_id)).first()
    if row is None:
        return None
    found = dict(row._mapping)
    found["decided_at"] = as_utc(found["decided_at"])
    return found


def payment_app(
    settings: PaymentSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> FastAPI:
    tracing.setup(SERVICE)
    engine = make_engine(settings.payment_database_url)
    create_tables(metadata, engine)
    serde = make_serde(settings)
    processor = TransactionalProcessor(
        settings, serde, PROCESSOR_GROUP, [settings.orders_topic], AuthorizeOrders(clock),
        instance=settings.instance_id,
        state_topic=state_topic(settings.orders_topic, PROCESSOR_GROUP),
        clock=clock,
    )  # fmt: skip
    projector = ProjectionRunner(
        settings, serde, PROJECTOR_GROUP, [settings.payments_topic], PaymentProjection(engine)
    )
    runners = RunnerThreads([processor, projector])
    readiness = service_readiness(settings, [processor, projector], engine)
    app = FastAPI(title="Golive payment API", version=VERSION, lifespan=runner_lifespan(runners))
    add_health(app, readiness)

    @app.get(
        "/payments/{order_id}",
        response_model=PaymentPublic,
        responses={404: {"description": "No decision yet"}},
    )
    async def read_payment(order_id: uuid.UUID) -> Any:
        found = await run_in_threadpool(get_payment, engine, str(order_id))
        if found is None:
            raise HTTPException(status_code=404, detail=f"no payment decision for order {order_id}")
        return found

    return app
