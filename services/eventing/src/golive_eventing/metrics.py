"""Metrics, to DogStatsD (the `datadog` package) and to OpenTelemetry, from one catalogue
(golive_contracts.metrics): a team without Datadog loses nothing.

- DogStatsD when DD_AGENT_HOST names an agent (DD_DOGSTATSD_PORT, default 8125): every data
  point carries the unified service tags env (DD_ENV, default `local`), service and version.
- OpenTelemetry when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT), exported every OTEL_METRIC_EXPORT_INTERVAL ms; the
  resource names the service and version, as traces do.
- Neither: every call returns at once, and nothing is imported for it.

A data point's tags must be exactly its metric's declared tags: a dashboard or monitor built on
the catalogue then finds what it names.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from golive_contracts.metrics import HTTP_DURATION, HTTP_REQUESTS, Kind, Metric

if TYPE_CHECKING:
    from datadog.dogstatsd.base import DogStatsd
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

Tag = str | int


def _otlp(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_METRICS_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


class Metrics:
    """One process's metrics: `count`, `distribution` and `gauge` of catalogue metrics."""

    def __init__(self, service: str, version: str, env: Mapping[str, str] = os.environ) -> None:
        self.service, self.version = service, version
        self.statsd: DogStatsd | None = None
        self._otel: dict[str, Any] = {}
        self._provider: Any = None
        agent = env.get("DD_AGENT_HOST", "").strip()
        if agent:
            from datadog.dogstatsd.base import DogStatsd  # noqa: PLC0415

            # The client adds DD_ENV, DD_SERVICE and DD_VERSION from the process's environment
            # itself (a deployment's word); what that leaves unset, this process says.
            unified = {"DD_ENV": ("env", "local"), "DD_SERVICE": ("service", service)}
            unified["DD_VERSION"] = ("version", version)
            constant = [
                f"{tag}:{env.get(var) or default}"
                for var, (tag, default) in unified.items()
                if not os.environ.get(var)
            ]
            self.statsd = DogStatsd(
                host=agent,
                port=int(env.get("DD_DOGSTATSD_PORT", "8125")),
                constant_tags=constant,
                disable_telemetry=True,
                # Counts and gauges summed in the process, everything sent in a few datagrams
                # every 0.3 s by the client's flush thread: a data point costs a dict update.
                disable_aggregation=False,
                disable_buffering=False,
            )
        if _otlp(env):
            self._otel = self._instruments()
        self.on = self.statsd is not None or bool(self._otel)

    @classmethod
    def off(cls) -> Metrics:
        return cls("", "", env={})

    def _instruments(self) -> dict[str, Any]:
        # Imported only to export: the SDK's metrics and the exporter cost a process start.
        from golive_contracts.metrics import METRICS  # noqa: PLC0415
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.metrics.export import (  # noqa: PLC0415
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

        resource = Resource.create({"service.name": self.service, "service.version": self.version})
        reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        self._provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = self._provider.get_meter("golive")
        made: dict[str, Any] = {}
        for m in METRICS:
            if m.kind is Kind.DISTRIBUTION:
                made[m.name] = meter.create_histogram(
                    m.name,
                    unit=m.unit,
                    description=m.description,
                    explicit_bucket_boundaries_advisory=m.buckets,
                )
                continue
            make = {Kind.COUNT: meter.create_counter, Kind.GAUGE: meter.create_gauge}[m.kind]
            made[m.name] = make(m.name, unit=m.unit, description=m.description)
        return made

    def count(self, metric: Metric, value: float = 1, **tags: Tag) -> None:
        if self.on:
            self._record(metric, Kind.COUNT, value, tags)

    def distribution(self, metric: Metric, value: float, **tags: Tag) -> None:
        if self.on:
            self._record(metric, Kind.DISTRIBUTION, value, tags)

    def gauge(self, metric: Metric, value: float, **tags: Tag) -> None:
        if self.on:
            self._record(metric, Kind.GAUGE, value, tags)

    def _record(self, metric: Metric, kind: Kind, value: float, tags: Mapping[str, Tag]) -> None:
        if metric.kind is not kind or tags.keys() != metric.tag_names:
            raise ValueError(
                f"{metric.name} is a {metric.kind} tagged {', '.join(metric.tags)}: not a {kind} "
                f"tagged {', '.join(sorted(tags))}"
            )
        if self.statsd is not None:
            pairs = [f"{k}:{v}" for k, v in tags.items()]
            if kind is Kind.COUNT:
                self.statsd.increment(metric.name, value, tags=pairs)
            elif kind is Kind.GAUGE:
                self.statsd.gauge(metric.name, value, tags=pairs)
            else:
                self.statsd.distribution(metric.name, value, tags=pairs)
        instrument = self._otel.get(metric.name)
        if instrument is not None:
            attributes = {k: str(v) for k, v in tags.items()}
            if kind is Kind.COUNT:
                instrument.add(value, attributes)
            elif kind is Kind.GAUGE:
                instrument.set(value, attributes)
            else:
                instrument.record(value, attributes)

    def close(self) -> None:
        """Send what is buffered."""
        if self.statsd is not None:
            self.statsd.flush()
        if self._provider is not None:
            self._provider.shutdown()


_lock = threading.Lock()
_metrics = Metrics.off()


def setup(service: str, version: str) -> Metrics:
    """The process's metrics (once), flushed when it exits."""
    global _metrics  # noqa: PLW0603 (one per process, as OpenTelemetry's providers are)
    with _lock:
        if not _metrics.on and not _metrics.service:
            _metrics = Metrics(service, version)
            atexit.register(_metrics.close)
        return _metrics


def get() -> Metrics:
    """The process's metrics; off until `setup`."""
    return _metrics


# A path parameter as Datadog's tags can carry it (no braces): /orders/{order_id} -> /orders/:order_id
_ROUTE_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
# Not measured: the probes would drown the requests.
UNMEASURED_PATHS = frozenset({"/healthz", "/readyz"})


class HttpMetrics:
    """ASGI middleware: golive.http.requests and golive.http.request.duration per route template
    (`/orders/:order_id`, not each order's path) and status code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        measured = get()
        if scope["type"] != "http" or not measured.on or scope["path"] in UNMEASURED_PATHS:
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _ROUTE_PARAM.sub(r":\1", getattr(scope.get("route"), "path", "unmatched"))
            tags = {"method": scope["method"], "route": route, "status": status}
            measured.count(HTTP_REQUESTS, **tags)
            measured.distribution(HTTP_DURATION, time.perf_counter() - began, **tags)


def instrument(app: FastAPI) -> None:
    """Measure the app's requests (when metrics are on; free otherwise)."""
    app.add_middleware(HttpMetrics)
