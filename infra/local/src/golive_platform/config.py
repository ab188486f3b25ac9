"""The one configuration of the local platform: ports, heaps, versions and directories."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Self

from golive_eventing.clients import Connection
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from golive_platform import credentials
from golive_platform.tokens import Issuer

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def find_root(start: Path | None = None) -> Path:
    """The repository root: GOLIVE_ROOT, else the nearest ancestor holding infra/local/pom.xml."""
    if env := os.environ.get("GOLIVE_ROOT"):
        return Path(env).resolve()
    for base in (start or Path.cwd(), Path(__file__).resolve()):
        for candidate in (base, *base.parents):
            if (candidate / "infra" / "local" / "pom.xml").is_file():
                return candidate
    raise FileNotFoundError("cannot find the golive repository root (infra/local/pom.xml)")


@cache
def pom_properties(pom: Path) -> dict[str, str]:
    """The <properties> of infra/local/pom.xml, where the Java artifacts' versions are pinned."""
    root = ET.parse(pom).getroot()  # noqa: S314 (our own pom, not untrusted input)
    return {
        child.tag.split("}")[1]: (child.text or "").strip()
        for child in root.iterfind("m:properties/*", POM_NS)
    }


# The service processes' ports: a test or a tool running its own instances picks a free port for
# each (golive_platform.testing, golive_cli.recorder.environment, load/soak.py).
SERVICE_PORTS = (
    "order_port",
    "order_process_manager_port",
    "payment_port",
    "payment_blue_port",
    "payment_green_port",
    "audit_port",
)


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "golive"


class PlatformConfig(BaseSettings):
    """Every knob of the local platform, each overridable as GOLIVE_<NAME> (or in .env)."""

    model_config = SettingsConfigDict(env_prefix="GOLIVE_", env_file=".env", extra="ignore")

    root: Path = Field(default_factory=find_root)
    data_dir: Path = Path("var/platform")
    cache_dir: Path = Field(default_factory=_default_cache)
    host: str = "127.0.0.1"

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    registry_port: int = 8081
    registry_management_port: int = 9001
    postgres_port: int = 5433
    order_port: int = 8000
    order_process_manager_port: int = 8010
    payment_port: int = 8020
    # The version slots' processes (health only): payment's router hands them the orders.
    payment_blue_port: int = 8021
    payment_green_port: int = 8022
    audit_port: int = 8030
    # The local viewers (golive_platform.viewer), started only when viewers is set: Zipkin for
    # traces, VictoriaMetrics for metrics.
    viewers: bool = False
    zipkin_port: int = 9411
    zipkin_heap: str = "256m"
    victoriametrics_port: int = 8428

    # Sized for a laptop (see make bench-platform). The broker's live heap is about 80 MB
    # after make bench's load (jcmd GC.heap_info after a full GC), with the log cleaner's
    # index at 16 MB (golive_platform.kafka).
    kafka_heap: str = "256m"
    # The broker's heap starts here and grows to kafka_heap as its collector asks: after make
    # bench's load it sat 33 MB lower than a heap fixed at 256m (RSS 369 against 402 MB), for
    # 5 % more broker CPU per order (two back-to-back runs: 1.77 against 1.69 ms).
    kafka_initial_heap: str = "64m"
    registry_heap: str = "256m"

    kafka_version: str = ""
    apicurio_version: str = ""
    zipkin_version: str = ""
    # A Go module version (the metrics viewer is built from source with `go install`).
    victoriametrics_version: str = "v1.151.0"
    java_home: Path | None = None
    # Where credentials.json is, if not in the data dir: the data dir of the instance whose
    # Kafka this one uses (a test's registry of its own on the suite's broker).
    credentials_dir: Path | None = None
    postgres_bindir: Path | None = None

    # Apicurio's kafkasql storage topics; infra/topics.yaml declares them with retention -1.
    registry_journal_topic: str = "kafkasql-journal"
    registry_snapshots_topic: str = "kafkasql-snapshots"
    registry_events_topic: str = "registry-events"

    environment: str = "local"
    ready_timeout_s: float = 90.0
    stop_timeout_s: float = 20.0

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        if not self.data_dir.is_absolute():
            self.data_dir = self.root / self.data_dir
        if self.credentials_dir is not None and not self.credentials_dir.is_absolute():
            self.credentials_dir = self.root / self.credentials_dir
        pom = pom_properties(self.pom)
        self.kafka_version = self.kafka_version or pom["kafka.version"]
        self.apicurio_version = self.apicurio_version or pom["apicurio.version"]
        self.zipkin_version = self.zipkin_version or pom["zipkin.version"]
        return self

    @property
    def pom(self) -> Path:
        return self.root / "infra" / "local" / "pom.xml"

    @property
    def topics_file(self) -> Path:
        return self.root / "infra" / "topics.yaml"

    @property
    def flags_source(self) -> Path:
        """The flags as committed (flagd's format; golive_contracts.flags declares them)."""
        return self.root / "infra" / "flags" / "flags.json"

    @property
    def flags_file(self) -> Path:
        """The running system's flags (FLAGS_FILE): a copy of flags_source made on first use,
        which `golive release` rewrites while the services read it."""
        return self.data_dir / "flags.json"

    def ensure_flags(self) -> Path:
        """The running system's flags, made on first use. A copy an older checkout made gains
        the flags declared since, at their committed values (a release's route flag missing
        would hold every new order); the flags it has keep the values set on it."""
        if not self.flags_file.exists():
            self.flags_file.parent.mkdir(parents=True, exist_ok=True)
            self.flags_file.write_bytes(self.flags_source.read_bytes())
            return self.flags_file
        try:
            kept = json.loads(self.flags_file.read_text())
            flags = kept["flags"]
            committed = json.loads(self.flags_source.read_text())["flags"]
        except (OSError, ValueError, KeyError, TypeError):
            return self.flags_file  # not readable as flags: the services say which line
        added = {name: body for name, body in committed.items() if name not in flags}
        if added and isinstance(flags, dict):
            flags.update(added)
            fresh = self.flags_file.with_suffix(".json.new")
            fresh.write_text(json.dumps(kept, indent=2) + "\n")
            fresh.replace(self.flags_file)
        return self.flags_file

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def credentials_home(self) -> Path:
        return self.credentials_dir or self.data_dir

    @property
    def registry_url(self) -> str:
        return f"http://{self.host}:{self.registry_port}/apis/ccompat/v7"

    def connection(self, principal: str = credentials.OPERATOR) -> Connection:
        """How `principal` (the operator's tools by default, or a service) reaches this
        platform: SASL/SCRAM with its generated password (golive_platform.credentials)."""
        password = credentials.load(self.credentials_home).password(principal)
        return Connection.exactly(
            kafka_bootstrap_servers=self.bootstrap_servers,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism=credentials.MECHANISM,
            kafka_sasl_username=principal,
            kafka_sasl_password=password,
            schema_registry_url=self.registry_url,
        )

    def issuer(self) -> Issuer:
        """This platform's token issuer (golive_platform.tokens): its key made on first use."""
        return Issuer.ensure(self.credentials_home)

    def service_logins(self) -> dict[str, Connection]:
        """Each service's own login to this platform (golive_platform.credentials.SERVICES)."""
        return {service: self.connection(service) for service in credentials.SERVICES}

    @property
    def zipkin_url(self) -> str:
        """The trace viewer: its UI under /zipkin/, its span intake at /api/v2/spans."""
        return f"http://{self.host}:{self.zipkin_port}"

    @property
    def victoriametrics_url(self) -> str:
        """The metrics viewer: its UI under /vmui/, its OTLP intake at /opentelemetry/v1/metrics."""
        return f"http://{self.host}:{self.victoriametrics_port}"

    @property
    def postgres_url(self) -> str:
        return f"postgresql://golive@{self.host}:{self.postgres_port}/golive"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    def ports(self) -> dict[str, int]:
        """Each listening port by the name a user reads in an error message."""
        return {
            "kafka": self.kafka_port,
            "kafka controller": self.kafka_controller_port,
            "registry": self.registry_port,
            "registry management": self.registry_management_port,
            "postgres": self.postgres_port,
            "zipkin": self.zipkin_port,
            "victoriametrics": self.victoriametrics_port,
        }
