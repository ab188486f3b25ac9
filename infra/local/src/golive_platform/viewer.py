"""The local viewers, on loopback, started beside the broker and the registry by
`GOLIVE_VIEWERS=1 make run` (docs/observability.md):

- traces: Zipkin's server (from Maven Central), in memory, its UI at `/zipkin/`. It keeps the
  most recent spans only: a viewer for a developer's machine, not a trace store.
- metrics: VictoriaMetrics (built once from the Go module proxy), which takes the services'
  OpenTelemetry metrics over OTLP/HTTP and graphs them in its UI at `/vmui/`, kept a day.

Every service's trace and metric export is pointed at them with OpenTelemetry's standard
variables (`exporting`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx

from golive_platform.artifacts import maven
from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError
from golive_platform.java import Java
from golive_platform.process import Launch

# The most recent spans Zipkin keeps; older traces drop out. An order's trace is about 19
# spans, so about 2,600 orders; Zipkin wants about 1 KB of heap a span beside its own 100 MB.
MAX_SPANS = 50_000
SPANS_PATH = "/api/v2/spans"
UI_PATH = "/zipkin/"


def jar(config: PlatformConfig) -> Path:
    return config.cache_dir / f"zipkin-{config.zipkin_version}" / "zipkin-server.jar"


def fetch(config: PlatformConfig, *, echo: bool = True) -> Path:
    """Zipkin's executable jar, through infra/local/pom.xml's trace-viewer profile (cached)."""
    found = jar(config)
    if found.is_file():
        return found
    if echo:
        print(
            f"fetching Zipkin {config.zipkin_version} from Maven Central into {found.parent} (once)"
        )
    maven(config, "Zipkin", found.is_file, profiles=("trace-viewer",))
    return found


class ZipkinNode:
    name = "zipkin"

    def __init__(self, config: PlatformConfig, server: Path) -> None:
        self.config = config
        self.server = server
        self.home = config.data_dir / "zipkin"
        self.log = self.home / "zipkin.log"

    def launch(self, java: Java) -> Launch:
        c = self.config
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [
            str(java.executable),
            "-Xms64m",
            f"-Xmx{c.zipkin_heap}",
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:TieredStopAtLevel=1",
            f"-Djava.io.tmpdir={self.home}",
            f"-Dgolive.instance={c.data_dir}",
            "-jar",
            str(self.server),
            # Loopback only, like every part of the local platform.
            f"--armeria.ports[0].ip={c.host}",
            f"--armeria.ports[0].port={c.zipkin_port}",
            "--armeria.ports[0].protocols[0]=http",
        ]
        env = {
            "STORAGE_TYPE": "mem",
            "MEM_MAX_SPANS": str(MAX_SPANS),
            # Its other collectors look for brokers of their own; only HTTP is used here.
            "COLLECTOR_GRPC_ENABLED": "false",
            "COLLECTOR_KAFKA_ENABLED": "false",
            "COLLECTOR_RABBITMQ_ENABLED": "false",
            "COLLECTOR_ACTIVEMQ_ENABLED": "false",
            "COLLECTOR_PULSAR_ENABLED": "false",
        }
        return Launch(
            self.name,
            argv,
            self.log,
            marker=f"-Dgolive.instance={c.data_dir}",
            env=env,
            cwd=self.home,
        )


# -- metrics: VictoriaMetrics ---------------------------------------------------------------------

VM_MODULE = "github.com/VictoriaMetrics/VictoriaMetrics"
VM_PACKAGE = f"{VM_MODULE}/app/victoria-metrics"
OTLP_METRICS_PATH = "/opentelemetry/v1/metrics"
VMUI_PATH = "/vmui/"
# A build that takes longer is stuck (a module download, say): 28 s here from nothing.
BUILD_TIMEOUT_S = 600.0
# How often the services push their metrics to it (OpenTelemetry's default is a minute).
EXPORT_INTERVAL_MS = 5_000


def dashboards(config: PlatformConfig) -> Path:
    """vmui's dashboards, one JSON file each (on the catalogue's metrics: tests/unit)."""
    return config.root / "infra" / "local" / "vmui"


def vm_binary(config: PlatformConfig) -> Path:
    return (
        config.cache_dir / f"victoria-metrics-{config.victoriametrics_version}" / "victoria-metrics"
    )


def build_vm(config: PlatformConfig, *, echo: bool = True) -> Path:
    """VictoriaMetrics' single-node server, built with `go install` from the Go module proxy
    into the cache outside git (once: 28 s here from nothing, downloads included)."""
    found = vm_binary(config)
    if found.is_file():
        return found
    go = shutil.which("go")
    if go is None:
        raise PlatformError(
            "Go not found on PATH: the metrics viewer (VictoriaMetrics "
            f"{config.victoriametrics_version}) is built with it; install Go or unset GOLIVE_VIEWERS"
        )
    if echo:
        print(
            f"building VictoriaMetrics {config.victoriametrics_version} from the Go module proxy "
            f"into {found.parent} (once)"
        )
    found.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=found.parent) as bin_dir:
        try:
            done = subprocess.run(
                [go, "install", f"{VM_PACKAGE}@{config.victoriametrics_version}"],
                env={**os.environ, "GOBIN": bin_dir, "CGO_ENABLED": "0"},
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PlatformError(
                f"building VictoriaMetrics {config.victoriametrics_version} took over "
                f"{BUILD_TIMEOUT_S:.0f} s (go install {VM_PACKAGE}): is the Go module proxy "
                "reachable (GOPROXY)?",
                detail=str(exc.stderr or "")[-4000:],
            ) from None
        built = Path(bin_dir) / "victoria-metrics"
        if done.returncode != 0 or not built.is_file():
            raise PlatformError(
                f"building VictoriaMetrics {config.victoriametrics_version} failed "
                f"(go install {VM_PACKAGE}@{config.victoriametrics_version})",
                detail=(done.stderr or done.stdout)[-4000:],
            )
        built.replace(found)  # whole or not at all: a half-written binary is never found
    return found


class VictoriaMetricsNode:
    name = "victoriametrics"

    def __init__(self, config: PlatformConfig, server: Path) -> None:
        self.config = config
        self.server = server
        self.home = config.data_dir / "victoriametrics"
        self.log = self.home / "victoriametrics.log"

    def launch(self) -> Launch:
        c = self.config
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [
            str(self.server),
            f"-httpListenAddr={c.host}:{c.victoriametrics_port}",  # loopback only
            f"-storageDataPath={self.home / 'data'}",
            "-retentionPeriod=1d",
            # A viewer: a point is queryable as soon as it arrives, not 30 s later.
            "-search.latencyOffset=0s",
            # Bounded beside the rest of the platform on a laptop.
            "-memory.allowedBytes=128MiB",
            # The journey's dashboard, under vmui's Dashboards tab (beside Datadog's).
            f"-vmui.customDashboardsPath={dashboards(c)}",
        ]
        return Launch(
            self.name,
            argv,
            self.log,
            marker=f"-storageDataPath={self.home / 'data'}",  # this instance's, in its argv
            cwd=self.home,
        )


def metrics_ready(config: PlatformConfig) -> bool:
    try:
        return httpx.get(f"{config.victoriametrics_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def exporting(config: PlatformConfig) -> dict[str, str]:
    """The services' settings that send their spans and metrics to these viewers
    (OpenTelemetry's standard variables: golive_eventing.tracing and .metrics read them)."""
    return {
        "OTEL_TRACES_EXPORTER": "zipkin",
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT": config.zipkin_url + SPANS_PATH,
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": config.victoriametrics_url + OTLP_METRICS_PATH,
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": str(EXPORT_INTERVAL_MS),
    }


def traces_url(config: PlatformConfig) -> str:
    """Where the viewer shows one trace: this, then the trace id."""
    return f"{config.zipkin_url}{UI_PATH}traces/"


def zipkin_ready(config: PlatformConfig) -> bool:
    try:
        return httpx.get(f"{config.zipkin_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
