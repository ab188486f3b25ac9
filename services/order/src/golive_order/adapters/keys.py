"""The Idempotency-Key store: which request claimed a key, with which body, and where its
OrderPlaced was written (for read-your-writes). For SQLite in a file of its own by default, so a
POST's writes never queue behind the projection's for SQLite's one write lock.

Claims, completions and releases are group-committed (golive_eventing.db.GroupCommit): the
requests in flight share a transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from golive_eventing.db import GroupCommit, create_tables, insert_or_ignore
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row

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


# How often a claim tries again when the key it found held is released before it could read it
# (PostgreSQL, another instance's request): then it fails, and the request with it.
CLAIM_ATTEMPTS = 3


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
        self.writes = GroupCommit(engine, "idempotency-keys")
        # RETURNING says whether the row went in: rowcount does not, on every driver.
        self._claim_new = insert_or_ignore(engine, idempotency_keys).returning(
            idempotency_keys.c.key
        )

    async def claim(
        self, key: str, request_hash: str, order_id: str
    ) -> tuple[Claim, KeyRecord | None]:
        return await self.writes.write(lambda conn: self._claim(conn, key, request_hash, order_id))

    def _claim(
        self, conn: Connection, key: str, request_hash: str, order_id: str
    ) -> tuple[Claim, KeyRecord | None]:
        """Inside a write transaction: the key is ours, or what its holder's claim comes to."""
        for _ in range(CLAIM_ATTEMPTS):
            inserted = conn.execute(
                self._claim_new.values(
                    key=key,
                    request_hash=request_hash,
                    order_id=order_id,
                    state="pending",
                    claimed_at=time.time(),
                )
            )
            if inserted.first() is not None:
                return Claim.NEW, None
            row = conn.execute(
                select(idempotency_keys).where(idempotency_keys.c.key == key)
            ).first()
            if row is not None:
                return self._claimed(conn, row, key, request_hash)
            # Released by another database session between the two statements: again.
        raise RuntimeError(f"Idempotency-Key {key!r} was released {CLAIM_ATTEMPTS} times over")

    def _claimed(
        self, conn: Connection, row: Row[Any], key: str, request_hash: str
    ) -> tuple[Claim, KeyRecord | None]:
        """What a claim of a key already held comes to (in the transaction that read it)."""
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

    async def complete(self, key: str, partition: int, offset: int) -> None:
        done = (
            update(idempotency_keys)
            .where(idempotency_keys.c.key == key)
            .values(state="done", partition=partition, offset=offset)
        )
        await self.writes.write(lambda conn: conn.execute(done))

    async def release(self, key: str) -> None:
        """The event could not be made durable: free the key so a retry can try again."""
        freed = delete(idempotency_keys).where(idempotency_keys.c.key == key)
        await self.writes.write(lambda conn: conn.execute(freed))

    def close(self) -> None:
        self.writes.close()

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


def create_schema(engine: Engine) -> None:
    create_tables(keys_metadata, engine)
