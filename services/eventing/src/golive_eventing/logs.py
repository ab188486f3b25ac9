"""A service process's logs: JSON lines for machines, text for a person at a terminal.

Each JSON line has the time (UTC, ISO 8601), level, logger, message, the service and its version
(from the tracer provider's resource: golive_eventing.tracing.setup names them once), and the
trace and span ids of the request or record being handled, so a log line leads to its trace
(Datadog and most backends link them by `trace_id`). LOG_LEVEL sets the level (default WARNING);
LOG_FORMAT json|text|auto (auto: text when stderr is a terminal, else JSON).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Literal

from opentelemetry import trace
from pydantic_settings import BaseSettings, SettingsConfigDict
from pythonjsonlogger.json import JsonFormatter

from golive_eventing import tracing

TEXT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    log_format: Literal["json", "text", "auto"] = "auto"


class TraceContext(logging.Filter):
    """Puts the service, its version and the current span's ids on every record."""

    def __init__(self) -> None:
        super().__init__()
        resource = getattr(trace.get_tracer_provider(), "resource", None)
        attributes = resource.attributes if resource is not None else {}
        self.service = str(attributes.get("service.name", "unknown"))
        self.version = str(attributes.get("service.version", "unknown"))

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        record.service = self.service
        record.version = self.version
        if span.is_valid:
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        else:  # an untraced Kafka hop's record: its own ids (golive_eventing.tracing)
            record.trace_id, record.span_id = tracing.passed_ids() or (None, None)
        return True


def formatter(json_lines: bool) -> logging.Formatter:
    if json_lines:
        return JsonFormatter(
            "%(levelname)s %(name)s %(message)s %(service)s %(version)s %(trace_id)s %(span_id)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,  # "timestamp": ISO 8601 in UTC, to the microsecond
        )
    text = logging.Formatter(TEXT, datefmt="%Y-%m-%dT%H:%M:%S")
    text.converter = time.gmtime
    return text


def configure(settings: LogSettings | None = None) -> None:
    """The root logger of a service process: one handler on stderr, as the settings say. After
    golive_eventing.tracing.setup, which names the service."""
    settings = settings or LogSettings()
    json_lines = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stderr.isatty()
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(json_lines))
    handler.addFilter(TraceContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
