"""The running system: the four real service processes on the test platform, on topics of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from golive_cli.system import Cluster as Where
from golive_cli.system import service_specs, started
from golive_contracts.scopes import Scope
from golive_platform import process
from golive_platform.config import PlatformConfig
from golive_platform.platform import Platform
from golive_platform.services import ServiceSpec
from golive_platform.testing import Cluster, suite_config
from golive_platform.tokens import Issuer

from tests.helpers import Topics, make_topics, service_ports
from tests.otlp import Receiver, receiving
from tests.statsd import Listener, listening


@dataclass(frozen=True)
class System:
    config: PlatformConfig
    topics: Topics
    order_url: str
    payment_url: str
    audit_url: str
    issuer: Issuer  # whose API tokens the services take
    traces: Receiver  # what the services' OTLP exporters sent: spans and metrics
    statsd: Listener  # what their DogStatsD clients sent
    specs: dict[str, ServiceSpec]

    def headers(self, *scopes: Scope) -> dict[str, str]:
        return self.issuer.headers(*scopes)

    def stop(self, name: str) -> None:
        process.stop(self.config.run_dir, name, self.config.stop_timeout_s)

    def start(self, name: str) -> None:
        Platform(self.config, services=[self.specs[name]], echo=lambda _line: None).start_services()


@pytest.fixture(scope="module")
def system(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    topics = make_topics(cluster, f"e2e{uuid.uuid4().hex[:8]}", partitions=6)
    config = suite_config(data_dir=tmp_path_factory.mktemp("system"), **service_ports())
    where = Where(cluster.connection, cluster.services)
    with receiving() as (traces, endpoint), listening() as (statsd, statsd_port):
        # Spans exported in batches every 200 ms and metrics every 500 ms, lag measured every
        # second: a test sees them soon.
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "DD_AGENT_HOST": "127.0.0.1",
            "DD_DOGSTATSD_PORT": str(statsd_port),
            "DD_ENV": "e2e",
            "LAG_INTERVAL_S": "1",
            "LOG_LEVEL": "INFO",
        }
        # The route sends every order to blue: the green slot would only idle (the release
        # tests run it: tests/reliability/test_release.py).
        specs = service_specs(config, where, topics.names, env=env, slots=("blue",))
        with started(config, specs):
            yield System(
                config,
                topics,
                order_url=f"http://127.0.0.1:{config.order_port}",
                payment_url=f"http://127.0.0.1:{config.payment_port}",
                audit_url=f"http://127.0.0.1:{config.audit_port}",
                issuer=config.issuer(),
                traces=traces,
                statsd=statsd,
                specs={spec.name: spec for spec in specs},
            )
