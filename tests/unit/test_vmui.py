"""The local metrics viewer's dashboards (infra/local/vmui) name only what the services emit:
catalogue metrics, a histogram's series only for a distribution, and labels they carry."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from golive_contracts.metrics import METRICS, Kind
from golive_platform import viewer
from golive_platform.config import PlatformConfig

pytestmark = pytest.mark.unit

BY_NAME = {m.name: m for m in METRICS}
HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")
# Labels every series carries besides its metric's tags (the OTLP resource), and a bucket's.
RESOURCE_LABELS = {"service.name", "service.version"}


def _panels() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(viewer.dashboards(PlatformConfig()).glob("*.json")):
        board = json.loads(path.read_text())
        for row in board["rows"]:
            found.extend((path.name, panel) for panel in row["panels"])
    return found


def _metric(series: str) -> tuple[str, str]:
    for suffix in HISTOGRAM_SERIES:
        if series.endswith(suffix):
            return series.removesuffix(suffix), suffix
    return series, ""


def test_there_is_a_dashboard_and_every_panel_has_a_query() -> None:
    panels = _panels()
    assert panels
    assert all(panel["title"] and panel["expr"] for _, panel in panels)


def _problems(panel: dict[str, Any]) -> list[str]:
    """What in a panel's queries no service emits: an unknown metric, a histogram's series of
    no histogram, a histogram by its bare name, a label its metrics do not carry."""
    found: list[str] = []
    for expr in panel["expr"]:
        names = re.findall(r'__name__="([^"]+)"', expr)
        if not names:
            found.append(f"no metric named in {expr}")
        labels = set(RESOURCE_LABELS)
        for series in names:
            name, suffix = _metric(series)
            metric = BY_NAME.get(name)
            if metric is None:
                found.append(f"{name} is no catalogue metric")
                continue
            if suffix and metric.kind is not Kind.DISTRIBUTION:
                found.append(f"{series}: {name} is no histogram")
            if not suffix and metric.kind is Kind.DISTRIBUTION:
                found.append(f"{name} is a histogram: name its _bucket, _count or _sum")
            if suffix == "_bucket":
                labels.add("le")
            labels.update(metric.tags)
        for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            used = {label.strip() for label in grouping.split(",")}
            found.extend(f"no label {label} on {names}" for label in sorted(used - labels))
    return found


@pytest.mark.parametrize(
    ("board", "panel"), _panels(), ids=lambda p: p["title"] if isinstance(p, dict) else p
)
def test_each_panel_names_catalogue_metrics_and_their_labels(
    board: str, panel: dict[str, Any]
) -> None:
    assert _problems(panel) == [], (board, panel["title"])


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ('sum({__name__="golive.orders.placed"})', "golive.orders.placed is no catalogue metric"),
        ('sum({__name__="golive.consumer.lag_bucket"})', "golive.consumer.lag is no histogram"),
        ('sum({__name__="golive.order.journey.duration"})', "is a histogram"),
        ('sum({__name__="golive.consumer.lag"}) by (route)', "no label route"),
        ('sum by(route) ({__name__="golive.consumer.lag"})', "no label route"),
    ],
)
def test_a_query_on_what_no_service_emits_is_named(expr: str, problem: str) -> None:
    (found,) = _problems({"title": "t", "expr": [expr]})
    assert problem in found
