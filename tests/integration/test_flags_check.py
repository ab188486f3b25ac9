"""`golive flags check`: the committed flags file against flagd's own schema (fetched from the Go
module proxy, pinned by SHA-256) and the declared flags; what CI's schema-gate stage runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golive_cli.main import app
from golive_platform.config import PlatformConfig
from typer.testing import CliRunner

pytestmark = pytest.mark.integration


def _check(path: Path | None = None) -> tuple[int, str]:
    done = CliRunner().invoke(app, ["flags", "check", *([str(path)] if path else [])])
    return done.exit_code, done.output


def test_the_committed_flags_file_is_valid() -> None:
    code, said = _check()
    assert code == 0, said
    assert "valid" in said


def test_a_targeting_rule_flagd_cannot_read_fails_naming_its_line(tmp_path: Path) -> None:
    document = json.loads(PlatformConfig().flags_source.read_text())
    flag = document["flags"]["orders-open"]
    flag["targeting"] = {"fractional": "everyone"}
    path = tmp_path / "flags.json"
    text = json.dumps(document, indent=2)
    path.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"targeting"' in row)
    code, said = _check(path)
    assert code == 1
    assert f"{path}:{line}: flagd's schema:" in said


def test_a_declared_flag_missing_from_the_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text('{\n  "flags": {}\n}\n')
    code, said = _check(path)
    assert code == 1
    assert f"{path}:2: flag 'orders-open' is missing" in said
