"""Audit's HTTP API: the recorded events (GET /events) and one order's journey in order
(GET /orders/{id}/timeline)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel
from sqlalchemy.engine import Engine

from golive_audit.adapters import store


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


class EventPage(BaseModel):
    items: list[RecordedEvent]
    next_cursor: int | None


def _engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


EngineDep = Annotated[Engine, Depends(_engine)]
router = APIRouter(tags=["audit"])


@router.get("/events", response_model=EventPage, summary="Recorded events, oldest first")
async def list_events(
    engine: EngineDep,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    event_type: Annotated[str | None, Query(alias="type", max_length=100)] = None,
    key: Annotated[str | None, Query(max_length=200)] = None,
    correlation_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    if start is not None and end is not None and end <= start:
        detail = [{"loc": ["query", "to"], "msg": "must be after 'from'", "type": "value_error"}]
        raise HTTPException(status_code=422, detail=detail)
    items = await run_in_threadpool(
        store.find_events,
        engine,
        start=start,
        end=end,
        event_type=event_type,
        key=key,
        correlation_id=correlation_id,
        after=cursor,
        limit=limit,
    )
    return {"items": items, "next_cursor": items[-1]["seq"] if len(items) == limit else None}


@router.get("/orders/{order_id}/timeline", response_model=list[RecordedEvent])
async def order_timeline(order_id: uuid.UUID, engine: EngineDep) -> Any:
    return await run_in_threadpool(store.timeline, engine, str(order_id))
