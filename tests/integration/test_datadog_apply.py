"""`golive datadog apply` through the real datadog-api-client, against a stand-in for Datadog's
API (tests/datadog_api.py): everything created once, nothing changed on a second run, a changed
monitor updated, the keys sent as Datadog wants them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from golive_cli.main import app
from golive_platform.config import PlatformConfig
from typer.testing import CliRunner

from tests.datadog_api import serving

pytestmark = pytest.mark.integration


def _apply(host: str, folder: Path) -> str:
    argv = ["datadog", "apply", "--host", host, "--folder", str(folder)]
    done = CliRunner().invoke(app, argv, env={"DD_API_KEY": "api-k", "DD_APP_KEY": "app-k"})
    assert done.exit_code == 0, done.output
    return done.output.splitlines()[-1]


def test_apply_creates_once_then_changes_only_what_differs(tmp_path: Path) -> None:
    folder = tmp_path / "datadog"
    shutil.copytree(PlatformConfig().root / "infra" / "datadog", folder)
    with serving() as (api, host):
        assert _apply(host, folder) == "1 created, 0 updated, 0 unchanged".replace(
            "1 created", "8 created"
        )
        assert _apply(host, folder) == "0 created, 0 updated, 8 unchanged"
        monitors = json.loads((folder / "monitors.json").read_text())
        monitors[0]["options"]["thresholds"]["critical"] = 5000
        monitors[0]["query"] = monitors[0]["query"].replace("> 1000", "> 5000")
        (folder / "monitors.json").write_text(json.dumps(monitors))
        assert _apply(host, folder) == "0 created, 1 updated, 7 unchanged"
    # What reached the API: the declared monitor as it is in the file, with both keys.
    posted = [b for method, path, _, b in api.requests if method == "POST" and "monitor" in path]
    assert posted[0]["name"] == monitors[0]["name"]
    assert posted[0]["tags"] == ["managed-by:golive", "team:golive"]
    assert {tuple(keys.values()) for _, _, keys, _ in api.requests} == {("api-k", "app-k")}
    (updated,) = [b for method, path, _, b in api.requests if method == "PUT" and "monitor" in path]
    assert updated["query"].endswith("> 5000")
