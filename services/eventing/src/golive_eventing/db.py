"""SQLAlchemy engines for the read models: SQLite under var/ by default, PostgreSQL by URL."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import weakref
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import TopicPartition
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError

from golive_eventing.errors import PositionsMovedError, StoreUnavailableError
from golive_eventing.projection import ProjectionStore
from golive_eventing.records import Consumed

log = logging.getLogger(__name__)
T = TypeVar("T")


# One lock per SQLite engine, taken around its write transactions (`writing`).
_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITING = threading.local()  # the engines this thread is writing to now


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction on `engine`, committed on exit.

    SQLite lets one writer in at a time, and a writer that finds the file locked sleeps in its
    busy handler, 1 ms, then 2, 5, 10 and up to 100 ms a try, whatever the lock's holder needs:
    under concurrent requests those sleeps were most of POST /orders' time (py-spy, make bench).
    So the writers that share an engine (a process's only engine for that file) queue on a lock
    instead, and wait only for the write before them. PostgreSQL's writers need no such lock.
    A write begun inside another on the same engine and thread would wait for itself: it is
    refused at once instead."""
    lock = _WRITERS.get(engine)
    if lock is None:
        with engine.begin() as conn:
            yield conn
        return
    held: set[int] = _WRITING.__dict__.setdefault("engines", set())
    if id(engine) in held:
        raise RuntimeError("a write transaction begun inside another on the same SQLite engine")
    with lock, engine.begin() as conn:
        held.add(id(engine))
        try:
            yield conn
        finally:
            held.discard(id(engine))


Work = tuple[Callable[[Connection], Any], Future[Any]]


class GroupCommit:
    """Small write transactions from many requests, committed together.

    Each write is a function of an open connection. `write` queues it for a thread of its own,
    which runs everything queued while its last commit ran, in the order it came, in one
    transaction (`writing`), then answers each caller. Under load one BEGIN/COMMIT, one lock
    and one connection serve many requests; alone, a write commits at once, as before.
    make bench: the Idempotency-Key claim and completion were a quarter of the order process's
    CPU, one transaction each (docs/performance-journal.md).

    A write that raises gets its own error, and rolls its batch back: the others run again,
    without it, in a transaction of their own. A write must therefore do nothing but its
    database work, and may run more than once, rolled back each time but the last. A batch
    that fails to begin or to commit fails every write in it. A caller cancelled meanwhile still
    has its write run (as run_in_threadpool did): a completion is never lost to a client that
    went away.
    """

    MAX_BATCH = 256

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._queue: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def write(self, work: Callable[[Connection], T]) -> T:
        """`work`'s result once its transaction committed (its exception if it raised)."""
        done: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: closed")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._queue.put((work, done))
        return await asyncio.shield(asyncio.wrap_future(done))

    def close(self, timeout_s: float = 10.0) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("%s: still writing after %.0f s; not waited for", self.name, timeout_s)

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                batch = []
                while item is not None:
                    batch.append(item)
                    if len(batch) == self.MAX_BATCH:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    self._commit(batch)
                if item is None:
                    return
        finally:  # the thread ends: nobody is left waiting (a later write starts another)
            stopped = RuntimeError(f"{self.name}: the writer stopped")
            while True:
                try:
                    left = self._queue.get_nowait()
                except queue.Empty:
                    break
                if left is not None:
                    _answer(left[1], error=stopped)

    def _commit(self, batch: list[Work]) -> None:
        while batch:
            failed: tuple[int, Exception] | None = None
            try:
                with writing(self.engine) as conn:
                    results = []
                    for i, (work, _) in enumerate(batch):
                        try:
                            results.append(work(conn))
                        except Exception as exc:
                            failed = (i, exc)
                            raise
            except Exception as exc:
                if failed is None:  # BEGIN or COMMIT: nothing says which write it was
                    for _, done in batch:
                        _answer(done, error=exc)
                    return
                i, error = failed
                _answer(batch[i][1], error=error)
                batch = batch[:i] + batch[i + 1 :]
                continue
            except BaseException as exc:
                for _, done in batch:
                    _answer(done, error=exc)
                raise
            for (_, done), result in zip(batch, results, strict=True):
                _answer(done, result)
            return


def _answer(done: Future[Any], result: Any = None, error: BaseException | None = None) -> None:
    """A caller's answer, unless it is answered already (callers are shielded: none is
    cancelled, but the thread must not die of one that is)."""
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


def make_engine(url: str) -> Engine:
    """postgresql:// URLs use psycopg 3; SQLite gets WAL and a busy timeout for concurrent readers."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        _WRITERS[engine] = threading.Lock()
        return engine
    return create_engine(url, pool_pre_ping=True)


def retried(
    operation: Callable[[], T],
    errors: type[Exception],
    what: str,
    *,
    pause_s: float,
    attempts: int = 3,
) -> T:
    """`operation`, run again after `errors` (pausing pause_s, then twice that, ...) up to
    `attempts` times in all: for a race another connection's transaction settles."""
    for attempt in range(attempts - 1):
        try:
            return operation()
        except errors as exc:
            log.warning("%s failed, retrying: %s", what, exc)
            time.sleep(pause_s * (attempt + 1))  # let the other transaction finish
    return operation()


def create_tables(metadata: MetaData, engine: Engine, attempts: int = 3) -> None:
    """create_all, safe when several instances of a service start at once on one database:
    the one that loses the race to CREATE a table gets "already exists" and simply looks again."""
    retried(
        lambda: metadata.create_all(engine),
        DBAPIError,
        "creating tables",
        pause_s=0.2,
        attempts=attempts,
    )


def insert_or_ignore(engine: Engine, table: Table) -> Any:
    """INSERT that skips rows whose key exists (SQLite and PostgreSQL both say ON CONFLICT DO NOTHING)."""
    dialect_insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    return dialect_insert(table).on_conflict_do_nothing()


def offsets_table(metadata: MetaData, name: str = "consumer_offsets") -> Table:
    """Where a projection keeps its position, written in the same transaction as its changes."""
    return Table(
        name,
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("topic", String(249), primary_key=True),
        Column("partition", Integer, primary_key=True, autoincrement=False),
        Column("next_offset", BigInteger, nullable=False),
    )


def stored_positions(
    engine: Engine, table: Table, consumer: str, partitions: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The next offset per partition a projection has stored (only those it has seen)."""
    with engine.connect() as conn:
        return _stored_in(conn, table, consumer, partitions)


def _stored_in(
    conn: Connection, table: Table, consumer: str, partitions: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    wanted = set(partitions)
    rows = conn.execute(select(table).where(table.c.consumer == consumer))
    return {(r.topic, r.partition): r.next_offset for r in rows if (r.topic, r.partition) in wanted}


def store_offsets(
    conn: Connection, table: Table, consumer: str, offsets: Sequence[TopicPartition]
) -> None:
    """Upsert a consumer's next offsets, inside the caller's transaction."""
    for tp in offsets:
        key = and_(
            table.c.consumer == consumer,
            table.c.topic == tp.topic,
            table.c.partition == tp.partition,
        )
        changed = conn.execute(update(table).where(key).values(next_offset=tp.offset))
        if changed.rowcount == 0:
            conn.execute(
                insert(table).values(
                    consumer=consumer, topic=tp.topic, partition=tp.partition, next_offset=tp.offset
                )
            )


def database_check(engine: Engine) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # any failure to run a query means "not ready"
            return False
        return True

    return check


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the read models store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class SqlProjection(ProjectionStore):
    """A read model in SQL: its positions live in its `consumer_offsets` table, written in the same
    transaction as the batch's changes, so a redelivered batch never applies twice.

    `tables` maps each table's name in `metadata` to the table to write: the live ones, or the
    fresh copies a rebuild fills (golive_eventing.rebuild).
    """

    OFFSETS = "consumer_offsets"

    def __init__(
        self, engine: Engine, metadata: MetaData, tables: Mapping[str, Table] | None = None
    ) -> None:
        self.engine = engine
        self.metadata = metadata
        self.tables = dict(tables) if tables is not None else dict(metadata.tables)
        self.offsets = self.tables[self.OFFSETS]

    def positions(
        self, consumer: str, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        try:
            return stored_positions(self.engine, self.offsets, consumer, partitions)
        except OperationalError as exc:
            raise StoreUnavailableError(f"{self.engine.url.database}: {exc}") from exc

    def apply(
        self,
        consumer: str,
        batch: Sequence[Consumed],
        offsets: Sequence[TopicPartition],
        expected: dict[tuple[str, int], int | None],
    ) -> None:
        try:
            self._apply(consumer, batch, offsets, expected)
        except OperationalError as exc:
            raise StoreUnavailableError(f"{self.engine.url.database}: {exc}") from exc

    def _apply(
        self,
        consumer: str,
        batch: Sequence[Consumed],
        offsets: Sequence[TopicPartition],
        expected: dict[tuple[str, int], int | None],
    ) -> None:
        with self.engine.begin() as conn:
            stored = _stored_in(conn, self.offsets, consumer, list(expected))
            moved = {
                place: stored.get(place)
                for place in expected
                if stored.get(place) != expected[place]
            }
            if moved:
                # Someone else wrote these positions (a rebuild swapped the tables in): go on
                # from theirs; a partition with nothing stored starts from the beginning.
                raise PositionsMovedError(moved)
            self.write(conn, batch)
            store_offsets(conn, self.offsets, consumer, offsets)
        self.committed()

    def committed(self) -> None:
        """After the batch's transaction committed: what it made happen may be reported."""

    @abstractmethod
    def write(self, conn: Connection, batch: Sequence[Consumed]) -> None:
        """Apply the batch's events (a poison record has event None) inside `conn`'s transaction."""
