"""Audit's HTTP API: the recorded events (GET /events), one order's journey in order
(GET /orders/{id}/timeline), and the release actions (GET /releases).

Both need the audit:read scope and show personal data masked (golive_audit.domain.disclosure).
With audit:pii too they show it, once the read itself is recorded: a PersonalDataRead event,
acknowledged by the broker before the answer leaves; if it cannot be recorded, 503 and nothing
shown.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from golive_contracts.events import ReleaseRouteChanged
from golive_contracts.scopes import Scope
from golive_eventing.auth import RESPONSES, Caller, require
from golive_eventing.producer import DeliveryFailedError, EventProducer
from golive_eventing.serde import RegistryUnavailableError
from pydantic import AwareDatetime, BaseModel
from sqlalchemy.engine import Engine

from golive_audit.adapters import store
from golive_audit.domain.disclosure import personal_data_read, shown_without_personal_data

RETRY_AFTER_S = "1"


class RecordedEvent(BaseModel):
    seq: int
    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: str | None
    event_type: str | None
    event_id: str | None
    correlation_id: str | None
    headers: list[list[str]]
    raw_base64: str | None
    payload: dict[str, Any] | None
    decode_error: str | None
    masked: bool = False  # personal values shown as "***" and no raw bytes (no audit:pii scope)


class EventPage(BaseModel):
    items: list[RecordedEvent]
    next_cursor: int | None


@dataclass(frozen=True)
class Auditing:
    """What the routes use, wired by golive_audit.bootstrap."""

    engine: Engine  # the audit store
    producer: EventProducer  # records each read of personal data
    clock: Callable[[], datetime]
    version: str


# async, as every dependency of a route here: FastAPI runs a plain def on its thread pool,
# a thread hop per request (tests/unit/test_routes.py).
async def _auditing(request: Request) -> Auditing:
    return cast(Auditing, request.app.state.auditing)


AuditingDep = Annotated[Auditing, Depends(_auditing)]
Reader = Annotated[Caller, require(Scope.READ_AUDIT)]
router = APIRouter(
    tags=["audit"],
    responses={
        **RESPONSES,
        503: {"description": "The read of personal data could not be recorded: nothing shown"},
    },
)


From = Annotated[AwareDatetime | None, Query(alias="from")]
To = Annotated[AwareDatetime | None, Query(alias="to")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[int, Query(ge=0)]


@router.get("/events", response_model=EventPage, summary="Recorded events, oldest first")
async def list_events(
    request: Request,
    auditing: AuditingDep,
    caller: Reader,
    start: From = None,
    end: To = None,
    event_type: Annotated[str | None, Query(alias="type", max_length=100)] = None,
    key: Annotated[str | None, Query(max_length=200)] = None,
    correlation_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> Any:
    return await _page(
        request,
        auditing,
        caller,
        start=start,
        end=end,
        event_type=event_type,
        key=key,
        correlation_id=correlation_id,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/releases",
    response_model=EventPage,
    summary="Release actions (golive release), oldest first: line an incident up with them",
)
async def list_releases(
    request: Request,
    auditing: AuditingDep,
    caller: Reader,
    start: From = None,
    end: To = None,
    group: Annotated[str | None, Query(max_length=100, description="A routed group.")] = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> Any:
    return await _page(
        request,
        auditing,
        caller,
        start=start,
        end=end,
        event_type=ReleaseRouteChanged.type_name(),
        key=group,
        correlation_id=None,
        limit=limit,
        cursor=cursor,
    )


async def _page(
    request: Request,
    auditing: Auditing,
    caller: Caller,
    *,
    start: datetime | None,
    end: datetime | None,
    event_type: str | None,
    key: str | None,
    correlation_id: str | None,
    limit: int,
    cursor: int,
) -> dict[str, Any]:
    if start is not None and end is not None and end <= start:
        detail = [{"loc": ["query", "to"], "msg": "must be after 'from'", "type": "value_error"}]
        raise HTTPException(status_code=422, detail=detail)
    items = await run_in_threadpool(
        store.find_events,
        auditing.engine,
        start=start,
        end=end,
        event_type=event_type,
        key=key,
        correlation_id=correlation_id,
        after=cursor,
        limit=limit,
    )
    shown = await _disclose(request, auditing, caller, items, journey=None)
    return {"items": shown, "next_cursor": items[-1]["seq"] if len(items) == limit else None}


@router.get("/orders/{order_id}/timeline", response_model=list[RecordedEvent])
async def order_timeline(
    order_id: uuid.UUID, request: Request, auditing: AuditingDep, caller: Reader
) -> Any:
    items = await run_in_threadpool(store.timeline, auditing.engine, str(order_id))
    return await _disclose(request, auditing, caller, items, journey=str(order_id))


async def _disclose(
    request: Request,
    auditing: Auditing,
    caller: Caller,
    items: Sequence[dict[str, Any]],
    journey: str | None,
) -> list[dict[str, Any]]:
    """`items` as `caller` may see them; a read of personal data recorded first."""
    if not caller.may(Scope.READ_PERSONAL_DATA):
        return [shown_without_personal_data(item) for item in items]
    if not items:
        return []
    query = f"?{request.url.query}" if request.url.query else ""
    event = personal_data_read(
        reader=caller.subject,
        token_id=caller.token_id,
        request=f"{request.method} {request.url.path}{query}",
        shown=items,
        journey=journey,
        now=auditing.clock(),
        version=auditing.version,
    )
    try:
        await auditing.producer.publish(event, key=event.envelope.correlation_id)
    except (DeliveryFailedError, RegistryUnavailableError) as exc:
        raise HTTPException(
            status_code=503,
            detail=f"the read could not be recorded ({exc}): nothing shown, retry",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from exc
    return list(items)
