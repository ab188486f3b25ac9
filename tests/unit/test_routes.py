"""The services' routes do their work on the event loop: FastAPI runs a route or dependency that
is a plain `def` on its thread pool, and that hop was 8 % of the order process's busy time under
make bench (py-spy), for a dependency that only read app.state. Blocking work is handed to the
pool explicitly (run_in_threadpool, GroupCommit), where it is meant to go."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from golive_audit.entrypoints.http import router as audit
from golive_order.entrypoints.http import router as order
from golive_payment.entrypoints.http import router as payment


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _on_the_loop(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 (a class instance's async __call__)
    )


@pytest.mark.parametrize("router", [order, payment, audit], ids=["order", "payment", "audit"])
def test_no_route_or_dependency_runs_on_the_thread_pool(router: APIRouter) -> None:
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    assert routes
    for route in routes:
        assert _on_the_loop(route.endpoint), f"{route.path}: the route is a plain def"
        for call in _calls(route.dependant):
            assert _on_the_loop(call), f"{route.path}: {call!r} is a plain def"
