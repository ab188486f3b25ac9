"""The one place audit is wired: settings -> database, registry, the recorder's consumer -> the
app; and the console entry point that serves it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI
from golive_contracts import topology
from golive_eventing import clients, metrics, tracing
from golive_eventing.app import (
    RunnerThreads,
    add_health,
    configured,
    make_serde,
    runner_lifespan,
    serve,
)
from golive_eventing.auth import Verifier, use_tokens
from golive_eventing.db import database_check, make_engine
from golive_eventing.health import service_readiness
from golive_eventing.lag import LagWatch
from golive_eventing.producer import EventProducer
from golive_eventing.projection import ProjectionRunner
from golive_eventing.rebuild import ReadModel, matching_topics

from golive_audit.adapters import store
from golive_audit.domain.recording import subscription
from golive_audit.entrypoints import http
from golive_audit.settings import AuditSettings

VERSION = "0.1.0"


def utc_now() -> datetime:
    return datetime.now(UTC)


def audit_app(settings: AuditSettings, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """The recorder (every event topic and its dead letters) and its API, in one process."""
    verifier = Verifier(settings)  # before any connection: no keys, no start
    tracing.setup(topology.AUDIT.service, VERSION)
    metrics.setup(topology.AUDIT.service, VERSION)
    engine = make_engine(settings.audit_database_url)
    store.create_schema(engine)
    serde = make_serde(settings)
    recorder = ProjectionRunner(
        settings, serde, topology.AUDIT, store.Recorder(engine), topics=[_pattern(settings)]
    )
    producer = EventProducer(settings, serde, client_id=f"audit-api-{settings.instance_id}")
    # The black box watches every group's lag from outside it (when metrics are on).
    lag = LagWatch(
        clients.admin(settings),
        settings.names,
        topology.GROUPS,
        metrics.get(),
        settings.lag_interval_s,
    )
    lag.start()
    app = FastAPI(
        title="Golive audit API",
        version=VERSION,
        lifespan=runner_lifespan(RunnerThreads([recorder]), producer.close, lag.close),
    )
    tracing.instrument(app)
    metrics.instrument(app)
    app.state.auditing = http.Auditing(engine, producer, clock, VERSION)
    add_health(app, service_readiness(settings, [recorder], database_check(engine)))
    use_tokens(app, verifier)
    app.include_router(http.router)
    return app


def read_model(settings: AuditSettings) -> ReadModel:
    """The audit store, for `golive rebuild audit`."""
    pattern = _pattern(settings)
    return ReadModel(
        name="audit",
        database_url=settings.audit_database_url,
        metadata=store.metadata,
        projection=store.Recorder,
        group=topology.AUDIT.name,
        topics=lambda: matching_topics(settings, pattern),
    )


def _pattern(settings: AuditSettings) -> str:
    return subscription([settings.names.topic(t) for t in topology.AUDIT.reads])


def main() -> None:
    """golive-audit."""
    with configured("golive-audit"):
        settings = AuditSettings()
        app = audit_app(settings)
    serve(app, settings.audit_host, settings.audit_port)
