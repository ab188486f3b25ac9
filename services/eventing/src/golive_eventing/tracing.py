"""W3C trace context across every Kafka hop: injected into record headers, extracted on consume."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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


_tracer = trace.get_tracer("golive.eventing")


@contextmanager
def producing(topic: str) -> Iterator[trace.Span]:
    """A span around one publish: its context is what `inject` writes into the record's headers."""
    with _tracer.start_as_current_span(f"{topic} publish", kind=trace.SpanKind.PRODUCER) as span:
        yield span


@contextmanager
def processing(
    topic: str, headers: Sequence[tuple[str, bytes | None]] | None
) -> Iterator[trace.Span]:
    """A span continuing the trace a consumed record carries; outputs produced inside join it."""
    parent = extract(headers)
    with _tracer.start_as_current_span(
        f"{topic} process", context=parent, kind=trace.SpanKind.CONSUMER
    ) as span:
        yield span


def inject(headers: Headers) -> Headers:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return headers + [(k, v.encode()) for k, v in carrier.items()]


def extract(headers: Sequence[tuple[str, bytes | None]] | None) -> context.Context:
    carrier = {k: (v or b"").decode("utf-8", "replace") for k, v in headers or []}
    return propagate.extract(carrier)
