"""Where spans go, from OpenTelemetry's standard variables (golive_eventing.tracing.exporter)."""

from __future__ import annotations

import json
import textwrap

import pytest
from golive_eventing.tracing import TracingSettingsError, exporter

from tests.helpers import run_python


def test_nothing_is_exported_without_an_endpoint() -> None:
    assert exporter({}) is None


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://agent:4318"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://agent:4318/v1/traces"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://agent:4318", "OTEL_TRACES_EXPORTER": "otlp"},
    ],
)
def test_otlp_when_an_endpoint_is_set(env: dict[str, str]) -> None:
    assert exporter(env) == "otlp"


def test_zipkin_when_asked_for_the_local_viewer() -> None:
    assert exporter({"OTEL_TRACES_EXPORTER": "Zipkin"}) == "zipkin"


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://agent:4318", "OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://agent:4318", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_SDK_DISABLED": "TRUE"},
    ],
)
def test_export_can_be_turned_off(env: dict[str, str]) -> None:
    assert exporter(env) is None


def test_an_exporter_this_build_lacks_is_named() -> None:
    with pytest.raises(TracingSettingsError, match=r"OTEL_TRACES_EXPORTER='jaeger'.*otlp, zipkin"):
        exporter({"OTEL_TRACES_EXPORTER": "jaeger"})


_OFF = textwrap.dedent(
    """
    from opentelemetry import trace
    from golive_eventing import tracing

    tracing.setup("order", "test")
    with trace.get_tracer("t").start_as_current_span("POST /orders") as request:
        with tracing.producing("orders", "k") as publish:
            headers = dict(tracing.inject([]))
    ids = request.get_span_context(), publish.get_span_context()
    print(format(ids[0].trace_id, "032x"), ids[0].is_valid, ids[1].is_valid,
          request.is_recording(), publish.is_recording(), headers["traceparent"].decode())
    """
)


def test_with_export_off_nothing_is_recorded_but_the_context_still_travels() -> None:
    """Ids for the logs, the traceresponse header and the next hop; no span kept."""
    trace_id, request_valid, publish_valid, recorded, published, traceparent = run_python(
        _OFF
    ).split()
    assert (request_valid, publish_valid) == ("True", "True")
    assert (recorded, published) == ("False", "False")
    version, carried_trace, _span, flags = traceparent.split("-")
    assert (version, carried_trace) == ("00", trace_id)
    assert int(flags, 16) & 0x01 == 0, "carried as not sampled"


_HOP_OFF = textwrap.dedent(
    """
    import logging
    from golive_eventing import logs, tracing
    from golive_eventing.records import Consumed

    tracing.setup("payment", "test")
    upstream = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    record = Consumed(
        topic="orders", partition=0, offset=7, timestamp_ms=0, key="k", value=b"", event=None,
        headers=(("golive.event", b"OrderPlaced"), ("traceparent", upstream), ("baggage", b"a=1")),
    )
    during = logging.LogRecord("t", logging.WARNING, "t.py", 1, "m", None, None)
    after = logging.LogRecord("t", logging.WARNING, "t.py", 1, "m", None, None)
    with tracing.processing(record, "payment") as hop, tracing.producing("payments", "k") as out:
        headers = tracing.inject([("golive.event", b"PaymentAuthorized")])
        carried = tracing.carried()
        logs.TraceContext().filter(during)
    logs.TraceContext().filter(after)
    print(hop is out, hop.is_recording(), during.trace_id, during.span_id, after.trace_id)
    print(headers == [
        ("golive.event", b"PaymentAuthorized"), ("traceparent", upstream), ("baggage", b"a=1")
    ])
    print(carried == {"traceparent": upstream.decode(), "baggage": "a=1"})
    """
)


def test_with_export_off_a_kafka_hop_makes_no_span_and_passes_the_context_along() -> None:
    """What makes "off" cheap: no span and no parse. The record's trace headers go into its
    outputs as they came, once each, and into a timer's state; its log lines name its trace
    and the span that produced it; after the record, nothing of it is left."""
    same_span, recording, trace_id, span_id, leaked, written, carried = run_python(_HOP_OFF).split()
    assert (same_span, recording) == ("True", "False")  # no span of its own
    assert (trace_id, span_id) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert written == "True"  # the next hop continues the same trace, from the same parent
    assert carried == "True"  # a timer armed here fires in the same trace
    assert leaked == "None"  # the record's context ends with it


_REQUEST_OFF = textwrap.dedent(
    """
    import json, logging
    from fastapi import FastAPI, HTTPException
    from fastapi.testclient import TestClient
    from golive_eventing import logs, tracing

    tracing.setup("order", "test")
    app = FastAPI()
    tracing.instrument(app)

    @app.post("/orders")
    def place() -> dict[str, str]:
        line = logging.LogRecord("t", logging.INFO, "t.py", 1, "m", None, None)
        logs.TraceContext().filter(line)
        published = dict(tracing.inject([]))["traceparent"].decode()
        return {"published": published, "logged": f"{line.trace_id} {line.span_id}"}

    @app.get("/broken")
    def broken() -> None:
        raise HTTPException(status_code=500, detail="no")

    @app.get("/healthz")
    @app.get("/healthz/")
    def healthz() -> None:
        return None

    client = TestClient(app)
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    continued = client.post("/orders", headers=[("traceparent", caller), ("traceparent", other)])
    begun = client.post("/orders")
    print(json.dumps({
        "instrumented": getattr(app, "_is_instrumented_by_opentelemetry", False),
        "continued": [continued.headers.get("traceresponse"), continued.json()],
        "begun": [begun.headers.get("traceresponse"), begun.json()],
        "exposed": continued.headers.get("access-control-expose-headers"),
        "failed": client.get("/broken").headers.get("traceresponse"),
        "probe": client.get("/healthz").headers.get("traceresponse"),
        "probe_slash": client.get("/healthz/").headers.get("traceresponse"),
    }))
    """
)


def test_with_export_off_a_request_continues_its_callers_trace_and_answers_traceresponse() -> None:
    """No span recorded and no FastAPI instrumentation, but the request's context: the caller's
    trace continued (its first traceparent, as the instrumentation reads it) or one begun,
    named by the traceresponse header, carried by what the request publishes and named by what
    it logs."""
    found = json.loads(run_python(_REQUEST_OFF))
    assert found["instrumented"] is False  # the light path
    answer, seen = found["continued"]
    version, trace_id, span_id, flags = answer.split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "00")
    assert span_id != "00f067aa0ba902b7"  # the request's own span, a child of the caller's
    assert seen["published"] == f"00-{trace_id}-{span_id}-00"  # the next hop's parent
    assert seen["logged"] == f"{trace_id} {span_id}"
    assert found["exposed"] == "traceresponse"  # a browser may read it
    answer, seen = found["begun"]
    _, trace_id, span_id, _ = answer.split("-")
    assert trace_id not in ("0" * 32, "4bf92f3577b34da6a3ce929d0e0e4736")
    assert seen["published"].split("-")[1:3] == [trace_id, span_id]
    assert found["failed"] is not None  # an error's answer names its trace too
    assert found["probe"] is None  # the probes are not traced
    assert found["probe_slash"] is None
