"""The audit service: the recorder's consumer and GET /events, GET /orders/{id}/timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from golive_contracts import topology
from golive_eventing import tracing
from golive_eventing.app import RunnerThreads, add_health, make_serde, runner_lifespan
from golive_eventing.db import create_tables, make_engine
from golive_eventing.health import service_readiness
from golive_eventing.rebuild import ReadModel, matching_topics
from golive_eventing.runner import ProjectionRunner
from golive_eventing.settings import KafkaSettings
from pydantic import AwareDatetime, BaseModel
from pydantic_settings import SettingsConfigDict

from golive_audit import recorder

SERVICE = "audit"
GROUP = topology.AUDIT.name
VERSION = "0.1.0"


class AuditSettings(KafkaSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    audit_database_url: str = "sqlite:///var/audit.db"
    audit_host: str = "127.0.0.1"
    audit_port: int = 8030


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


def read_model(settings: AuditSettings) -> ReadModel:
    pattern = recorder.subscription([settings.orders_topic, settings.payments_topic])
    return ReadModel(
        name="audit",
        database_url=settings.audit_database_url,
        metadata=recorder.metadata,
        projection=recorder.Recorder,
        group=GROUP,
        topics=lambda: matching_topics(settings, pattern),
    )


def audit_app(settings: AuditSettings) -> FastAPI:
    tracing.setup(SERVICE)
    engine = make_engine(settings.audit_database_url)
    create_tables(recorder.metadata, engine)
    serde = make_serde(settings)
    topics = recorder.subscription([settings.orders_topic, settings.payments_topic])
    runner = ProjectionRunner(
        settings, serde, GROUP, [topics], recorder.Recorder(engine), dead_letters=False
    )
    readiness = service_readiness(settings, [runner], engine)
    app = FastAPI(
        title="Golive audit API", version=VERSION, lifespan=runner_lifespan(RunnerThreads([runner]))
    )
    add_health(app, readiness)

    @app.get("/events", response_model=EventPage, summary="Recorded events, oldest first")
    async def list_events(
        start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
        end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
        event_type: Annotated[str | None, Query(alias="type", max_length=100)] = None,
        key: Annotated[str | None, Query(max_length=200)] = None,
        correlation_id: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        if start is not None and end is not None and end <= start:
            detail = [
                {"loc": ["query", "to"], "msg": "must be after 'from'", "type": "value_error"}
            ]
            raise HTTPException(status_code=422, detail=detail)
        items = await run_in_threadpool(
            recorder.find_events, engine, start=start, end=end, event_type=event_type, key=key,
            correlation_id=correlation_id, after=cursor, limit=limit,
        )  # fmt: skip
        return {"items": items, "next_cursor": items[-1]["seq"] if len(items) == limit else None}

    @app.get("/orders/{order_id}/timeline", response_model=list[RecordedEvent])
    async def order_timeline(order_id: uuid.UUID) -> Any:
        return await run_in_threadpool(recorder.timeline, engine, str(order_id))

    return app
