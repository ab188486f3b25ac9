"""The payments read model: a projection of the payments topic, behind GET /payments/{order_id}.
Keyed by order: the first decision stands, a duplicate changes nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from golive_contracts.events import PaymentAuthorized, PaymentDeclined
from golive_eventing.db import SqlProjection, as_utc, create_tables, insert_or_ignore, offsets_table
from golive_eventing.records import Consumed
from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, select
from sqlalchemy.engine import Connection, Engine

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


def create_schema(engine: Engine) -> None:
    create_tables(metadata, engine)


class PaymentProjection(SqlProjection):
    def __init__(self, engine: Engine, tables: Mapping[str, Table] | None = None) -> None:
        super().__init__(engine, metadata, tables)

    def write(self, conn: Connection, batch: Sequence[Consumed]) -> None:
        rows = [
            _row(r.event) for r in batch if isinstance(r.event, PaymentAuthorized | PaymentDeclined)
        ]
        if rows:
            conn.execute(insert_or_ignore(self.engine, self.tables["payments"]), rows)


def _row(event: PaymentAuthorized | PaymentDeclined) -> dict[str, Any]:
    return {
        "order_id": str(event.order_id),
        "payment_id": str(event.payment_id),
        "status": "AUTHORIZED" if isinstance(event, PaymentAuthorized) else "DECLINED",
        "reason": event.reason if isinstance(event, PaymentDeclined) else None,
        "amount_minor": event.amount_minor,
        "currency": event.currency,
        "decided_at": event.envelope.occurred_at,
    }


def get_payment(engine: Engine, order_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(payments).where(payments.c.order_id == order_id)).first()
    if row is None:
        return None
    found = dict(row._mapping)
    found["decided_at"] = as_utc(found["decided_at"])
    return found
