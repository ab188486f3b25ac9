"""Wake-ups from a projection to the requests waiting on what it changed.

A read model's projection runs on a thread of its own (golive_eventing.loop); its HTTP API on
the event loop. A request that waits for a change (a long poll, a read of its own write)
registers a `Watch` on a key *before* it reads, and waits on it between reads; the projection,
after its batch's database transaction committed, calls `Changes.changed` with the keys the
batch touched. The database stays the truth: a wake-up only says "read again", and a waiter
also reads again on an interval, for changes nothing announced (a rebuild swapping its tables
in).

Instances sharing a PostgreSQL database split the projection's partitions between them, so a
request may wait on an order another instance projects. There the projection also announces
its keys with NOTIFY in its transaction (`announce`), delivered once it commits, and each
instance's `Listener` wakes its own waiters.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

# PostgreSQL's NOTIFY payload is under 8,000 bytes: an announcement carries at most this many.
ANNOUNCE_BYTES = 7000


class Watch:
    """One waiting request's wake-up for one key, on the event loop that made it."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """From any thread."""
        self._loop.call_soon_threadsafe(self._woken.set)

    async def wait(self, timeout_s: float) -> bool:
        """Until woken (True) or `timeout_s` passed (False); a wake-up before the wait counts."""
        try:
            await asyncio.wait_for(self._woken.wait(), max(timeout_s, 0.0))
        except TimeoutError:
            return False
        self._woken.clear()
        return True


class Changes:
    """The keys a projection changed, to the requests watching them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watching: dict[str, set[Watch]] = {}
        self.closed = False  # the process is stopping: nobody should wait any more

    @contextmanager
    def watch(self, key: str) -> Iterator[Watch]:
        """A wake-up for each change to `key` while the block runs. Enter it before reading
        what it guards: a change committed between the read and the wait still wakes it."""
        watch = Watch()
        with self._lock:
            self._watching.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            with self._lock:
                watchers = self._watching.get(key)
                if watchers is not None:
                    watchers.discard(watch)
                    if not watchers:
                        del self._watching[key]

    def changed(self, keys: Iterable[str]) -> None:
        """Called by the projection once its batch committed, from its thread."""
        with self._lock:
            if not self._watching:
                return
            woken = [w for key in keys for w in self._watching.get(key, ())]
        for watch in woken:
            watch.wake()

    def close(self) -> None:
        """The process is stopping: wake every watcher, and let waiters see `closed` and
        answer now rather than hold the stop up (golive_eventing.app.serve's on_exit)."""
        with self._lock:
            self.closed = True
            woken = [w for watchers in self._watching.values() for w in watchers]
        for watch in woken:
            watch.wake()

    def watched(self) -> int:
        """How many keys are watched now."""
        with self._lock:
            return len(self._watching)


def announce(conn: Connection, channel: str, keys: Sequence[str]) -> None:
    """Inside a projection's PostgreSQL transaction: `keys` changed, to every instance
    listening on `channel` (a Listener), once the transaction commits; nothing if it does
    not. Other databases: nothing (one instance owns a SQLite read model)."""
    if conn.dialect.name != "postgresql" or not keys:
        return
    payloads: list[str] = []
    part: list[str] = []
    size = 0
    for key in keys:
        if part and size + len(key) + 1 > ANNOUNCE_BYTES:
            payloads.append(",".join(part))
            part, size = [], 0
        part.append(key)
        size += len(key) + 1
    payloads.append(",".join(part))
    notify = text("SELECT pg_notify(:channel, :payload)")
    conn.execute(notify, [{"channel": channel, "payload": p} for p in payloads])


class Listener:
    """A thread that LISTENs on a PostgreSQL channel and wakes `changes`' watchers of the keys
    each notification names; it reconnects after a failure (waiters read again on their
    interval meanwhile). For SQLite it does nothing."""

    def __init__(self, engine: Engine, channel: str, changes: Changes) -> None:
        self.engine = engine
        self.channel = channel
        self.changes = changes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()  # set once LISTEN is in force

    def start(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return
        self._thread = threading.Thread(
            target=self._run, name=f"listen-{self.channel}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # any failure: connect again
                self.listening.clear()
                log.warning("listening on %s failed, again in 1 s: %s", self.channel, exc)
                self._stop.wait(1.0)

    def _listen(self) -> None:
        import psycopg  # noqa: PLC0415 (only where a PostgreSQL read model is shared)

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'LISTEN "{self.channel}"')
            self.listening.set()
            while not self._stop.is_set():  # the timeout only to look at _stop again
                for notification in conn.notifies(timeout=0.5):
                    self.changes.changed(notification.payload.split(","))
