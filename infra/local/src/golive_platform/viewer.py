"""The local trace viewer: Zipkin's server (from Maven Central), in memory, on loopback.

`GOLIVE_TRACE_VIEWER=1 make run` starts it beside the broker and the registry and points every
service's trace export at it; its UI is at `/zipkin/` (docs/observability.md). Zipkin keeps the
most recent spans in memory only: a viewer for a developer's machine, not a trace store.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from golive_platform.artifacts import maven
from golive_platform.config import PlatformConfig
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


def exporting(config: PlatformConfig) -> dict[str, str]:
    """The services' settings that send their spans to this viewer (OpenTelemetry's standard
    variables: golive_eventing.tracing reads them)."""
    return {
        "OTEL_TRACES_EXPORTER": "zipkin",
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT": config.zipkin_url + SPANS_PATH,
    }


def traces_url(config: PlatformConfig) -> str:
    """Where the viewer shows one trace: this, then the trace id."""
    return f"{config.zipkin_url}{UI_PATH}traces/"


def zipkin_ready(config: PlatformConfig) -> bool:
    try:
        return httpx.get(f"{config.zipkin_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
