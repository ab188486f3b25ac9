"""Datadog as code, checked offline (golive_cli.datadog): the committed definitions load into
the API client's models and name only what the services emit."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from golive_cli import datadog
from golive_cli.main import app
from golive_contracts.metrics import METRICS
from golive_platform.config import PlatformConfig
from typer.testing import CliRunner

pytestmark = pytest.mark.unit

FOLDER = PlatformConfig().root / "infra" / "datadog"
COMMITTED = datadog.load(FOLDER)


def test_the_committed_definitions_are_valid_and_cover_what_the_issue_names() -> None:
    assert datadog.problems(COMMITTED) == []
    queries = json.dumps([COMMITTED.monitors, COMMITTED.dashboards])
    for name in (
        "golive.consumer.lag",
        "golive.records.dead_lettered",
        "golive.order.journey.duration",
        "golive.http.requests",
        "golive.service.ready",
        "golive.payment.decisions",  # the release route: which version decides
    ):
        assert name in queries, name
    assert {s["type"] for s in COMMITTED.slos} == {"metric", "time_slice"}


def _with(change: str, monitor: int = 0) -> datadog.Definitions:
    broken = copy.deepcopy(COMMITTED)
    broken.monitors[monitor]["query"] = change
    return broken


def test_a_monitor_on_a_metric_no_service_emits_fails_the_check() -> None:
    found = datadog.problems(_with("avg(last_5m):avg:golive.orders.lost{*} > 0"))
    assert found == [
        "monitors.json 'Golive: consumer lag of {{group.name}} ({{env.name}})': metric "
        "golive.orders.lost is not one the services emit (golive_contracts.metrics)"
    ]


def test_a_tag_the_metric_does_not_carry_fails_the_check() -> None:
    found = datadog.problems(_with("max(last_5m):max:golive.consumer.lag{*} by {slot} > 10"))
    assert len(found) == 1 and "golive.consumer.lag has no tag 'slot'" in found[0]
    # Unified service tags are on every metric.
    assert (
        datadog.problems(_with("max(last_5m):max:golive.consumer.lag{env:prod} by {service} > 10"))
        == []
    )


def test_what_the_api_s_models_refuse_is_named() -> None:
    broken = copy.deepcopy(COMMITTED)
    broken.monitors[0]["type"] = "metric alertz"
    broken.dashboards[0]["widgets"][0]["definition"]["requests"][0]["colour"] = "red"
    found = datadog.problems(broken)
    assert any(".type: 'metric alertz' not a valid MonitorType" in p for p in found), found
    assert any("requests[0].colour: no such field of TimeseriesWidgetRequest" in p for p in found)


def test_every_emitted_metric_is_on_the_dashboard_or_a_monitor() -> None:
    shown = json.dumps([COMMITTED.dashboards, COMMITTED.monitors, COMMITTED.slos])
    assert [m.name for m in METRICS if m.name not in shown] == []


def test_the_cli_names_the_line_of_a_file_that_is_not_json(tmp_path: Path) -> None:
    folder = tmp_path / "datadog"
    shutil.copytree(FOLDER, folder)
    (folder / "monitors.json").write_text('[\n  {"name": "x",\n  oops\n]\n')
    done = CliRunner().invoke(app, ["datadog", "check", "--folder", str(folder)])
    assert done.exit_code == 1
    assert f"{folder / 'monitors.json'}:3: not JSON" in done.output
    ok = CliRunner().invoke(app, ["datadog", "check"])
    assert ok.exit_code == 0 and "1 dashboard(s), 5 monitor(s), 2 SLO(s)" in ok.output
    dry = CliRunner().invoke(app, ["datadog", "apply"], env={"DD_API_KEY": "", "DD_APP_KEY": ""})
    assert dry.exit_code == 0 and "dry run (no DD_API_KEY and DD_APP_KEY)" in dry.output
