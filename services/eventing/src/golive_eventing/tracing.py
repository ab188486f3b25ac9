"""W3C trace context across every Kafka hop: injected into record headers, extracted on consume."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

Headers = list[tuple[str, bytes]]


def setup(service: str) -> None:
    """A real tracer provider, so spans have ids and traceparent travels (exporters come later)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(
            TracerProvider(resource=Resource.create({"service.name": service}))
        )


def inject(headers: Headers) -> Headers:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return headers + [(k, v.encode()) for k, v in carrier.items()]


def extract(headers: Sequence[tuple[str, bytes | None]] | None) -> context.Context:
    carrier = {k: (v or b"").decode("utf-8", "replace") for k, v in headers or []}
    return propagate.extract(carrier)
