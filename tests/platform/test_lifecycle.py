"""`make run`/`up`/`down`/`status` on an instance of their own, and each failure mode's one-line cause."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import psycopg
import pytest
from golive_contracts.scopes import Scope
from golive_contracts.topology import Names
from golive_eventing import clients
from golive_platform import process
from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError
from golive_platform.platform import Platform
from golive_platform.testing import Cluster, config_env, suite_config

from tests.factories import order_request
from tests.helpers import Topics, create_topic, eventually, free_port, service_ports
from tests.reliability.harness import Clients, Outcome, outcome

pytestmark = pytest.mark.slow


def _isolated(tmp_path: Path, **overrides: object) -> PlatformConfig:
    ports = {
        name: free_port()
        for name in (
            "kafka_port",
            "kafka_controller_port",
            "registry_port",
            "registry_management_port",
            "postgres_port",
        )
    }
    ports |= service_ports()
    return suite_config(data_dir=tmp_path / "platform", **{**ports, **overrides})


def golive(config: PlatformConfig, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "golive_cli", *args],
        env={**os.environ, **config_env(config), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _fails_with(done: subprocess.CompletedProcess[str], cause: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    first_line = done.stderr.splitlines()[0]
    assert first_line.startswith("error: ")
    assert cause in first_line, done.stderr


def test_a_wipe_leaves_fresh_data_and_never_pulls_it_from_under_a_running_part(
    tmp_path: Path,
) -> None:
    config = _isolated(tmp_path)
    platform = Platform(config)
    left = config.data_dir / "kafka" / "data" / "orders-0"
    left.mkdir(parents=True)
    (config.data_dir / "token-keys.json").write_text("{}")
    marker = f"wipe-test-{os.getpid()}"
    launch = process.Launch(
        "kafka",
        [sys.executable, "-c", "import time; time.sleep(60)", marker],
        config.data_dir / "kafka.log",
        marker,
    )
    _, running = process.start(config.run_dir, launch)
    try:
        with pytest.raises(PlatformError, match="kafka still running"):
            platform.wipe()
        assert left.is_dir()
    finally:
        running.kill()
        running.wait(10)
    platform.wipe()
    assert [p.name for p in config.data_dir.iterdir()] == [config.run_dir.name]


# -- failure modes: one line naming the cause, exit 1, nothing left running --------------------


def test_java_missing(tmp_path: Path) -> None:
    config = _isolated(tmp_path)
    done = golive(config, "platform", "up", GOLIVE_JAVA_HOME=str(tmp_path / "no-jdk"))
    _fails_with(done, "Java not found in GOLIVE_JAVA_HOME: Kafka")
    assert "needs Java 17 or newer" in done.stderr


def test_java_older_than_17(tmp_path: Path) -> None:
    fake = tmp_path / "jdk11" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    fake.chmod(0o755)
    done = golive(_isolated(tmp_path), "platform", "up", GOLIVE_JAVA_HOME=str(fake.parent.parent))
    _fails_with(done, "needs Java 17 or newer; found only Java 11")


def test_port_already_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = golive(_isolated(tmp_path, registry_port=port), "platform", "up")
    _fails_with(done, f"port {port} (registry) is already in use")


def test_unresolvable_artifact_is_named(tmp_path: Path) -> None:
    config = _isolated(tmp_path, cache_dir=tmp_path / "cache", kafka_version="0.0.404")
    done = golive(config, "platform", "up")
    _fails_with(done, "cannot resolve artifact org.apache.kafka:kafka_2.13:jar:0.0.404")


def test_component_that_dies_shows_its_log_tail(tmp_path: Path) -> None:
    config = _isolated(tmp_path, kafka_heap="1k")
    done = golive(config, "platform", "up")
    _fails_with(done, "kafka exited before it was ready")
    assert "heap" in done.stderr.lower()  # the JVM's own words, from the log tail
    assert golive(config, "platform", "status").returncode == 1


def test_component_that_is_not_ready_in_time_shows_its_log_tail(tmp_path: Path) -> None:
    config = _isolated(tmp_path, ready_timeout_s=0.5)
    done = golive(config, "platform", "up")
    _fails_with(done, "kafka did not become ready within 0.5s")
    assert "==> " in done.stderr
    status = golive(config, "platform", "status")
    assert status.returncode == 1
    assert "down" in status.stdout  # what up started, it stopped again


# -- the foreground run, already-up, restarts keeping data ------------------------------------


@pytest.fixture
def running(
    tmp_path: Path,
) -> Iterator[tuple[PlatformConfig, subprocess.Popen[str], queue.Queue[str]]]:
    config = _isolated(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "golive_cli", "platform", "run"],
        env={**os.environ, **config_env(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    yield config, proc, lines
    if proc.poll() is None:
        proc.kill()
    golive(config, "platform", "down")


def _kill_and_see_it_back(
    config: PlatformConfig,
    proc: subprocess.Popen[str],
    lines: queue.Queue[str],
    name: str,
    log: str,
    pause: str = "1",
) -> None:
    running = process.read(config.run_dir, name)
    assert running is not None
    os.kill(running.pid, signal.SIGKILL)
    # Its own line, not an earlier death's (a processor may have exited on its own before).
    told = _read_until(lines, f"{name} was killed by SIGKILL", timeout_s=60, proc=proc)
    told += _read_until(lines, f"{name} is back", timeout_s=150, proc=proc)
    said = re.search(
        rf"{re.escape(name)} was killed by SIGKILL; restarting it in ({pause}) s", told
    )
    assert said, told
    assert f"The end of {config.data_dir}" in told and log in told, told
    eventually(
        lambda: golive(config, "platform", "status").returncode == 0,
        120,
        f"every part ready again after {name} was killed",
        every_s=1.0,
    )


def _all_ended(config: PlatformConfig, orders: set[str]) -> Outcome | None:
    """What make run's own topics hold, once each of `orders` has ended."""
    found = outcome(Cluster("local", config.connection(), None), Topics(Names()))
    return found if all(found.terminal[o] for o in orders) else None


def _more(load: Clients, count: int) -> bool:
    return len(load.accepted()) >= count


@pytest.mark.stress
def test_under_load_the_supervisor_brings_back_whatever_is_killed_and_every_order_ends_once(
    running: tuple[PlatformConfig, subprocess.Popen[str], queue.Queue[str]],
) -> None:
    """kill -9 of the broker, then of each service, under `make run` while orders come in: each
    is started again by itself, the others ride it out, and every order the API accepted ends
    exactly once. Under make stress-outage: a broker's restart costs minutes of make test."""
    config, proc, lines = running
    _read_until(lines, "a part that dies is restarted.", timeout_s=180, proc=proc)
    placing = config.issuer().headers(Scope.PLACE_ORDERS)
    with Clients(f"http://127.0.0.1:{config.order_port}", placing) as load:
        eventually(partial(_more, load, 20), 60, "20 orders accepted")
        for name, log in (
            ("kafka", "server.log"),
            ("payment", "payment.log"),
            ("payment-blue", "payment-blue.log"),
            ("order-pm", "order-pm.log"),
            ("order", "order.log"),
            ("audit", "audit.log"),
        ):
            before = len(load.accepted())
            # Any pause: a processor whose transaction the broker's kill timed out is fenced
            # and exits (crash-only), so its own restart comes first and this one waits 2 s.
            _kill_and_see_it_back(config, proc, lines, name, log, pause=r"\d+")
            eventually(partial(_more, load, before + 10), 60, f"orders accepted after {name}")
            # Calm before the next kill: every order accepted so far has ended, so the
            # processors are past what this kill disturbed (a fencing, a restore).
            eventually(
                partial(_all_ended, config, set(load.accepted())),
                120,
                f"the orders accepted until {name} was back to end",
                every_s=2.0,
            )
    accepted = load.accepted()
    assert len(set(accepted)) == len(accepted)  # one order per key
    found = eventually(
        partial(_all_ended, config, set(accepted)), 120, "every accepted order to end", every_s=2.0
    )
    assert [o for o in accepted if found.terminal[o] != 1] == [], "an order ended twice"
    assert [o for o in accepted if found.payments[o] != 1] == [], "not exactly one payment"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=90) == 0


def _read_until(
    lines: queue.Queue[str],
    marker: str,
    timeout_s: float,
    proc: subprocess.Popen[str] | None = None,
) -> str:
    """Lines until `marker`; on a deadline or the process ending first, fail showing what it said."""
    seen = ""
    deadline = time.monotonic() + timeout_s
    while marker not in seen:
        try:
            seen += lines.get(timeout=1.0)
        except queue.Empty:
            ended = proc is not None and proc.poll() is not None and lines.empty()
            if ended or time.monotonic() > deadline:
                code = proc.poll() if proc is not None else None
                raise AssertionError(
                    f"no {marker!r} (exit code {code}); the output was:\n{seen}"
                ) from None
    return seen


def test_run_until_ctrl_c_then_up_on_postgresql_keeps_the_data(
    running: tuple[PlatformConfig, subprocess.Popen[str], queue.Queue[str]], unique: str
) -> None:
    """One instance for both (each start costs ~40 s here): `run` on SQLite until Ctrl-C, then
    `up --postgres` on the same data dir, which keeps Kafka's data and gives each service its own
    PostgreSQL database."""
    config, proc, lines = running
    banner = _read_until(lines, "a part that dies is restarted.", timeout_s=180, proc=proc)
    assert config.bootstrap_servers in banner
    assert config.registry_url in banner
    assert "credentials.json" in banner  # where the SASL logins live
    assert "token-keys.json" in banner and "golive token" in banner  # and the API tokens

    # The supervisor: a part killed is started again, saying how it died and what it logged
    # (under load, the broker and every service: test_under_load_..., under stress-outage).
    _kill_and_see_it_back(config, proc, lines, "payment", "payment.log")

    pids_before = golive(config, "platform", "status").stdout
    again = golive(config, "platform", "up")
    _fails_with(again, "already up")
    status = golive(config, "platform", "status")
    assert status.stdout == pids_before  # the second up started nothing
    assert status.returncode == 0, status.stdout
    assert [line.split()[:2] for line in status.stdout.splitlines()] == [
        ["kafka", "ready"],
        ["registry", "ready"],
        ["order", "ready"],
        ["order-pm", "ready"],
        ["payment", "ready"],
        ["payment-blue", "ready"],
        ["payment-green", "ready"],
        ["audit", "ready"],
    ]
    admin = clients.admin(config.connection())
    assert {"orders", "payments", config.registry_journal_topic} <= set(
        admin.list_topics(timeout=10).topics
    )
    kept = f"test.kept.{unique}"
    create_topic(config.connection(), kept)
    cluster_id = (config.data_dir / "kafka" / "data" / "meta.properties").read_text()
    logs = golive(config, "platform", "logs", "-n", "3")
    assert logs.returncode == 0
    assert "server.log <==" in logs.stdout
    assert "registry.log <==" in logs.stdout

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=90) == 0
    tail = _read_until(lines, "stopped:", timeout_s=5)
    assert (
        "stopped: audit, payment-green, payment-blue, payment, order-pm, order, registry, kafka"
        in tail
    )
    assert golive(config, "platform", "status").returncode == 1

    restarted = golive(config, "platform", "up", "--postgres")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert (config.data_dir / "kafka" / "data" / "meta.properties").read_text() == cluster_id
    assert kept in clients.admin(config.connection()).list_topics(timeout=10).topics
    _runs_on_postgresql(config)
    down = golive(config, "platform", "down")
    assert (
        "stopped: audit, payment-green, payment-blue, payment, order-pm, order, registry, postgres, kafka"
        in down.stdout
    )
    assert golive(config, "platform", "clean").returncode == 0
    assert not config.data_dir.exists()


def _runs_on_postgresql(config: PlatformConfig) -> None:
    status = golive(config, "platform", "status")
    assert [line.split()[:2] for line in status.stdout.splitlines()] == [
        ["kafka", "ready"],
        ["postgres", "ready"],
        ["registry", "ready"],
        ["order", "ready"],
        ["order-pm", "ready"],
        ["payment", "ready"],
        ["payment-blue", "ready"],
        ["payment-green", "ready"],
        ["audit", "ready"],
    ]
    with psycopg.connect(config.postgres_url) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert {"golive_order", "golive_payment", "golive_audit"} <= names

    order_url = f"http://127.0.0.1:{config.order_port}"
    token = config.issuer().headers(Scope.PLACE_ORDERS, Scope.READ_ORDERS)
    placed = httpx.post(
        f"{order_url}/orders",
        json=order_request(),
        headers={**token, "Idempotency-Key": "pg-1"},
    )
    assert placed.status_code == 202
    order_id = placed.json()["order_id"]
    eventually(
        lambda: (
            httpx.get(f"{order_url}/orders/{order_id}", headers=token).json()["status"]
            == "CONFIRMED"
        ),
        30,
        "the order to be confirmed on PostgreSQL",
    )
    with psycopg.connect(
        f"postgresql://golive@127.0.0.1:{config.postgres_port}/golive_order"
    ) as conn:
        row = conn.execute("SELECT status FROM orders WHERE order_id = %s", (order_id,)).fetchone()
    assert row == ("CONFIRMED",)


def test_free_ports_picked_for_one_configuration_are_all_different() -> None:
    """Picked ports are bound only later, when the processes start: two picks naming the same
    port put two of them on it (a registry and payment, once in CI)."""
    picked = [free_port() for _ in range(3000)]
    assert len(set(picked)) == len(picked)
