"""A projection's wake-ups reach the requests watching what it changed (golive_eventing.changes),
a stopping process wakes them all, and GET /orders/{id} reads its conditional and long-poll
headers as the RFCs have them."""

from __future__ import annotations

import asyncio
import signal
import threading

import pytest
import uvicorn
from fastapi import FastAPI
from golive_eventing.app import _Server, server_config
from golive_eventing.changes import Changes
from golive_order.entrypoints.http import etag_matches, wait_preference
from golive_platform.config import PlatformConfig


def test_a_change_from_another_thread_wakes_only_the_watchers_of_its_key() -> None:
    async def scenario() -> tuple[bool, bool]:
        changes = Changes()
        with changes.watch("a") as a, changes.watch("b") as b:
            projector = threading.Thread(target=changes.changed, args=(["a"],))
            projector.start()
            projector.join()
            return await a.wait(5), await b.wait(0.05)

    assert asyncio.run(scenario()) == (True, False)


def test_a_change_between_the_read_and_the_wait_is_not_missed() -> None:
    async def scenario() -> bool:
        changes = Changes()
        with changes.watch("a") as watch:
            changes.changed(["a"])  # committed after the request's read, before it waits
            return await watch.wait(1)

    assert asyncio.run(scenario())


def test_each_wake_up_is_used_once_and_a_finished_watch_is_forgotten() -> None:
    async def scenario() -> tuple[bool, bool, int, int]:
        changes = Changes()
        with changes.watch("a") as watch:
            changes.changed(["a"])
            first, again = await watch.wait(1), await watch.wait(0.05)
            during = changes.watched()
        return first, again, during, changes.watched()

    assert asyncio.run(scenario()) == (True, False, 1, 0)


@pytest.mark.parametrize(
    ("prefer", "seconds"),
    [
        (None, 0),
        ("wait=10", 10),
        ("respond-async, wait=5", 5),
        ('WAIT = "7"', 7),
        ("wait=3; foo=bar", 3),
        ("wait=soon", 0),  # not understood: ignored (RFC 7240 section 2)
        ("wait=-1", 0),
        ("return=minimal", 0),
        ("wait=3600", 30),  # at most what the service allows
    ],
)
def test_the_wait_preference(prefer: str | None, seconds: int) -> None:
    assert wait_preference(prefer, 30) == seconds


@pytest.mark.parametrize(
    ("if_none_match", "matches"),
    [
        (None, False),
        ('"e1"', True),
        ('W/"e1"', True),  # If-None-Match compares weakly
        ('"e0", "e1"', True),
        ("*", True),
        ('"e2"', False),
        ("e1", False),  # an ETag is quoted
    ],
)
def test_if_none_match(if_none_match: str | None, matches: bool) -> None:
    assert etag_matches(if_none_match, "e1") is matches


def test_closing_wakes_every_watcher_and_says_so() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        changes = Changes()
        with changes.watch("a") as a, changes.watch("b") as b:
            changes.close()
            return await a.wait(5), await b.wait(5), changes.closed

    assert asyncio.run(scenario()) == (True, True, True)


def test_a_stop_signal_runs_the_exit_hook_once_before_uvicorn_stops() -> None:
    calls: list[str] = []
    server = _Server(uvicorn.Config(FastAPI()), on_exit=lambda: calls.append("exit"))

    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)

    assert (calls, server.should_exit) == (["exit"], True)


def test_a_service_outlasts_the_idle_timeout_of_what_is_in_front_of_it() -> None:
    """Idle keep-alive connections are closed by the load balancer or client first (a common
    idle timeout is 60 s), and a stop waits for requests in hand less than the platform's
    stop timeout (20 s) before its SIGKILL."""
    config = server_config(FastAPI(), "127.0.0.1", 0, "INFO")

    assert config.timeout_keep_alive > 60
    assert config.timeout_graceful_shutdown is not None
    assert config.timeout_graceful_shutdown < PlatformConfig().stop_timeout_s
