"""Stopping a component (golive_platform.process.stop), as `make down` does: the component's
process is not a child of the `golive` that stops it, so once it exits it waits, a zombie, for
whatever reaps orphans. Where that is slow (PID 1 not an init: 2 s a process), waiting for the
reaping made `make down` take 17 s. A component that has exited is stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest
from golive_platform import process
from golive_platform.errors import PlatformError

from tests.helpers import eventually

MARKER = "golive-test-component"
# A parent that starts the component in a session of its own, says its pid, and never reaps it.
NEGLECTFUL_PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", sys.argv[1]],
                         start_new_session=True)
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.fixture
def parent() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", NEGLECTFUL_PARENT, MARKER], stdout=subprocess.PIPE, text=True
    )
    yield proc
    proc.kill()
    proc.wait(10)


def test_a_component_that_exited_is_stopped_though_nobody_reaped_it(
    parent: subprocess.Popen[str], tmp_path: Path
) -> None:
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    eventually(lambda: MARKER in " ".join(psutil.Process(pid).cmdline()), 10, "the component")
    running = process.Running("component", pid, MARKER, str(tmp_path / "component.log"))
    process.pid_file(tmp_path, "component").write_text(json.dumps(asdict(running)))

    assert process.stop(tmp_path, "component", timeout_s=5) is True
    assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # exited, not reaped: not ours
    assert not process.pid_file(tmp_path, "component").exists()
    assert process.read(tmp_path, "component") is None


# -- starting: the record recognises its process as soon as start returns ---------------------


def _launch(tmp_path: Path, argv: list[str], marker: str = MARKER) -> process.Launch:
    return process.Launch("component", argv, tmp_path / "component.log", marker)


def test_a_started_component_is_recognised_though_its_marker_shows_late(tmp_path: Path) -> None:
    """The exec's window, widened: the marker appears only once the shell has slept and exec'd
    the program that carries it. Right after the start a wipe or a readiness loop asks whether
    the component runs; it must not be told that it ended."""
    (tmp_path / "marker").write_text(MARKER)
    program = f'"{sys.executable}" -c "import time; time.sleep(60)"'
    late = f'sleep 0.5; exec {program} "$(cat "{tmp_path / "marker"}")"'
    running, proc = process.start(tmp_path, _launch(tmp_path, ["sh", "-c", late]))
    try:
        assert MARKER not in late
        assert running.alive
    finally:
        proc.kill()
        proc.wait(10)


def test_a_component_that_ends_at_once_is_left_to_its_readiness_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "RECOGNISED_WITHIN_S", 5.0)
    running, proc = process.start(tmp_path, _launch(tmp_path, ["sh", "-c", "exit 3"]))
    assert proc.returncode == 3
    assert not running.alive


def test_a_component_that_never_shows_its_marker_is_killed_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "RECOGNISED_WITHIN_S", 1.0)
    launch = _launch(tmp_path, ["sleep", "60"], marker="not-in-its-command-line")
    with pytest.raises(PlatformError, match="does not carry its marker 'not-in-its-command-line'"):
        process.start(tmp_path, launch)
    record = process.read(tmp_path, "component")
    assert record is not None
    assert not psutil.pid_exists(record.pid)  # killed and reaped
