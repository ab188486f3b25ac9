"""SQLite writers of one engine queue on a lock (golive_eventing.db.writing)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from golive_eventing.db import make_engine, writing
from sqlalchemy import text

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
