"""The running system: the four real service processes on the test platform, on topics of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from golive_cli.system import Cluster as Where
from golive_cli.system import service_specs, started
from golive_contracts.scopes import Scope
from golive_platform.config import PlatformConfig
from golive_platform.testing import Cluster, suite_config
from golive_platform.tokens import Issuer

from tests.helpers import Topics, make_topics, service_ports
from tests.otlp import Receiver, receiving


@dataclass(frozen=True)
class System:
    config: PlatformConfig
    topics: Topics
    order_url: str
    payment_url: str
    audit_url: str
    issuer: Issuer  # whose API tokens the services take
    traces: Receiver  # what the services' OTLP exporters sent

    def headers(self, *scopes: Scope) -> dict[str, str]:
        return self.issuer.headers(*scopes)


@pytest.fixture(scope="module")
def system(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    topics = make_topics(cluster, f"e2e{uuid.uuid4().hex[:8]}", partitions=6)
    config = suite_config(data_dir=tmp_path_factory.mktemp("system"), **service_ports())
    where = Where(cluster.connection, cluster.services)
    with receiving() as (traces, endpoint):
        # Spans exported in batches every 200 ms, so a test sees a journey's trace soon.
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
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
            )
