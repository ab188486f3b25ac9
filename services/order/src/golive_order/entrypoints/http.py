"""The order HTTP API: POST /orders (idempotent, 202 once the broker acknowledged), GET /orders.

GET /orders/{id} answers with an ETag (the last event applied to the order). With
`If-None-Match` it is a conditional GET (304 while unchanged), and with `Prefer: wait=N`
(RFC 7240) as well, a long poll: it answers as soon as the read model changes the order, or
304 after N seconds (at most `order_long_poll_max_s`). A client following an order to its end
asks once per change, and sees the change when the read model makes it, not at its next poll.

Routes take what they need as Annotated dependencies; golive_order.bootstrap provides them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from golive_contracts import scopes, topology
from golive_contracts.envelope import order_id_for
from golive_contracts.events import Address, OrderLine
from golive_contracts.flags import ORDERS_OPEN
from golive_eventing.auth import RESPONSES, require
from golive_eventing.changes import Changes, Watch
from golive_eventing.flags import Flags
from golive_eventing.producer import DeliveryFailedError, EventProducer
from golive_eventing.serde import RegistryUnavailableError, SchemaNotRegisteredError
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from golive_order.adapters import orders
from golive_order.adapters.keys import Claim, IdempotencyStore, KeyRecord
from golive_order.domain.order import Context, OrderState, OrderStatus, PlaceOrder, decide
from golive_order.entrypoints.models import OrderAccepted, OrderCreate, OrderPage, OrderPublic
from golive_order.settings import OrderSettings

SERVICE = "order"
log = logging.getLogger(__name__)
IN_FLIGHT_WAIT_S = 10.0
RETRY_AFTER_S = "1"
# A wait for something another thread or request writes reads again this often (a read of
# one's own write: besides when the projection wakes it, as another process's wakes nobody).
POLL_TICK_S = 0.02


@dataclass(frozen=True)
class Ordering:
    """What the routes use, wired by golive_order.bootstrap (tests wire their own)."""

    settings: OrderSettings
    engine: Engine  # the orders read model
    producer: EventProducer
    keys: IdempotencyStore
    clock: Callable[[], datetime]
    flags: Flags
    changes: Changes  # the read model's projection wakes the GETs waiting on an order


# async, as every dependency of a route here: FastAPI runs a plain def on its thread pool,
# a thread hop per request (tests/unit/test_routes.py).
async def _ordering(request: Request) -> Ordering:
    return cast(Ordering, request.app.state.ordering)


OrderingDep = Annotated[Ordering, Depends(_ordering)]
router = APIRouter(tags=["orders"], responses=RESPONSES)
_ETAG_HEADER = {
    "description": "The order's version (the last event applied to it), for If-None-Match",
    "schema": {"type": "string"},
}


@router.post(
    "/orders",
    status_code=202,
    response_model=OrderAccepted,
    summary="Place an order (idempotent with Idempotency-Key)",
    responses={
        413: {"description": "Body too large"},
        503: {
            "description": "Not durable, or not taking new orders (the orders-open flag): "
            "retry with the same Idempotency-Key after Retry-After"
        },
    },
    dependencies=[require(scopes.Scope.PLACE_ORDERS)],
)
async def place_order(
    order: OrderCreate,
    response: Response,
    ordering: OrderingDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1, max_length=200, description="Retries with the same key place one order."
        ),
    ] = None,
) -> Any:
    key = idempotency_key or f"generated:{uuid.uuid4()}"
    order_id = order_id_for(key)
    keys = ordering.keys
    claim, _ = await keys.claim(key, _request_hash(order), str(order_id))
    if claim is Claim.CONFLICT:
        raise _idempotency_problem("this Idempotency-Key was used with a different request body")
    if claim is Claim.IN_FLIGHT and await _wait_for_answer(keys, key) is None:
        return _unavailable("the first request with this key has not finished: outcome unknown")
    if claim is not Claim.NEW:
        return _accepted(response, order_id)
    if not ordering.flags.enabled(ORDERS_OPEN):  # a retry of an accepted order is still 202
        await keys.release(key)
        return _unavailable(f"not taking new orders (the {ORDERS_OPEN.key} flag is off)")

    command = PlaceOrder(
        order_id=order_id,
        idempotency_key=key,
        customer_id=order.customer_id,
        email=str(order.email),
        shipping_address=Address(**order.shipping_address.model_dump()),
        lines=tuple(OrderLine(**line.model_dump()) for line in order.lines),
        currency=order.currency,
        card_token=order.card_token,
    )
    ctx = Context(now=ordering.clock(), producer=SERVICE, version=ordering.settings.version)
    (placed,) = decide(command, OrderState(), ctx)
    try:
        delivered = await ordering.producer.publish(placed, key=str(order_id))
    except (DeliveryFailedError, RegistryUnavailableError) as exc:
        await keys.release(key)
        return _unavailable(f"not durable ({exc}): outcome unknown")
    except SchemaNotRegisteredError:
        await keys.release(key)
        raise
    await keys.complete(key, delivered.partition, delivered.offset)
    log.info("order %s placed at %s:%s", order_id, delivered.partition, delivered.offset)
    return _accepted(response, order_id)


@router.get(
    "/orders/{order_id}",
    response_model=OrderPublic,
    responses={
        200: {"headers": {"ETag": _ETAG_HEADER}},
        304: {
            "description": "Unchanged: If-None-Match names its ETag (after the wait asked for)",
            "headers": {"ETag": _ETAG_HEADER},
        },
        404: {"description": "Unknown order"},
    },
    dependencies=[require(scopes.Scope.READ_ORDERS)],
)
async def get_order(
    order_id: uuid.UUID,
    ordering: OrderingDep,
    response: Response,
    if_none_match: Annotated[
        str | None,
        Header(max_length=1000, description="ETags seen: 304 while the order still has one."),
    ] = None,
    prefer: Annotated[
        str | None,
        Header(
            max_length=200,
            description="wait=N (RFC 7240), with If-None-Match: wait up to N seconds for a "
            "change before answering 304. Preferences not understood are ignored.",
        ),
    ] = None,
) -> Any:
    settings = ordering.settings
    # A wait only for a change from a version named: `*` matches while the order exists.
    named = if_none_match is not None and "*" not in if_none_match
    wait_s = wait_preference(prefer, settings.order_long_poll_max_s) if named else 0
    deadline = time.monotonic() + wait_s
    with ordering.changes.watch(str(order_id)) as changed:  # before the read: no change missed
        found = await run_in_threadpool(orders.get_order, ordering.engine, str(order_id))
        if found is None and await _caught_up(ordering, str(order_id), changed):
            found = await run_in_threadpool(orders.get_order, ordering.engine, str(order_id))
        while found is not None and etag_matches(if_none_match, found.version):
            left = deadline - time.monotonic()
            if left <= 0 or ordering.changes.closed:  # closed: the process is stopping
                break
            await changed.wait(min(left, settings.order_long_poll_recheck_s))
            found = await run_in_threadpool(orders.get_order, ordering.engine, str(order_id))
    if found is None:
        raise HTTPException(status_code=404, detail=f"order {order_id} not found")
    headers = {"ETag": f'"{found.version}"'}
    if wait_s:
        headers["Preference-Applied"] = f"wait={wait_s}"
    if etag_matches(if_none_match, found.version):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return found.order


@router.get(
    "/orders",
    response_model=OrderPage,
    responses={422: {"description": "Invalid filter or cursor"}},
    dependencies=[require(scopes.Scope.READ_ORDERS)],
)
async def list_orders(
    ordering: OrderingDep,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    status: OrderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Any:
    try:
        items, next_cursor = await run_in_threadpool(
            orders.list_orders, ordering.engine, customer_id, status, limit, cursor
        )
    except ValueError as exc:
        detail = [{"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}]
        raise HTTPException(status_code=422, detail=detail) from exc
    return {"items": items, "next_cursor": next_cursor}


# -- the edge: bodies too large or not even JSON -----------------------------------------------


class BodyLimit:
    """413 for a body over the limit, whether or not it declares its length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLargeError:
            await _too_large(send, self.max_bytes)


class _TooLargeError(Exception):
    pass


async def _too_large(send: Send, max_bytes: int) -> None:
    body = f'{{"detail":"request body larger than {max_bytes} bytes"}}'.encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def unparseable_body_is_422(request: Request, exc: Exception) -> Response:
    """FastAPI answers 400 for a body it cannot even decode (not UTF-8); to clients it is malformed JSON."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        detail = [{"loc": ["body"], "msg": "body is not valid UTF-8 JSON", "type": "json_invalid"}]
        return JSONResponse(status_code=422, content={"detail": detail})
    return await http_exception_handler(request, exc)


# -- helpers -------------------------------------------------------------------------------------


def _request_hash(order: OrderCreate) -> str:
    return hashlib.sha256(order.model_dump_json().encode()).hexdigest()


def _idempotency_problem(message: str) -> HTTPException:
    detail = [
        {"loc": ["header", "Idempotency-Key"], "msg": message, "type": "idempotency_key_reused"}
    ]
    return HTTPException(status_code=422, detail=detail)


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse(
        status_code=503,
        content={"detail": f"{reason}: retry with the same Idempotency-Key"},
        headers={"Retry-After": RETRY_AFTER_S},
    )


def _accepted(response: Response, order_id: uuid.UUID) -> OrderAccepted:
    response.headers["Location"] = f"/orders/{order_id}"
    return OrderAccepted(order_id=order_id, status=OrderStatus.PLACED)


async def _poll(
    probe: Callable[[], Awaitable[bool]],
    timeout_s: float,
    woken: Watch | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> bool:
    """Whether `probe` came true within `timeout_s`: asked every POLL_TICK_S, and at once when
    `woken` is; `stopping` ends the wait early."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await probe():
            return True
        left = deadline - time.monotonic()
        if left <= 0 or stopping():
            return False
        if woken is None:
            await asyncio.sleep(min(left, POLL_TICK_S))
        else:
            await woken.wait(min(left, POLL_TICK_S))


async def _wait_for_answer(keys: IdempotencyStore, key: str) -> KeyRecord | None:
    """Concurrent duplicate: wait (bounded) for the first request's answer."""

    async def done() -> bool:
        record = await run_in_threadpool(keys.get, key)
        return record is None or record.state == "done"

    if not await _poll(done, IN_FLIGHT_WAIT_S):
        return None
    record = await run_in_threadpool(keys.get, key)
    return record if record and record.state == "done" else None


async def _caught_up(ordering: Ordering, order_id: str, changed: Watch) -> bool:
    """Read your own writes: wait (bounded) until the projection passed this order's OrderPlaced,
    woken when it projects the order (another process's projection: read again on a tick)."""
    written = await run_in_threadpool(ordering.keys.written, order_id)
    if written is None or written.partition is None or written.offset is None:
        return False
    topic, partition, offset = ordering.settings.orders_topic, written.partition, written.offset
    projector = topology.ORDER_PROJECTOR.name

    async def projected() -> bool:
        position = await run_in_threadpool(
            orders.projected_offset, ordering.engine, projector, topic, partition
        )
        return position > offset

    return await _poll(
        projected,
        ordering.settings.read_your_writes_timeout_s,
        woken=changed,
        stopping=lambda: ordering.changes.closed,
    )


_WAIT = re.compile(r"^\s*wait\s*=\s*\"?(\d{1,9})\"?\s*(;.*)?$", re.IGNORECASE)


def wait_preference(prefer: str | None, most_s: int) -> int:
    """The seconds a `Prefer` header asks a request to wait (RFC 7240's wait=N; 0: none), at
    most `most_s`. A preference not understood is ignored, as the RFC has it."""
    for preference in (prefer or "").split(","):
        matched = _WAIT.match(preference)
        if matched:
            return min(int(matched.group(1)), most_s)
    return 0


def etag_matches(if_none_match: str | None, version: str) -> bool:
    """Whether an If-None-Match header names this version's ETag (a weak comparison, as
    RFC 9110 has for If-None-Match; `*` matches any)."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or f'"{version}"' in tags
