"""A process loads what it uses: the order process manager and the payment slots keep no
database, verify no token and read no flag, so their processes must not load SQLAlchemy (about
20 MB resident), PyJWT or the flags' evaluator (about 4 MB more; docs/performance-journal.md). Each
console entry point is loaded in a fresh interpreter, as its script would, and what it imported
is read back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LOADED = """
import json, sys
from importlib.metadata import entry_points
(point,) = entry_points(group="console_scripts", name=sys.argv[1])
point.load()
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_by(script: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, script],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("script", ["golive-order-process-manager", "golive-payment-slot"])
def test_a_process_without_a_database_tokens_or_flags_does_not_load_them(script: str) -> None:
    loaded = _loaded_by(script)
    assert "golive_eventing.processor" in loaded  # what it does use is there
    assert {"sqlalchemy", "jwt", "golive_eventing.auth", "golive_eventing.flags"} & loaded == set()
