"""A failed test on the platform keeps every log of the run, whole, under var/test-logs/, and
says where: its own instances' (services, a broker or a registry of its own, and such a
broker's data, for kafka-dump-log) and the suite platform's broker and registry logs. A fault
test's message shows only their last lines; a CI run uploads the folder."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Generator
from pathlib import Path

import pytest
from golive_platform.testing import suite_config

LOG_DIRS = pytest.StashKey[list[Path]]()
KEPT_UNDER = Path("var") / "test-logs"


@pytest.fixture(scope="module")
def keep_logs(request: pytest.FixtureRequest) -> Callable[[Path], None]:
    """Call with a platform instance's data dir: its logs are kept if a test of this module fails."""

    def watch(data_dir: Path) -> None:
        request.node.stash.setdefault(LOG_DIRS, []).append(data_dir)

    return watch


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and "cluster" in getattr(item, "fixturenames", ()):
        watched = [d for node in item.listchain() for d in node.stash.get(LOG_DIRS, [])]
        config = suite_config()
        kept = keep(item.name, watched, config.data_dir, under=config.root / KEPT_UNDER)
        report.sections.append(("kept logs", f"the whole logs of this run: {kept}"))
    return report


def keep(test: str, own: list[Path], shared: Path, *, under: Path) -> Path:
    """Copy the logs of these data dirs (and all of an own broker's data) into a folder of its
    own; that folder."""
    name = re.sub(r"[^\w.-]+", "_", test)[:80]
    target = under / f"{time.strftime('%Y%m%dT%H%M%S')}-{name}"
    for data_dir in [*own, shared]:
        for path in sorted(data_dir.rglob("*")):
            inside = path.relative_to(data_dir)
            if path.is_file() and _worth_keeping(inside, whole_broker=data_dir in own):
                copy = target / data_dir.name / inside
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, copy)
    return target


def _worth_keeping(inside: Path, *, whole_broker: bool) -> bool:
    if inside.parts[:2] == ("kafka", "data"):
        # The suite's broker holds every test's topics: its logs will do. Indexes are rebuilt
        # from the segments (and are preallocated: 20 MB each, sparse, copied whole).
        return whole_broker and inside.suffix not in (".index", ".timeindex")
    return ".log" in inside.name
