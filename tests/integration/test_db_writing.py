"""SQLite writers of one engine queue on a lock (golive_eventing.db.writing); many requests'
small writes share a transaction (golive_eventing.db.GroupCommit)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from golive_eventing.db import GroupCommit, make_engine, writing
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

pytestmark = pytest.mark.integration


def test_concurrent_writers_all_commit(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    with writing(engine) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))

    def write(start: int) -> None:
        for n in range(start, start + 50):
            with writing(engine) as conn:
                conn.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})

    threads = [threading.Thread(target=write, args=(i * 50,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 400


def test_a_write_inside_a_write_is_refused_not_a_hang(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    with (
        pytest.raises(RuntimeError, match="inside another"),
        writing(engine),
        writing(engine),
    ):
        pass
    with writing(engine) as conn:  # the lock was given back
        conn.execute(text("SELECT 1"))


def _table(database_url: str) -> Engine:
    engine = make_engine(database_url)
    with writing(engine) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    return engine


def _insert(n: int) -> Callable[[Connection], int]:
    def work(conn: Connection) -> int:
        conn.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
        return n

    return work


def _rows(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT n FROM t ORDER BY n"))]


def _held(
    release: threading.Event, began: threading.Event | None = None
) -> Callable[[Connection], int]:
    """A write that holds the writer until `release` (`began` set once it holds it): what is
    queued meanwhile is one batch."""

    def work(conn: Connection) -> int:
        if began is not None:
            began.set()
        release.wait(10)
        return _insert(0)(conn)

    return work


def test_concurrent_writes_share_transactions_and_each_gets_its_result(database_url: str) -> None:
    engine = _table(database_url)
    commits = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    writes = GroupCommit(engine, "test-writes")

    async def many() -> list[int]:
        return await asyncio.gather(*(writes.write(_insert(n)) for n in range(1, 201)))

    try:
        assert asyncio.run(many()) == list(range(1, 201))
    finally:
        writes.close()
    assert _rows(engine) == list(range(1, 201))
    assert len(commits) < 200 / 4, f"{len(commits)} commits for 200 writes"


def test_a_failing_write_fails_alone_and_its_batch_is_written(database_url: str) -> None:
    engine = _table(database_url)
    commits = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    writes = GroupCommit(engine, "test-writes")
    release, began = threading.Event(), threading.Event()

    async def some_fail() -> list[object]:
        held = asyncio.ensure_future(writes.write(_held(release, began)))
        await asyncio.get_running_loop().run_in_executor(None, began.wait, 10)
        # One batch behind the held write. 7 twice: the second breaks the key and rolls the
        # batch back; the others are written again without it.
        batch = [asyncio.ensure_future(writes.write(_insert(n))) for n in (1, 2, 7, 3, 7, 4)]
        # One loop turn, not a timed wait: each task's write() queues before its first await.
        await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(held, *batch, return_exceptions=True)

    try:
        outcomes = asyncio.run(some_fail())
    finally:
        writes.close()
    assert outcomes[:5] == [0, 1, 2, 7, 3]
    assert isinstance(outcomes[5], IntegrityError)
    assert outcomes[6] == 4
    assert _rows(engine) == [0, 1, 2, 3, 4, 7]
    assert len(commits) == 2  # the held write; the batch again without the broken write


def test_a_cancelled_caller_still_has_its_write_made(database_url: str) -> None:
    """A request that goes away after placing its order must not lose the order's completion."""
    engine = _table(database_url)
    writes = GroupCommit(engine, "test-writes")
    release = threading.Event()

    async def cancel_one() -> None:
        held = asyncio.ensure_future(writes.write(_held(release)))
        gone = asyncio.ensure_future(writes.write(_insert(1)))
        # One loop turn, not a timed wait: each task's write() queues before its first await.
        await asyncio.sleep(0)
        gone.cancel()
        release.set()
        await held
        with pytest.raises(asyncio.CancelledError):
            await gone

    try:
        asyncio.run(cancel_one())
    finally:
        writes.close()  # waits for the queued write
    assert _rows(engine) == [0, 1]


def test_closing_commits_what_is_queued_then_refuses(database_url: str) -> None:
    engine = _table(database_url)
    writes = GroupCommit(engine, "test-writes")
    release = threading.Event()

    async def queue_then_close() -> None:
        first = asyncio.ensure_future(writes.write(_held(release)))
        queued = [asyncio.ensure_future(writes.write(_insert(n))) for n in (1, 2)]
        # One loop turn, not a timed wait: each task's write() queues before its first await.
        await asyncio.sleep(0)
        closing = asyncio.get_running_loop().run_in_executor(None, writes.close)
        release.set()
        await asyncio.gather(first, *queued, closing)
        with pytest.raises(RuntimeError, match="closed"):
            await writes.write(_insert(3))

    asyncio.run(queue_then_close())
    assert _rows(engine) == [0, 1, 2]
