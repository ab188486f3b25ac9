"""A service's log lines (golive_eventing.logs): JSON with the service, version and the trace and
span ids of the span they were logged in; text for a terminal. No I/O but a string buffer."""

from __future__ import annotations

import io
import json
import logging

from golive_eventing.logs import TraceContext, formatter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider


def _logger(json_lines: bool) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(json_lines))
    handler.addFilter(TraceContext())
    logger = logging.getLogger(f"test-logs-{json_lines}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def test_a_line_logged_in_a_span_is_json_with_its_trace_and_span_ids() -> None:
    tracer = TracerProvider(resource=Resource.create({"service.name": "t"})).get_tracer("t")
    logger, out = _logger(json_lines=True)
    with tracer.start_as_current_span("request") as span:
        logger.warning("order %s placed", "o-1")
        context = span.get_span_context()
    line = json.loads(out.getvalue())
    assert line["message"] == "order o-1 placed"
    assert line["level"] == "WARNING"
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["timestamp"].endswith("+00:00")
    assert {"logger", "service", "version"} <= line.keys()


def test_a_line_outside_any_span_has_no_trace_id_and_an_error_keeps_its_traceback() -> None:
    logger, out = _logger(json_lines=True)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    line = json.loads(out.getvalue())
    assert line["trace_id"] is None
    assert "ValueError: boom" in line["exc_info"]


def test_text_for_a_terminal_is_one_readable_line_in_utc() -> None:
    logger, out = _logger(json_lines=False)
    logger.warning("hello")
    text = out.getvalue()
    assert text.rstrip().endswith("WARNING test-logs-False: hello")
    assert "Z " in text  # 2026-11-30T18:20:00.123Z
