"""The payments read model: a projection of the payments topic, behind GET /payments/{order_id}.
Keyed by order: the first decision stands, a duplicate changes nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from golive_contracts.events import PaymentAuthorized, PaymentDeclined
from golive_contracts.metrics import PAYMENT_DECISIONS
from golive_eventing import metrics
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
        self.live = tables is None  # a rebuild replays old decisions: it reports none
        self._decided: list[PaymentAuthorized | PaymentDeclined] = []

    def write(self, conn: Connection, batch: Sequence[Consumed]) -> None:
        decided = [
            r.event for r in batch if isinstance(r.event, PaymentAuthorized | PaymentDeclined)
        ]
        if decided:
            conn.execute(
                insert_or_ignore(self.engine, self.tables["payments"]), [_row(e) for e in decided]
            )
        self._decided = decided if self.live else []

    def committed(self) -> None:
        """The decision mix (golive.payment.decisions), by outcome, reason and version."""
        measured = metrics.get()
        if measured.on:
            for event in self._decided:
                measured.count(
                    PAYMENT_DECISIONS,
                    outcome="authorized" if isinstance(event, PaymentAuthorized) else "declined",
                    reason=event.reason if isinstance(event, PaymentDeclined) else "none",
                    decided_by=event.envelope.producer_version,
                )
        self._decided = []


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
