"""The broker, registry and PostgreSQL every tier shares (see golive_platform.testing), a test's own
topics, both databases."""

from __future__ import annotations

import contextlib
import gc
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from golive_platform import process
from golive_platform.testing import (
    Cluster,
    choose_source,
    docker_answers,
    local_cluster,
    provide_cluster,
    suite_config,
)

from tests.helpers import Topics, free_port, make_topics, service_ports
from tests.instances import Broker

_SHARED = pytest.StashKey[contextlib.ExitStack]()


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (make test runs two workers) the controller starts the local platform
    before the workers exist and stops it after they all finished: a worker that started it
    could otherwise stop it under the other one."""
    if not getattr(config.option, "numprocesses", None) or hasattr(config, "workerinput"):
        return
    if choose_source(os.environ, docker_answers()) != "local":
        return  # an external cluster, or containers: each worker is given its own
    shared = contextlib.ExitStack()
    shared.enter_context(local_cluster(keep=bool(os.environ.get("GOLIVE_KEEP_TEST_PLATFORM"))))
    config.stash[_SHARED] = shared
    # The workers inherit these: they leave the platform up, and need not probe for Docker again.
    os.environ["GOLIVE_KEEP_TEST_PLATFORM"] = "1"
    os.environ["GOLIVE_TESTS_NO_DOCKER"] = "1"


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(_SHARED, None)
    if shared is not None:
        shared.close()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with provide_cluster() as found:
        yield found
        gc.collect()  # finished tests' Kafka clients go before the broker does, not after it


@pytest.fixture
def unique() -> str:
    """A suffix for this test's own topics and consumer groups."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def topics(cluster: Cluster, unique: str) -> Topics:
    return make_topics(cluster, unique)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, cluster: Cluster, tmp_path: Path, unique: str
) -> Iterator[str]:
    """Every read-model test runs on SQLite and on PostgreSQL, for real; no PostgreSQL is a failure."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'read-model.db'}"
        return
    if cluster.postgres_url is None:
        pytest.fail("no PostgreSQL available: the PostgreSQL backend must run, not be skipped")
    name = f"test_{unique}"
    with psycopg.connect(cluster.postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = cluster.postgres_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(cluster.postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def own_broker(
    cluster: Cluster, tmp_path: Path, keep_logs: Callable[[Path], None]
) -> Iterator[Broker]:
    """A broker of the test's own, on ports of its own, to stop and start again (the local
    platform only); its whole logs and data kept if the test fails."""
    if cluster.source != "local":
        pytest.skip("stops and starts a broker process of the local platform")
    config = suite_config(
        data_dir=tmp_path / "broker-instance",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        **service_ports(),
    )
    keep_logs(config.data_dir)
    broker = Broker(config)
    broker.start()
    yield broker
    process.stop(config.run_dir, broker.node.name, config.stop_timeout_s)
