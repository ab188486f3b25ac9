"""Wake-ups from a projection to the requests waiting on what it changed.

A read model's projection runs on a thread of its own (golive_eventing.loop); its HTTP API on
the event loop. A request that waits for a change (a long poll, a read of its own write)
registers a `Watch` on a key *before* it reads, and waits on it between reads; the projection,
after its batch's database transaction committed, calls `Changes.changed` with the keys the
batch touched. The database stays the truth: a wake-up only says "read again", and a waiter
also reads again on an interval, for changes made by another process (instances sharing a
database, a rebuild swapping its tables in).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


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
