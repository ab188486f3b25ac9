"""Bad input to the recorder's commands: one clear line naming what is wrong, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from golive_cli.main import app
from typer.testing import CliRunner

pytestmark = pytest.mark.unit

WINDOW = ["--from", "2026-11-24T10:00:00Z", "--to", "2026-11-24T10:05:00Z"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["capture", *WINDOW, "--out", "x.gz"], "no desensitisation key: set GOLIVE_CAPTURE_KEY"),
        (["capture", "--from", "2026-11-24T10:00:00Z", "--to", "2026-11-24T09:00:00Z",
          "--out", "x.gz", "--dev-key"], "ends"),
        (["capture", "--from", "yesterday", "--to", "2026-11-24T09:00:00Z", "--out", "x.gz"],
         "--from 'yesterday' is not an ISO 8601 time"),
        (["capture", "--from", "2026-11-24T10:00:00", "--to", "2026-11-24T11:00:00Z",
          "--out", "x.gz"], "has no time zone"),
        (["capture", *WINDOW, "--out", "x.gz", "--raw", "--dev-key"], "contradict"),
        (["replay", "missing.gz", "--to", "127.0.0.1:1"], "missing.gz: no such file"),
        (["replay", "missing.gz", "--to", "127.0.0.1:1", "--speed", "fast"], "speed 'fast'"),
        (["replay", "missing.gz", "--to", "127.0.0.1:1", "--topic-map", "orders"], "source=target"),
        (["regress", "missing.gz"], "missing.gz: no such file"),
        (["inspect", *WINDOW, "--source", "s3"], "--source 's3'"),
        (["dlq", "redrive", "--topic", "orders", "--group", "payments"],
         "no consumer group 'payments': one of order-projector, payment-router, payment-blue,"),
        (["dlq", "redrive", "--topic", "orders", "--group", "audit"], "no dead letters"),
    ],
)  # fmt: skip
def test_bad_input_is_named(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GOLIVE_CAPTURE_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert message in result.output


def test_a_file_that_is_not_a_capture_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    result = CliRunner().invoke(app, ["replay", str(bogus), "--to", "127.0.0.1:1"])
    assert result.exit_code == 1
    assert "not a complete gzip'd capture file" in result.output
