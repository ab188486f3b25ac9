"""The local trace viewer (`GOLIVE_TRACE_VIEWER=1 make run`): a real Zipkin server from Maven
Central, and a process configured as the platform configures the services sends it its spans,
which Zipkin's API (the one its UI reads) returns as one trace, parented."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from golive_platform import process, viewer
from golive_platform.config import PlatformConfig
from golive_platform.java import find_java
from golive_platform.testing import suite_config

from tests.helpers import eventually, free_port

pytestmark = pytest.mark.integration

# A service's first steps of a journey: an HTTP request, and the publish inside it.
_SERVICE = textwrap.dedent(
    """
    from opentelemetry import trace
    from golive_eventing import tracing

    tracing.setup("order", "test")
    with trace.get_tracer("test").start_as_current_span("POST /orders", kind=trace.SpanKind.SERVER):
        with tracing.producing("orders", "order-1") as span:
            print(format(span.get_span_context().trace_id, "032x"))
    """
)


@pytest.fixture(scope="module")
def zipkin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformConfig]:
    config = suite_config(
        data_dir=tmp_path_factory.mktemp("viewer"), trace_viewer=True, zipkin_port=free_port()
    )
    node = viewer.ZipkinNode(config, viewer.fetch(config, echo=False))
    java = find_java(17, config.java_home, "Zipkin")
    running, _ = process.start(config.run_dir, node.launch(java))
    try:
        process.wait_ready(running, lambda: viewer.zipkin_ready(config), 90, node.log)
        yield config
    finally:
        process.stop(config.run_dir, node.name, 20)


def _trace(config: PlatformConfig, trace_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{config.zipkin_url}/api/v2/trace/{trace_id}", timeout=5)
    return list(answer.json()) if answer.status_code == 200 else []


def test_a_services_spans_arrive_as_one_parented_trace(zipkin: PlatformConfig) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SERVICE],
        env={"PATH": "/usr/bin:/bin", **viewer.exporting(zipkin)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    trace_id = done.stdout.strip()

    spans = eventually(
        lambda: found if len(found := _trace(zipkin, trace_id)) == 2 else None,
        30,
        f"trace {trace_id}'s two spans in Zipkin",
    )
    by_name = {s["name"]: s for s in spans}
    request, publish = by_name["post /orders"], by_name["send orders"]
    assert publish["parentId"] == request["id"]
    assert (request["kind"], publish["kind"]) == ("SERVER", "PRODUCER")
    assert {s["localEndpoint"]["serviceName"] for s in spans} == {"order"}
    assert publish["tags"]["messaging.destination.name"] == "orders"
    assert publish["tags"]["messaging.kafka.message.key"] == "order-1"


def test_its_ui_is_served(zipkin: PlatformConfig) -> None:
    page = httpx.get(zipkin.zipkin_url + viewer.UI_PATH, timeout=5)
    assert page.status_code == 200
    assert "<title>Zipkin</title>" in page.text


def test_the_jar_is_cached_outside_git(zipkin: PlatformConfig) -> None:
    jar = viewer.jar(zipkin)
    assert jar.is_file()
    assert not jar.resolve().is_relative_to(Path(__file__).resolve().parents[2])
