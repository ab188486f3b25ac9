"""OpenTelemetry traces: one trace per order journey, from the HTTP request through every Kafka hop.

W3C trace context travels in record headers: injected on produce, extracted on consume. Spans
carry OpenTelemetry's messaging semantic conventions (messaging.system, destination, operation,
consumer group, partition, offset, key). The HTTP side is FastAPI's instrumentation, which also
answers every traced request with its `traceresponse` header (W3C Trace Context level 2), so a
client can quote its trace id. With export off, a lighter middleware gives a request the same
context and header, and records nothing (`instrument`).

Export is configured by OpenTelemetry's standard variables. OTLP over HTTP is the default
(OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, _HEADERS, OTEL_BSP_*): with
neither endpoint set, nothing is exported and the context only travels across hops (`setup`).
OTEL_TRACES_EXPORTER=zipkin sends them to OTEL_EXPORTER_ZIPKIN_ENDPOINT instead (the local
trace viewer, golive_platform.viewer). OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none
turn export off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from contextvars import ContextVar
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, cast

from opentelemetry import context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.asgi import asgi_getter, asgi_setter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.propagators import (
    TraceResponsePropagator,
    get_global_response_propagator,
    set_global_response_propagator,
)
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.http import parse_excluded_urls

from golive_eventing.exits import ConfigError
from golive_eventing.records import REDRIVE_FROM

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from golive_eventing.records import Consumed

Headers = list[tuple[str, bytes]]
# Not traced: the probes would bury the journeys.
UNTRACED_URLS = "healthz,readyz"


Exporter = Literal["otlp", "zipkin"]
EXPORTERS: tuple[Exporter, ...] = ("otlp", "zipkin")


class TracingSettingsError(ConfigError):
    """OTEL_TRACES_EXPORTER names an exporter this build does not have."""


def exporter(env: Mapping[str, str] = os.environ) -> Exporter | None:
    """Where spans are exported, or None: OTLP when an endpoint is configured, Zipkin when
    OTEL_TRACES_EXPORTER says so; nothing when export is off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    chosen = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if chosen == "none":
        return None
    if chosen == "zipkin":
        return "zipkin"
    if chosen != "otlp":
        raise TracingSettingsError(
            f"OTEL_TRACES_EXPORTER={chosen!r}: this build exports with one of "
            f"{', '.join(EXPORTERS)}, or none"
        )
    configured = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return "otlp" if configured else None


def setup(service: str, version: str) -> None:
    """The process's tracer provider (once): spans with ids, exported where `exporter()` says.
    The resource names the service and version; OTEL_RESOURCE_ATTRIBUTES adds to it (the
    deployment environment, for one). Batched spans are flushed when the process exits.

    With export off, no span is recorded (the ALWAYS_OFF sampler): an HTTP request's span still
    gets its ids, so logs name their trace and the `traceresponse` header answers. The Kafka
    hops then make no span at all, and parse nothing: a record's trace headers are copied to
    its outputs as they came, and its log lines name the record's trace and, as their span, the
    one that produced it (make bench-tracing measures what is left). A record that came with
    no context (a producer outside the project) is handled without one: its logs and outputs
    carry no trace id. The context then travels unsampled (flags 00): export is set for every
    service at once, not for some."""
    global _hops_traced  # noqa: PLW0603 (one per process, as the provider is)
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        _hops_traced = True  # set up already (opentelemetry-instrument, say): spans go there
        return
    resource = Resource.create({"service.name": service, "service.version": version})
    chosen = exporter()
    _hops_traced = chosen is not None
    # sampler None: OpenTelemetry's default (parent-based, or OTEL_TRACES_SAMPLER's choice).
    provider = TracerProvider(resource=resource, sampler=None if chosen else ALWAYS_OFF)
    # The exporters are imported only to export: a fifth of a second of every process start.
    match chosen:
        case "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        case "zipkin":
            from opentelemetry.exporter.zipkin.json import ZipkinExporter  # noqa: PLC0415

            provider.add_span_processor(BatchSpanProcessor(ZipkinExporter()))
        case None:
            pass
    trace.set_tracer_provider(provider)
    set_global_response_propagator(TraceResponsePropagator())  # type: ignore[no-untyped-call]


def instrument(app: FastAPI) -> None:
    """Trace the app's requests: a server span per request, the parent of what it publishes.

    With export off, FastAPI's instrumentation would still build every request's span and its
    attributes, and a span for each receive and send, all unrecorded: a bare endpoint behind
    the token check took 0.30 ms a request without it and 0.49 ms with it (3,355 and 2,039
    req/s under wrk). The request gets its context from `_RequestContext` instead, outermost as
    the instrumentation is."""
    if _hops_traced:
        FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_URLS)
        return
    built = app.build_middleware_stack

    def build() -> ASGIApp:
        return _RequestContext(built())

    app.build_middleware_stack = build  # type: ignore[method-assign]


_UNTRACED = parse_excluded_urls(UNTRACED_URLS)  # matched as the instrumentation matches them


class _RequestContext:
    """With export off: a request continues its caller's trace (or begins one) in an unrecorded
    server span, current while the app handles it, so what it publishes and logs carries the
    context; its answer says `traceresponse`, as with the instrumentation (whose header getter
    and setter these are)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _UNTRACED.url_disabled(scope["path"]):
            await self.app(scope, receive, send)
            return
        parent = propagate.extract(cast("dict[str, Any]", scope), getter=asgi_getter)
        span = _tracer.start_span(
            f"{scope['method']} {scope['path']}", parent, kind=trace.SpanKind.SERVER
        )
        answered = trace.set_span_in_context(span, context.Context())

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                responding = get_global_response_propagator()  # type: ignore[no-untyped-call]
                if responding is not None:
                    responding.inject(message, context=answered, setter=asgi_setter)
            await send(message)

        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            await self.app(scope, receive, answer)
        finally:
            context.detach(token)
            span.end()


_tracer = trace.get_tracer("golive.eventing")
# Whether the Kafka hops make spans: only when they are exported (`setup`). Otherwise a hop
# passes the trace headers it was given along, as they came: no span, no parse.
_hops_traced = False
# With export off, the trace headers of the record being handled (`processing`): what `inject`
# and `carried` write for it, and what a log line's ids are read from (`passed_ids`).
_passed: ContextVar[tuple[tuple[str, bytes], ...]] = ContextVar("golive_passed", default=())


def producing(topic: str, key: str | None = None) -> AbstractContextManager[trace.Span]:
    """A span around one publish: its context is what `inject` writes into the record's headers.
    Not traced: the current span, unchanged (the publish joins the hop's context)."""
    if not _hops_traced:
        return _Current()
    return _producing(topic, key)


@contextmanager
def _producing(topic: str, key: str | None) -> Iterator[trace.Span]:
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": topic,
    }
    if key is not None:
        attributes["messaging.kafka.message.key"] = key
    with _tracer.start_as_current_span(
        f"send {topic}", kind=trace.SpanKind.PRODUCER, attributes=attributes
    ) as span:
        yield span


def processing(record: Consumed, group: str) -> AbstractContextManager[trace.Span]:
    """A span continuing the trace a consumed record carries; outputs produced inside join it.
    Not traced: the record's trace headers kept as they came, unparsed, for its outputs and its
    log lines (`inject`, `carried`, `passed_ids`)."""
    if not _hops_traced:
        return _Passing(record)
    return _processing(record, group)


def _processing(record: Consumed, group: str) -> AbstractContextManager[trace.Span]:
    """The consumer span of one record, in the trace it carries, current while it is open."""
    return _tracer.start_as_current_span(
        f"process {record.topic}",
        context=extract(record.headers),
        kind=trace.SpanKind.CONSUMER,
        attributes=_consumed(record, group),
    )


class _Current(AbstractContextManager[trace.Span]):
    """The current span, nothing made (classes, not generators: an untraced hop's whole cost
    is in these few lines)."""

    def __enter__(self) -> trace.Span:
        return trace.get_current_span()

    def __exit__(self, *_exc: object) -> None:
        return None


class _Passing(AbstractContextManager[trace.Span]):
    """A record's own trace headers, current while an untraced hop handles it."""

    def __init__(self, record: Consumed) -> None:
        written = propagated()
        self._headers = tuple((k, v) for k, v in record.headers if v and k in written)

    def __enter__(self) -> trace.Span:
        self._token = _passed.set(self._headers)
        return trace.get_current_span()

    def __exit__(self, *_exc: object) -> None:
        _passed.reset(self._token)


@contextmanager
def processing_batch(batch: Sequence[Consumed], group: str) -> Iterator[None]:
    """A span per record, each in its own record's trace, around a batch handled at once (a read
    model's database transaction, the recorder's): every journey shows the hop and its time.
    Not traced: nothing (a batch produces nothing for its records' context to follow)."""
    if not _hops_traced:
        yield
        return
    with ExitStack() as spans:
        for record in batch:
            if not record.skip:
                spans.enter_context(_processing(record, group))
        yield


def dead_lettered(span: trace.Span, reason: str) -> None:
    """Mark a record's processing span: it went to the dead-letter topic, and why."""
    span.set_attribute("golive.dead_letter.reason", reason)
    span.set_status(trace.Status(trace.StatusCode.ERROR, reason))


def _consumed(record: Consumed, group: str) -> dict[str, str | int]:
    found: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.consumer.group.name": group,
        "messaging.kafka.offset": record.offset,
    }
    if record.key is not None:
        found["messaging.kafka.message.key"] = record.key
    if record.event is not None:
        found["golive.event_type"] = record.event.type_name()
    redriven = record.header(REDRIVE_FROM)
    if redriven is not None:  # `golive dlq redrive` sent it back: from where
        found["golive.redrive.from"] = redriven.decode("utf-8", "replace")
    return found


@contextmanager
def expiring(remembered: Mapping[str, str], group: str, key: str) -> Iterator[trace.Span]:
    """A span around a timer's firing, in the trace of the record that armed it (`remembered`:
    the trace context kept with the key's state, see `carried`): a payment timeout's
    cancellation belongs to its order's journey."""
    with _tracer.start_as_current_span(
        f"expire {group}",
        context=propagate.extract(dict(remembered)),
        kind=trace.SpanKind.INTERNAL,
        attributes={"messaging.consumer.group.name": group, "golive.timer.key": key},
    ) as span:
        yield span


def carried() -> dict[str, str]:
    """The current trace context as W3C fields (`traceparent`, `tracestate`), to keep beside
    state that outlives the span (a timer); empty outside a recorded span."""
    passed = _passing()
    if passed:
        return {k: v.decode("utf-8", "replace") for k, v in passed}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def inject(headers: Headers) -> Headers:
    passed = _passing()
    if passed:
        return headers + list(passed)
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return headers + [(k, v.encode()) for k, v in carrier.items()]


def _passing() -> tuple[tuple[str, bytes], ...]:
    """The record's own trace headers, while an untraced hop handles it outside any span of
    this process (a timer's span, say, is current instead: its context is written)."""
    passed = _passed.get()
    if passed and trace.get_current_span().get_span_context().is_valid:
        return ()
    return passed


def passed_ids() -> tuple[str, str] | None:
    """The trace and parent span ids of the record an untraced hop handles (its logs name
    them), read from its `traceparent` only when asked."""
    for key, value in _passed.get():
        if key == "traceparent":
            parts = value.split(b"-")
            if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
                return parts[1].decode("ascii", "replace"), parts[2].decode("ascii", "replace")
    return None


def extract(headers: Sequence[tuple[str, bytes | None]] | None) -> context.Context:
    propagator = propagate.get_global_textmap()
    read = _read(propagator)  # not the event's own headers, when that is known
    carrier = {
        k: (v or b"").decode("utf-8", "replace")
        for k, v in headers or []
        if read is None or k in read
    }
    return propagator.extract(carrier)


def propagated() -> frozenset[str]:
    """The headers `inject` writes (OTEL_PROPAGATORS': W3C trace context and baggage by
    default): a record passed on replaces these, and keeps its others."""
    return _written(propagate.get_global_textmap())


@cache
def _written(propagator: TextMapPropagator) -> frozenset[str]:
    return frozenset(propagator.fields)


# OpenTelemetry's default propagators read exactly the headers they write; others may read more
# than their `fields` (B3's x-b3-flags, Jaeger's uberctx-* baggage), and are given every header.
_READ_WHAT_THEY_WRITE = (TraceContextTextMapPropagator, W3CBaggagePropagator)


@cache
def _read(propagator: TextMapPropagator) -> frozenset[str] | None:
    parts = getattr(propagator, "_propagators", [propagator])
    if all(isinstance(p, _READ_WHAT_THEY_WRITE) for p in parts):
        return _written(propagator)
    return None
