"""The orders read model (a projection of the orders topic) and the Idempotency-Key store."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from golive_contracts.events import OrderCancelled, OrderConfirmed, OrderPlaced
from golive_eventing.db import SqlProjection, as_utc, create_tables, insert_or_ignore, offsets_table
from golive_eventing.runner import Consumed
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from golive_order.domain import OrderStatus

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("lines", JSON, nullable=False),
    # Event times, never the projection's wall clock: a rebuild yields the same rows.
    Column("placed_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("cancel_reason", String(200)),
    Column("last_event_id", String(36), nullable=False),
)

keys_metadata = MetaData()
idempotency_keys = Table(
    "idempotency_keys",
    keys_metadata,
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("order_id", String(36), nullable=False, index=True),
    Column("state", String(8), nullable=False),  # pending | done
    Column("claimed_at", Float, nullable=False),  # monotonic lease, wall clock seconds
    Column("partition", Integer),
    Column("offset", BigInteger),
)

consumer_offsets = offsets_table(metadata)


def create_schema(engine: Engine, keys_engine: Engine) -> None:
    create_tables(metadata, engine)
    create_tables(keys_metadata, keys_engine)


class OrderProjection(SqlProjection):
    def __init__(self, engine: Engine, tables: Mapping[str, Table] | None = None) -> None:
        super().__init__(engine, metadata, tables)

    def write(self, conn: Connection, batch: Sequence[Consumed]) -> None:
        table = self.tables["orders"]
        placed = [_placed_row(r.event) for r in batch if isinstance(r.event, OrderPlaced)]
        if placed:
            # All of a batch's new orders in one statement; a replayed or duplicated
            # OrderPlaced finds its order already there and changes nothing. Outcomes follow
            # their OrderPlaced within a partition, so they are applied after it.
            conn.execute(insert_or_ignore(self.engine, table), placed)
        for record in batch:
            match record.event:
                case OrderConfirmed() as confirmed:
                    _settled(
                        conn, table, str(confirmed.order_id), OrderStatus.CONFIRMED, confirmed, None
                    )
                case OrderCancelled() as cancelled:
                    _settled(conn, table, str(cancelled.order_id), OrderStatus.CANCELLED, cancelled,
                             cancelled.reason)  # fmt: skip
                case _:
                    pass


def _settled(
    conn: Connection,
    table: Table,
    order_id: str,
    status: OrderStatus,
    event: Any,
    reason: str | None,
) -> None:
    conn.execute(
        update(table)
        .where(and_(table.c.order_id == order_id, table.c.status == OrderStatus.PLACED.value))
        .values(
            status=status.value,
            cancel_reason=reason,
            updated_at=event.envelope.occurred_at,
            last_event_id=str(event.envelope.event_id),
        )
    )


def _placed_row(event: OrderPlaced) -> dict[str, Any]:
    return {
        "order_id": str(event.order_id),
        "customer_id": event.customer_id,
        "status": OrderStatus.PLACED.value,
        "currency": event.currency,
        "total_minor": event.total_minor,
        "lines": [line.model_dump() for line in event.lines],
        "placed_at": event.placed_at,
        "updated_at": event.envelope.occurred_at,
        "cancel_reason": None,
        "last_event_id": str(event.envelope.event_id),
    }


# -- queries ------------------------------------------------------------------------------------


def _public(row: Any) -> dict[str, Any]:
    return {
        "order_id": row.order_id,
        "customer_id": row.customer_id,
        "status": row.status,
        "currency": row.currency,
        "total_minor": row.total_minor,
        "lines": row.lines,
        "placed_at": as_utc(row.placed_at),
        "updated_at": as_utc(row.updated_at),
        "cancel_reason": row.cancel_reason,
    }


def get_order(engine: Engine, order_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(orders).where(orders.c.order_id == order_id)).first()
    return _public(row) if row else None


def encode_cursor(placed_at: datetime, order_id: str) -> str:
    raw = json.dumps([as_utc(placed_at).isoformat(), order_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """ValueError if the cursor is not one we handed out."""
    try:
        placed_at, order_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(placed_at), str(uuid.UUID(order_id))
    except (ValueError, TypeError) as exc:
        raise ValueError("cursor is not valid") from exc


def list_orders(
    engine: Engine,
    customer_id: str | None,
    status: OrderStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, keyset-paginated on (placed_at, order_id)."""
    query = (
        select(orders)
        .order_by(orders.c.placed_at.desc(), orders.c.order_id.desc())
        .limit(limit + 1)
    )
    if customer_id is not None:
        query = query.where(orders.c.customer_id == customer_id)
    if status is not None:
        query = query.where(orders.c.status == status.value)
    if cursor is not None:
        placed_at, order_id = decode_cursor(cursor)
        query = query.where(
            or_(
                orders.c.placed_at < placed_at,
                and_(orders.c.placed_at == placed_at, orders.c.order_id < order_id),
            )
        )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    page = [_public(r) for r in rows[:limit]]
    more = len(rows) > limit
    return page, encode_cursor(
        rows[limit - 1].placed_at, rows[limit - 1].order_id
    ) if more else None


def projected_offset(engine: Engine, consumer: str, topic: str, partition: int) -> int:
    with engine.connect() as conn:
        row = conn.execute(
            select(consumer_offsets.c.next_offset).where(
                consumer_offsets.c.consumer == consumer,
                consumer_offsets.c.topic == topic,
                consumer_offsets.c.partition == partition,
            )
        ).first()
    return int(row[0]) if row else 0


# -- idempotency ----------------------------------------------------------------------------------


class Claim(StrEnum):
    NEW = "new"  # ours: produce the event
    DONE = "done"  # answered before: return that answer, emit nothing
    IN_FLIGHT = "in_flight"  # another request holds the key right now: wait for its answer
    CONFLICT = "conflict"  # the key was used with another body


@dataclass(frozen=True)
class KeyRecord:
    order_id: str
    state: str
    partition: int | None
    offset: int | None


class IdempotencyStore:
    def __init__(self, engine: Engine, lease_s: float) -> None:
        self.engine = engine
        self.lease_s = lease_s

    def claim(self, key: str, request_hash: str, order_id: str) -> tuple[Claim, KeyRecord | None]:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(idempotency_keys).values(
                        key=key,
                        request_hash=request_hash,
                        order_id=order_id,
                        state="pending",
                        claimed_at=time.time(),
                    )
                )
            return Claim.NEW, None
        except IntegrityError:
            pass
        with self.engine.begin() as conn:
            row = conn.execute(
                select(idempotency_keys).where(idempotency_keys.c.key == key)
            ).first()
            if row is None:  # released between our insert and this read: try again
                return self.claim(key, request_hash, order_id)
            record = KeyRecord(row.order_id, row.state, row.partition, row.offset)
            if row.request_hash != request_hash:
                return Claim.CONFLICT, record
            if row.state == "done":
                return Claim.DONE, record
            if time.time() - row.claimed_at > self.lease_s:
                # The request that claimed it died before answering: take it over. The event it may
                # have written has the same id as ours, so consumers drop the duplicate.
                conn.execute(
                    update(idempotency_keys)
                    .where(idempotency_keys.c.key == key)
                    .values(claimed_at=time.time())
                )
                return Claim.NEW, None
            return Claim.IN_FLIGHT, record

    def complete(self, key: str, partition: int, offset: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.key == key)
                .values(state="done", partition=partition, offset=offset)
            )

    def release(self, key: str) -> None:
        """The event could not be made durable: free the key so a retry can try again."""
        with self.engine.begin() as conn:
            conn.execute(delete(idempotency_keys).where(idempotency_keys.c.key == key))

    def get(self, key: str) -> KeyRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(idempotency_keys).where(idempotency_keys.c.key == key)
            ).first()
        return KeyRecord(row.order_id, row.state, row.partition, row.offset) if row else None

    def written(self, order_id: str) -> KeyRecord | None:
        """Where this order's OrderPlaced was written, if this service wrote it."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.order_id == order_id, idempotency_keys.c.state == "done"
                )
            ).first()
        return KeyRecord(row.order_id, row.state, row.partition, row.offset) if row else None
