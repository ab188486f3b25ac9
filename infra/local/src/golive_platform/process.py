"""Starting, finding and stopping the platform's background processes by pid file."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from golive_platform.errors import PlatformError

POLL_S = 0.2
RECOGNISED_WITHIN_S = 10.0
SERVICE_MARKER = "GOLIVE_SERVICE"


@dataclass(frozen=True)
class Launch:
    """How to start one process: argv, environment, where it logs, and whom it runs as."""

    name: str
    argv: Sequence[str]
    log: Path
    marker: str  # a string unique to this instance in its command line (guards against pid reuse)
    env: dict[str, str] | None = None
    cwd: Path | None = None
    user: int | None = None
    group: int | None = None


@dataclass(frozen=True)
class Running:
    name: str
    pid: int
    marker: str
    log: str

    def process(self) -> psutil.Process | None:
        """The live process this record names, or None if it ended (or the pid was reused)."""
        try:
            proc = psutil.Process(self.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            # Java and PostgreSQL carry the marker in their command line; Python services in their env.
            if (
                self.marker in " ".join(proc.cmdline())
                or proc.environ().get(SERVICE_MARKER) == self.marker
            ):
                return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        return None

    @property
    def alive(self) -> bool:
        return self.process() is not None


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.json"


def read(run_dir: Path, name: str) -> Running | None:
    path = pid_file(run_dir, name)
    try:
        return Running(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def start(run_dir: Path, launch: Launch) -> tuple[Running, subprocess.Popen[bytes]]:
    """Start a process in its own session (Ctrl-C on the terminal is ours to handle), logging to a file."""
    launch.log.parent.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    with launch.log.open("ab") as log:
        proc = subprocess.Popen(
            list(launch.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(launch.env or {})},
            cwd=launch.cwd,
            start_new_session=True,
            user=launch.user,
            group=launch.group,
            extra_groups=[] if launch.user is not None else None,
        )
    running = Running(launch.name, proc.pid, launch.marker, str(launch.log))
    pid_file(run_dir, launch.name).write_text(json.dumps(asdict(running)))
    _wait_recognisable(running, proc, RECOGNISED_WITHIN_S)
    return running, proc


def _wait_recognisable(running: Running, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait until `running` recognises its process, or the process has ended. Popen returns once
    the exec has begun, not once it has finished: for a moment the new program's command line
    and environment read empty, so a check right after the start (a wipe's "still running", a
    readiness loop's "exited before it was ready") took a live process for a dead one. A process
    that never shows its marker could never be found again: it is killed and named."""
    deadline = time.monotonic() + timeout_s
    while not running.alive and proc.poll() is None:
        if time.monotonic() >= deadline:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout_s)
            raise PlatformError(
                f"{running.name} does not carry its marker {running.marker!r} in its command"
                f" line or ${SERVICE_MARKER} within {timeout_s:g}s"
            )
        time.sleep(0.001)  # the polling interval of a deadline-bounded wait: an exec's moment


def stop(run_dir: Path, name: str, timeout_s: float) -> bool:
    """SIGTERM the process group, wait, then SIGKILL. True if something was running."""
    running = read(run_dir, name)
    if running is None:
        return False
    proc = running.process()
    was_alive = proc is not None
    if proc is not None:
        _signal_group(proc.pid, signal.SIGTERM)
        if not _ended(proc, timeout_s):
            _signal_group(proc.pid, signal.SIGKILL)
            if not _ended(proc, timeout_s):
                raise psutil.TimeoutExpired(timeout_s, proc.pid, name)
    pid_file(run_dir, name).unlink(missing_ok=True)
    return was_alive


def _ended(proc: psutil.Process, timeout_s: float) -> bool:
    """Whether `proc` ended within `timeout_s`. A process that has exited is ended even while it
    waits, a zombie, for its parent to reap it: `make up`'s services belong to whatever reaps
    orphans, which may take its time (2 s a process where PID 1 is not an init; psutil's wait,
    which waits for the reaping, made `make down` take 17 s). One of ours is reaped here.
    Not Running.process(): an exiting process's command line empties before its files (its
    ports) are closed, so its marker check would call it gone too soon; a zombie has closed
    them."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(proc.pid, os.WNOHANG)
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)  # the polling interval of a deadline-bounded wait


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def log_tail(path: Path | str, lines: int = 20) -> str:
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(
    running: Running, probe: Callable[[], bool], timeout_s: float, log: Path | None = None
) -> float:
    """Poll `probe` until it answers True; fail with the log tail if the process dies or time runs out."""
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        if probe():
            return time.monotonic() - started
        if not running.alive:
            raise PlatformError(
                f"{running.name} exited before it was ready", detail=_tails(running, log)
            )
        if time.monotonic() > deadline:
            raise PlatformError(
                f"{running.name} did not become ready within {timeout_s:g}s",
                detail=_tails(running, log),
            )
        time.sleep(POLL_S)  # polling interval of a deadline-bounded readiness loop


def _tails(running: Running, log: Path | None) -> str:
    """The component's own log, then its stdout (where a JVM that fails to start writes)."""
    parts = [
        f"==> {path} <==\n{tail}"
        for path in (log, running.log)
        if path and (tail := log_tail(path))
    ]
    return "\n".join(parts)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


_HANDED_OUT: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, outside the kernel's ephemeral range (32768+), where client connections
    (Kafka clients open many) would otherwise take it before the server we start binds it.
    Never one this process handed out before: ports picked for one configuration are bound
    only later, so a second pick could name a port the first is about to take (a registry and
    a payment service on one port, seen in CI)."""
    for _ in range(200):
        port = random.randint(20000, 32000)  # noqa: S311 (a port, not a secret)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            _HANDED_OUT.add(port)
            return port
    raise PlatformError("no free port between 20000 and 32000")
