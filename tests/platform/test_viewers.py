"""The local viewers (`GOLIVE_VIEWERS=1 make run`): a real Zipkin server from Maven Central and
a real VictoriaMetrics built from the Go module proxy. A process configured as the platform
configures the services sends them its spans and its metrics: Zipkin's API (the one its UI
reads) returns the spans as one trace, parented; VictoriaMetrics' query API (the one its UI
reads) returns the metrics with their service and tags."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from golive_platform import process, viewer
from golive_platform.config import PlatformConfig
from golive_platform.java import find_java
from golive_platform.testing import suite_config

from tests.helpers import eventually, free_port, run_python

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
        data_dir=tmp_path_factory.mktemp("viewer"), viewers=True, zipkin_port=free_port()
    )
    java = find_java(17, config.java_home, "Zipkin")
    launch = viewer.ZipkinNode(config, viewer.fetch(config, echo=False)).launch(java)
    with _serving(config, launch, viewer.zipkin_ready, timeout_s=90):
        yield config


@contextmanager
def _serving(
    config: PlatformConfig,
    launch: process.Launch,
    ready: Callable[[PlatformConfig], bool],
    timeout_s: float,
) -> Iterator[None]:
    """A viewer's process, started and answering within `timeout_s`, stopped after."""
    running, _ = process.start(config.run_dir, launch)
    try:
        process.wait_ready(running, lambda: ready(config), timeout_s, launch.log)
        yield
    finally:
        process.stop(config.run_dir, launch.name, 20)


# A service's metrics: a journey's duration and a payment decision, exported when it exits.
_METRICS = textwrap.dedent(
    """
    from golive_contracts.metrics import JOURNEY_DURATION, PAYMENT_DECISIONS
    from golive_eventing import metrics

    m = metrics.setup("order-process-manager", "test")
    m.distribution(JOURNEY_DURATION, 0.25, outcome="confirmed")
    m.count(PAYMENT_DECISIONS, 2, outcome="approved", reason="ok", decided_by="blue")
    """
)


@pytest.fixture(scope="module")
def victoriametrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformConfig]:
    config = suite_config(
        data_dir=tmp_path_factory.mktemp("metrics"), viewers=True, victoriametrics_port=free_port()
    )
    launch = viewer.VictoriaMetricsNode(config, viewer.build_vm(config, echo=False)).launch()
    with _serving(config, launch, viewer.metrics_ready, timeout_s=60):
        yield config


def _series(config: PlatformConfig, selector: str) -> list[dict[str, str]]:
    answer = httpx.get(
        f"{config.victoriametrics_url}/api/v1/series", params={"match[]": selector}, timeout=5
    )
    answer.raise_for_status()
    return list(answer.json()["data"])


def _value(config: PlatformConfig, query: str) -> float | None:
    answer = httpx.get(
        f"{config.victoriametrics_url}/api/v1/query", params={"query": query}, timeout=5
    )
    answer.raise_for_status()
    result = answer.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_a_services_metrics_arrive_with_their_service_and_tags(
    victoriametrics: PlatformConfig,
) -> None:
    run_python(_METRICS, viewer.exporting(victoriametrics))
    decisions = eventually(
        lambda: _series(victoriametrics, '{__name__="golive.payment.decisions"}'),
        30,
        "the payment decisions in VictoriaMetrics",
    )
    assert len(decisions) == 1, decisions
    (series,) = decisions
    assert series["service.name"] == "order-process-manager"
    assert series["service.version"] == "test"
    assert (series["outcome"], series["reason"], series["decided_by"]) == ("approved", "ok", "blue")
    assert _value(victoriametrics, 'sum({__name__="golive.payment.decisions"})') == 2

    # A histogram: its buckets, sum and count, split in seconds (docs/observability.md's query).
    journeys = _series(victoriametrics, '{__name__=~"golive.order.journey.duration_.*"}')
    assert {s["outcome"] for s in journeys} == {"confirmed"}
    assert _value(victoriametrics, 'sum({__name__="golive.order.journey.duration_count"})') == 1
    median = _value(
        victoriametrics,
        'histogram_quantile(0.5, sum({__name__="golive.order.journey.duration_bucket"}) by (le))',
    )
    assert median is not None and 0.1 < median <= 0.25, median  # the bucket 0.25 s falls in


def test_the_metrics_ui_is_served(victoriametrics: PlatformConfig) -> None:
    ui = victoriametrics.victoriametrics_url + viewer.VMUI_PATH
    page = httpx.get(ui, timeout=5)
    assert page.status_code == 200
    assert "<title>vmui</title>" in page.text
    scripts = re.findall(r'src="\./(assets/[^"]+\.js)"', page.text)
    assert scripts, page.text  # the built UI, not a page without its code
    for script in scripts:
        code = httpx.get(ui + script, timeout=5)
        assert code.status_code == 200, script
        assert "javascript" in code.headers["content-type"], script


def test_the_journeys_dashboard_is_served_and_each_query_parses(
    victoriametrics: PlatformConfig,
) -> None:
    ui = victoriametrics.victoriametrics_url + viewer.VMUI_PATH
    boards = httpx.get(ui + "custom-dashboards", timeout=5).json()["dashboardsSettings"]
    assert [b["title"] for b in boards] == ["Golive: the order journey"]
    for row in boards[0]["rows"]:
        for panel in row["panels"]:
            for expr in panel["expr"]:
                answer = httpx.get(
                    f"{victoriametrics.victoriametrics_url}/api/v1/query_range",
                    params={"query": expr, "start": "-5m", "step": "15s"},
                    timeout=5,
                )
                assert answer.status_code == 200, (panel["title"], answer.text)


def test_the_binary_is_cached_outside_git(victoriametrics: PlatformConfig) -> None:
    binary = viewer.vm_binary(victoriametrics)
    assert binary.is_file()
    assert not binary.resolve().is_relative_to(Path(__file__).resolve().parents[2])


def _trace(config: PlatformConfig, trace_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{config.zipkin_url}/api/v2/trace/{trace_id}", timeout=5)
    return list(answer.json()) if answer.status_code == 200 else []


def test_a_services_spans_arrive_as_one_parented_trace(zipkin: PlatformConfig) -> None:
    trace_id = run_python(_SERVICE, viewer.exporting(zipkin)).strip()

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
