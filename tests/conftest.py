"""One fixture gives every test a broker, a registry and a database (see golive_platform.testing)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from golive_platform.testing import Cluster, provide_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with provide_cluster() as found:
        yield found


@pytest.fixture
def unique() -> str:
    """A suffix for this test's own topics and consumer groups."""
    return uuid.uuid4().hex[:12]
