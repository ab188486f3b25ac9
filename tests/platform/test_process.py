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
