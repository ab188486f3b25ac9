"""The orders read model: a projection of the orders topic, and the queries behind GET /orders."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from golive_contracts.events import JOURNEY_ENDS, OrderCancelled, OrderConfirmed, OrderPlaced
from golive_contracts.metrics import JOURNEY_DURATION
from golive_eventing import metrics
from golive_eventing.changes import Changes, announce
from golive_eventing.db import SqlProjection, as_utc, create_tables, insert_or_ignore, offsets_table
from golive_eventing.records import Consumed
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from golive_order.domain.order import OrderState, OrderStatus, evolve

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

consumer_offsets = offsets_table(metadata)

# Where the projection announces the orders it changed, for the order API's instances sharing a
# PostgreSQL read model (golive_eventing.changes).
CHANGES_CHANNEL = "golive_order_changes"


def create_schema(engine: Engine) -> None:
    create_tables(metadata, engine)


class OrderProjection(SqlProjection):
    def __init__(
        self,
        engine: Engine,
        tables: Mapping[str, Table] | None = None,
        changes: Changes | None = None,
    ) -> None:
        super().__init__(engine, metadata, tables)
        # Journeys ended by the batch in hand: (order id, outcome, placed at). A rebuild (fresh
        # tables) replays old journeys: it reports none.
        self.live = tables is None
        self._ended: list[tuple[str, str, datetime]] = []
        # The orders whose rows the batch in hand may have changed, for the requests waiting
        # on them (GET /orders/{id}: a read of one's own write, a long poll).
        self.changes = changes
        self._touched: list[str] = []

    def write(self, conn: Connection, batch: Sequence[Consumed]) -> None:
        self._ended = []
        table = self.tables["orders"]
        placed = [_placed_row(r.event) for r in batch if isinstance(r.event, OrderPlaced)]
        if placed:
            # All of a batch's new orders in one statement; a replayed or duplicated
            # OrderPlaced finds its order already there and changes nothing. Outcomes follow
            # their OrderPlaced within a partition, so they are applied after it.
            conn.execute(insert_or_ignore(self.engine, table), placed)
        outcomes = [r.event for r in batch if isinstance(r.event, JOURNEY_ENDS)]
        ended = _end(conn, table, outcomes) if outcomes else []
        if self.live:
            self._ended = ended
            self._touched = [row["order_id"] for row in placed] + [e[0] for e in ended]
            announce(conn, CHANGES_CHANNEL, self._touched)

    def committed(self) -> None:
        """Wake the requests waiting on the orders the batch changed; report each journey it
        ended, placed to final as a client polling the order sees it
        (golive.order.journey.duration)."""
        if self.changes is not None and self._touched:
            self.changes.changed(self._touched)
        self._touched = []
        measured = metrics.get()
        if measured.on and self._ended:
            now = datetime.now(UTC)
            for _, outcome, placed_at in self._ended:
                seconds = (now - as_utc(placed_at)).total_seconds()
                measured.distribution(JOURNEY_DURATION, seconds, outcome=JOURNEY_OUTCOME[outcome])
        self._ended = []


JOURNEY_OUTCOME = {OrderConfirmed.__name__: "confirmed", OrderCancelled.__name__: "cancelled"}


def _end(
    conn: Connection, table: Table, outcomes: Sequence[OrderConfirmed | OrderCancelled]
) -> list[tuple[str, str, datetime]]:
    """Apply a batch's outcomes, in order, as the aggregate's evolve has it: only a PLACED order
    moves, so of two outcomes for one order the first wins. One read of the orders they name
    and one executemany, not a statement each (an UPDATE ... RETURNING per outcome was a
    twelfth of the order process's busy time under make bench's load). What moved: the
    order's id, its outcome's name and when the order was placed."""
    ids = {str(e.order_id) for e in outcomes}
    found = conn.execute(
        select(table.c.order_id, table.c.status, table.c.placed_at).where(table.c.order_id.in_(ids))
    )
    known = {row.order_id: (row.status, row.placed_at) for row in found}
    moves: list[dict[str, Any]] = []
    ended: list[tuple[str, str, datetime]] = []
    for event in outcomes:
        order_id = str(event.order_id)
        status, placed_at = known.get(order_id, (None, None))
        if status != OrderStatus.PLACED.value or placed_at is None:
            continue
        placed = OrderState(order_id=event.order_id, status=OrderStatus.PLACED)
        after = evolve(placed, event)
        if after.status is None or after.status is OrderStatus.PLACED:
            continue
        known[order_id] = (after.status.value, placed_at)
        moves.append(
            {
                "moved_id": order_id,
                "moved_status": after.status.value,
                "moved_reason": after.cancel_reason,
                "moved_at": event.envelope.occurred_at,
                "moved_event": str(event.envelope.event_id),
            }
        )
        ended.append((order_id, type(event).__name__, placed_at))
    if moves:
        conn.execute(
            update(table)
            .where(table.c.order_id == bindparam("moved_id"))
            .where(table.c.status == OrderStatus.PLACED.value)
            .values(
                status=bindparam("moved_status"),
                cancel_reason=bindparam("moved_reason"),
                updated_at=bindparam("moved_at"),
                last_event_id=bindparam("moved_event"),
            ),
            moves,
        )
    return ended


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


class Found(NamedTuple):
    order: dict[str, Any]
    # The last event applied to the order: its representation's version (GET's ETag).
    version: str


def get_order(engine: Engine, order_id: str) -> Found | None:
    with engine.connect() as conn:
        row = conn.execute(select(orders).where(orders.c.order_id == order_id)).first()
    return Found(_public(row), row.last_event_id) if row else None


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
