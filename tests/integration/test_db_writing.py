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


def _table(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.db'}")
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


def test_concurrent_writes_share_transactions_and_each_gets_its_result(tmp_path: Path) -> None:
    engine = _table(tmp_path)
    commits = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    writes = GroupCommit(engine, "test-writes")

    async def many() -> list[int]:
        return await asyncio.gather(*(writes.write(_insert(n)) for n in range(200)))

    try:
        assert asyncio.run(many()) == list(range(200))
    finally:
        writes.close()
    assert _rows(engine) == list(range(200))
    assert len(commits) < 200 / 4, f"{len(commits)} commits for 200 writes"


def test_a_failing_write_fails_alone(tmp_path: Path) -> None:
    engine = _table(tmp_path)
    writes = GroupCommit(engine, "test-writes")

    async def some_fail() -> list[object]:
        # 7 twice: whichever runs second breaks the key; the batch it shared is run again.
        batch = [writes.write(_insert(n)) for n in (1, 2, 7, 3, 7, 4)]
        return await asyncio.gather(*batch, return_exceptions=True)

    try:
        outcomes = asyncio.run(some_fail())
    finally:
        writes.close()
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], IntegrityError)
    assert sorted(o for o in outcomes if isinstance(o, int)) == [1, 2, 3, 4, 7]
    assert _rows(engine) == [1, 2, 3, 4, 7]


def test_closing_commits_what_is_queued_then_refuses(tmp_path: Path) -> None:
    engine = _table(tmp_path)
    writes = GroupCommit(engine, "test-writes")
    release = threading.Event()

    def slow(conn: Connection) -> None:
        release.wait(10)  # holds the writer while more queue behind it
        _insert(0)(conn)

    async def queue_then_close() -> None:
        first = asyncio.ensure_future(writes.write(slow))
        queued = [asyncio.ensure_future(writes.write(_insert(n))) for n in (1, 2)]
        await asyncio.sleep(0)  # the writes are queued
        closing = asyncio.get_running_loop().run_in_executor(None, writes.close)
        release.set()
        await asyncio.gather(first, *queued, closing)
        with pytest.raises(RuntimeError, match="closed"):
            await writes.write(_insert(3))

    asyncio.run(queue_then_close())
    assert _rows(engine) == [0, 1, 2]
