"""PostgreSQL, the read models' production path, is a real server."""

from __future__ import annotations

import psycopg
import pytest
from golive_platform.testing import Cluster

pytestmark = pytest.mark.integration


def test_postgres_connection_works(cluster: Cluster, unique: str) -> None:
    if cluster.postgres_url is None:
        pytest.fail("no PostgreSQL: the local platform and testcontainers both provide one")
    table = f"probe_{unique}"
    with psycopg.connect(cluster.postgres_url) as conn:
        conn.execute(f"CREATE TEMP TABLE {table} (id int PRIMARY KEY, note text)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 'durable')")
        row = conn.execute(f"SELECT note FROM {table} WHERE id = 1").fetchone()
        version = conn.execute("SHOW server_version_num").fetchone()
    assert row == ("durable",)
    assert version is not None and int(version[0]) >= 140000
