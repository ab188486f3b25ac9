"""The local platform as one unit: up, down, status, run in the foreground."""

from __future__ import annotations

import fcntl
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
from golive_contracts.access import Grant, grants, resources, scope
from golive_contracts.topology import Names
from golive_eventing.exits import EXIT_CONFIG

from golive_platform import acls, credentials, process
from golive_platform.artifacts import fetch
from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError
from golive_platform.java import find_java
from golive_platform.kafka import (
    MINIMUM_JAVA,
    KafkaNode,
    admin_client,
    ensure_users,
    metadata_ready,
    server_log,
)
from golive_platform.postgres import PostgresNode, database_ready
from golive_platform.registry import RegistryNode, registry_ready
from golive_platform.registry import grants as registry_grants
from golive_platform.services import ServiceSpec
from golive_platform.topics import apply, load_catalogue, resolve
from golive_platform.viewer import (
    UI_PATH,
    VMUI_PATH,
    VictoriaMetricsNode,
    ZipkinNode,
    build_vm,
    metrics_ready,
    zipkin_ready,
)
from golive_platform.viewer import fetch as fetch_viewer

Echo = Callable[[str], None]
STOPPING = ".stopping"  # in the run dir: `make down` asked a foreground `make run` to end
FORGIVEN_AFTER_S = 60.0
MAX_BACKOFF_S = 30.0
# Stop order: consumers of a component go before it.
INFRA = ("kafka", "postgres", "registry", "zipkin", "victoriametrics")
VIEWERS = ("zipkin", "victoriametrics")


@dataclass
class Started:
    """What `up` started and how long each part took to become ready."""

    timings: dict[str, float] = field(default_factory=dict)
    topic_changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Status:
    name: str
    pid: int | None
    alive: bool
    ready: bool
    endpoint: str
    log: str


class Platform:
    def __init__(
        self,
        config: PlatformConfig,
        *,
        with_postgres: bool = False,
        echo: Echo = print,
        services: Sequence[ServiceSpec] = (),
        prepare: Callable[[PlatformConfig], None] | None = None,
    ) -> None:
        """`services` start after Kafka, the topics and the registry; `prepare` runs just before them."""
        self.config = config
        self.with_postgres = with_postgres
        self.echo = echo
        self.services = list(services)
        self.prepare = prepare
        # How each component this object started was started, to start it again (supervise).
        self._launches: dict[str, process.Launch] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- what is where ---------------------------------------------------------------------

    def endpoints(self) -> dict[str, str]:
        c = self.config
        found = {
            "kafka": c.bootstrap_servers,
            "registry": c.registry_url,
            "postgres": c.postgres_url,
            "zipkin": c.zipkin_url + UI_PATH,
            "victoriametrics": c.victoriametrics_url + VMUI_PATH,
        }
        found.update({s.name: s.url or "(no HTTP)" for s in self.services})
        return found

    def access(self) -> tuple[list[Grant], acls.Scope]:
        """The ACLs of this platform: the services' on the default names, the registry's."""
        names, registry = Names(), registry_grants(self.config)
        return [*grants(names), *registry], resources(names) | scope(registry)

    def probes(self) -> dict[str, Callable[[], bool]]:
        c = self.config
        found: dict[str, Callable[[], bool]] = {
            "kafka": lambda: metadata_ready(c.connection()),
            "registry": lambda: registry_ready(c),
            "postgres": lambda: database_ready(c),
            "zipkin": lambda: zipkin_ready(c),
            "victoriametrics": lambda: metrics_ready(c),
        }
        for spec in self.services:
            found[spec.name] = _http_probe(spec)
        return found

    def order(self) -> list[str]:
        """Start order; stop is its reverse."""
        return [*INFRA, *(s.name for s in self.services)]

    def running(self) -> dict[str, process.Running]:
        found = {}
        for name in self.order():
            record = process.read(self.config.run_dir, name)
            if record is not None and record.alive:
                found[name] = record
        return found

    def status(self) -> list[Status]:
        probes = self.probes()
        rows = []
        for name in self.order():
            record = process.read(self.config.run_dir, name)
            if record is None:
                continue
            alive = record.alive
            ready = alive and probes[name]()
            rows.append(Status(name, record.pid, alive, ready, self.endpoints()[name], record.log))
        return rows

    def log_files(self) -> list[Path]:
        """Every log a component of this data dir has written: its own log, then its stdout."""
        own = {"kafka": server_log(self.config)}
        found: list[Path] = []
        for name in self.order():
            record = process.read(self.config.run_dir, name)
            if record is not None:
                found.extend(p for p in (own.get(name), Path(record.log)) if p and p.exists())
        return list(dict.fromkeys(found))

    # -- lifecycle -------------------------------------------------------------------------

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """One `up`/`down` at a time per data dir (parallel test workers share an instance)."""
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.config.run_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def ensure_up(self, fresh: bool = False) -> bool:
        """Start the platform unless it already runs and answers. True if this call started it;
        `fresh`, on data of its own: what an earlier start left is removed first, if nothing of
        it runs (a part that runs but did not answer its probe in time is someone else's to
        stop: the start then fails, "already up", and wipes nothing)."""
        with self._lock():
            if self._all_ready():
                return False
            if fresh and not self.running():
                self._wipe_locked()
            self._up_locked()
            return True

    def wipe(self) -> None:
        """Remove what earlier starts left (data, logs, keys), for a start on fresh data; only
        when nothing of the instance runs."""
        with self._lock():
            still = sorted(self.running())
            if still:
                raise PlatformError(f"{', '.join(still)} still running in {self.config.data_dir}")
            self._wipe_locked()

    def _wipe_locked(self) -> None:
        for path in self.config.data_dir.iterdir():
            if path == self.config.run_dir:
                continue  # holds the lock this call holds
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def up(self) -> Started:
        with self._lock():
            return self._up_locked()

    def _all_ready(self) -> bool:
        running = self.running()
        wanted = [
            "kafka",
            "registry",
            *(["postgres"] if self.with_postgres else []),
            *(VIEWERS if self.config.viewers else ()),
        ]
        probes = self.probes()
        return all(name in running and probes[name]() for name in wanted)

    def _check_ports(self) -> None:
        ports = self.config.ports()
        if not self.with_postgres:
            ports.pop("postgres")
        if not self.config.viewers:
            for name in VIEWERS:
                ports.pop(name)
        for spec in self.services:
            if spec.port is not None:
                ports[spec.name] = spec.port
        for name, port in ports.items():
            if process.port_in_use(self.config.host, port):
                raise PlatformError(
                    f"port {port} ({name}) is already in use on {self.config.host}: "
                    f"stop what holds it or set GOLIVE_{name.upper().replace(' ', '_')}_PORT"
                )

    def _up_locked(self) -> Started:
        alive = self.running()
        if alive:
            pids = ", ".join(f"{name} pid {r.pid}" for name, r in alive.items())
            raise PlatformError(f"the platform is already up ({pids}); `make down` stops it")
        self._check_ports()
        c = self.config
        artifacts = fetch(c, echo=True)
        kafka = KafkaNode(c, artifacts.kafka_libs)
        registry = RegistryNode(c, artifacts)
        kafka_java = find_java(MINIMUM_JAVA, c.java_home, f"Kafka {c.kafka_version}")
        registry_java = find_java(
            registry.minimum_java(), c.java_home, f"Apicurio Registry {c.apicurio_version}"
        )
        postgres = PostgresNode(c) if self.with_postgres else None
        viewers = (
            [
                ZipkinNode(c, fetch_viewer(c)).launch(kafka_java),
                VictoriaMetricsNode(c, build_vm(c)).launch(),
            ]
            if c.viewers
            else []
        )
        specs = resolve(load_catalogue(c.topics_file), c.environment)

        result = Started()
        started: list[str] = []
        probes = self.probes()
        try:
            kafka.prepare(kafka_java)
            kafka_proc = self._start(kafka.launch(kafka_java), started)
            viewing = [self._start(launch, started) for launch in viewers]
            if postgres is not None:
                postgres.prepare()
                postgres_proc = self._start(postgres.launch(), started)
            result.timings["kafka"] = process.wait_ready(
                kafka_proc, probes["kafka"], c.ready_timeout_s, kafka.log
            )
            ensure_users(c)
            admin = admin_client(c.connection())
            report = apply(admin, specs)
            result.topic_changes = [str(change) for change in report.changed + report.unresolved]
            for change in report.unresolved:
                self.echo(f"warning: topics.yaml drift left in place: {change}")
            granted = acls.apply(admin, *self.access())
            for drift in granted.deleted:
                self.echo(f"ACL drift removed: {drift}")
            registry_proc = self._start(registry.launch(registry_java), started)
            result.timings["registry"] = process.wait_ready(
                registry_proc, probes["registry"], c.ready_timeout_s
            )
            if postgres is not None:
                result.timings["postgres"] = process.wait_ready(
                    postgres_proc, probes["postgres"], c.ready_timeout_s
                )
            for launch, running in zip(viewers, viewing, strict=True):
                result.timings[launch.name] = process.wait_ready(
                    running, probes[launch.name], c.ready_timeout_s, launch.log
                )
            self._start_services(result, started)
        except BaseException:
            for name in reversed(started):
                process.stop(c.run_dir, name, c.stop_timeout_s)
            raise
        return result

    def _start_services(self, result: Started, started: list[str]) -> None:
        c = self.config
        if self.prepare is not None and self.services:
            self.prepare(c)
        probes = self.probes()
        launched = []
        for spec in self.services:
            log = c.data_dir / "services" / f"{spec.name}.log"
            marker = f"GOLIVE_SERVICE={spec.name}@{c.data_dir}"
            env = {**spec.env, process.SERVICE_MARKER: marker}
            launch = process.Launch(spec.name, spec.argv, log, marker=marker, env=env)
            launched.append(self._start(launch, started))
        # Started together, probed together: they come up in parallel on two cores.
        for running in launched:
            result.timings[running.name] = process.wait_ready(
                running, probes[running.name], c.ready_timeout_s
            )

    def start_services(self) -> Started:
        """Start only the services, on infrastructure that is already up (tests, restarts)."""
        result = Started()
        started: list[str] = []
        with self._lock():
            try:
                self._start_services(result, started)
            except BaseException:
                for name in reversed(started):
                    process.stop(self.config.run_dir, name, self.config.stop_timeout_s)
                raise
        return result

    def stop_services(self) -> list[str]:
        with self._lock():
            return [
                s.name
                for s in reversed(self.services)
                if process.stop(self.config.run_dir, s.name, self.config.stop_timeout_s)
            ]

    def _start(self, launch: process.Launch, started: list[str]) -> process.Running:
        running, proc = process.start(self.config.run_dir, launch)
        started.append(launch.name)
        self._launches[launch.name], self._procs[launch.name] = launch, proc
        return running

    def down(self) -> list[str]:
        """Stop everything this data dir started, consumers first. Returns what was running.
        A `make run` in the foreground sees the request and ends too, restarting nothing."""
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        (self.config.run_dir / STOPPING).touch()
        with self._lock():
            stopped = []
            for name in reversed(self.order()):
                if process.stop(self.config.run_dir, name, self.config.stop_timeout_s):
                    stopped.append(name)
            return stopped

    def clean(self) -> list[str]:
        stopped = self.down()
        shutil.rmtree(self.config.data_dir, ignore_errors=True)
        return stopped

    def run_foreground(self) -> int:
        """`make run`: up, then wait for Ctrl-C (or a component dying), then stop everything."""
        stop = threading.Event()

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            del frame
            if not stop.is_set():  # the terminal and `uv run` may both deliver the same Ctrl-C
                self.echo(f"\n{signal.Signals(signum).name}: stopping")
            stop.set()

        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        code = 0
        try:
            (self.config.run_dir / STOPPING).unlink(missing_ok=True)
            started = self.up()
            self.echo(self.describe(started))
            self.echo("Ctrl-C (or make down) stops everything; a part that dies is restarted.")
            supervisor = Supervisor(self)
            while not stop.wait(1.0):
                if (self.config.run_dir / STOPPING).exists():
                    self.echo("make down: stopping")
                    break
                supervisor.check()
        finally:
            stopped = self.down()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return code

    def _died(self, name: str) -> bool:
        record = process.read(self.config.run_dir, name)
        return record is not None and not record.alive

    def own_log(self, name: str) -> Path | None:
        """Where a component writes what says why it stopped: Kafka's server.log (its stdout
        holds only JVM start-up failures), else its own log."""
        if name == "kafka":
            return server_log(self.config)
        record = process.read(self.config.run_dir, name)
        return Path(record.log) if record else None

    def restart(self, name: str) -> None:
        """Start a component again as it was started (its data kept), and wait until ready."""
        launch = self._launches[name]
        running, proc = process.start(self.config.run_dir, launch)
        self._procs[name] = proc
        process.wait_ready(
            running, self.probes()[name], self.config.ready_timeout_s, self.own_log(name)
        )

    def exit_code(self, name: str) -> int | None:
        proc = self._procs.get(name)
        return None if proc is None else proc.poll()

    def describe(self, started: Started | None = None) -> str:
        lines = ["golive platform is up:"]
        endpoints = self.endpoints()
        running = self.running()
        width = max([len(name) for name in running] + [len("API keys")])
        for name in running:
            took = (
                f"  (ready in {started.timings[name]:.1f}s)"
                if started and name in started.timings
                else ""
            )
            lines.append(f"  {name:<{width}} {endpoints[name]}{took}")
        lines.append(f"  {'data':<{width}} {self.config.data_dir}")
        lines.append(
            f"  {'logins':<{width}} {credentials.credentials_path(self.config.credentials_home)}"
            "  (SASL/SCRAM, one per service: docs/security.md)"
        )
        if self.services:
            lines.append(
                f"  {'API keys':<{width}} {self.config.issuer().jwks_path}  (tokens signed here; "
                "one for a scope: uv run golive token orders:write)"
            )
        lines.append(
            f"  {'logs':<{width}} make logs   |   status: make status   |   stop: make down"
        )
        return "\n".join(lines)


def _http_probe(spec: ServiceSpec) -> Callable[[], bool]:
    def probe() -> bool:
        if spec.url is None:
            return True
        try:
            return httpx.get(spec.url + spec.ready_path, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


@dataclass
class Supervisor:
    """`make run`'s keeper: a part that dies is started again after a pause that doubles with
    each death in a row (1 s up to 30 s; a part up for a minute is forgiven), with a line saying
    what died, how, and the end of its own log. The others ride it out: the services retry the
    broker and the registry, and the broker keeps what it acknowledged."""

    platform: Platform
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    deaths: dict[str, int] = field(default_factory=dict)
    up_since: dict[str, float] = field(default_factory=dict)
    given_up: set[str] = field(default_factory=set)

    def check(self) -> list[str]:
        """Restart whatever died since the last check; their names. A part that exited with
        EXIT_CONFIG (it cannot run as configured) is said once and left down."""
        restarted = []
        for name in self.platform.order():
            if name in self.given_up or not self.platform._died(name):
                continue
            if self.platform.exit_code(name) == EXIT_CONFIG:
                self.given_up.add(name)
                log = self.platform.own_log(name)
                tail = process.log_tail(log, 5) if log else ""
                self.platform.echo(
                    f"{name} cannot start as configured (exit code {EXIT_CONFIG}); not restarted: "
                    f"fix its settings, then make down && make up. The end of {log}:\n{tail}"
                )
                continue
            now = self.clock()
            if now - self.up_since.get(name, now) > FORGIVEN_AFTER_S:
                self.deaths[name] = 0
            self.deaths[name] = self.deaths.get(name, 0) + 1
            pause = min(2.0 ** (self.deaths[name] - 1), MAX_BACKOFF_S)
            code = self.platform.exit_code(name)
            how = "was killed" if code is None else _describe_exit(code)
            log = self.platform.own_log(name)
            tail = process.log_tail(log, 15) if log else ""
            self.platform.echo(
                f"{name} {how}; restarting it in {pause:.0f} s (death {self.deaths[name]} in a "
                f"row). The end of {log}:\n{tail}"
            )
            self.sleep(pause)
            try:
                self.platform.restart(name)
            except PlatformError as exc:
                self.platform.echo(f"{name} did not come back: {exc}")
                continue  # dead still: the next check tries again, after a longer pause
            self.up_since[name] = self.clock()
            self.platform.echo(f"{name} is back")
            restarted.append(name)
        return restarted


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
