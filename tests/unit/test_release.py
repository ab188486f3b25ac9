"""`golive release`'s route arithmetic (golive_cli.release): each action rewrites the flags the
router reads; the committed flags are the route at rest. No I/O but the committed file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from golive_cli import release
from golive_cli.release import ReleaseError, Route
from golive_eventing.flags import problems
from golive_platform.config import PlatformConfig

pytestmark = pytest.mark.unit

COMMITTED: dict[str, Any] = json.loads(PlatformConfig().flags_source.read_text())


def _valid(document: dict[str, Any]) -> dict[str, Any]:
    assert problems(json.dumps(document, indent=2), complete=True) == []
    return document


def test_the_committed_route_is_everything_to_blue() -> None:
    assert release.route(COMMITTED, "payment") == Route("payment", "blue", "live", 0)


def test_shadow_canary_switch_rollback_promote() -> None:
    shadowed = _valid(release.shadow(COMMITTED, "payment"))
    assert release.route(shadowed, "payment") == Route("payment", "blue", "shadow", 0)
    assert shadowed["flags"]["payment-shadow"]["defaultVariant"] == "green"

    canary = _valid(release.canary(shadowed, "payment", 5))
    assert release.route(canary, "payment") == Route("payment", "blue", "canary", 5)
    assert canary["flags"]["payment-route"]["targeting"] == {
        "fractional": [{"var": "order_id"}, ["blue", 95], ["green", 5]]
    }
    assert canary["flags"]["payment-shadow"]["defaultVariant"] == "none"

    switched = _valid(release.switch(canary, "payment"))
    assert release.route(switched, "payment") == Route("payment", "blue", "switched", 100)
    assert "targeting" not in switched["flags"]["payment-route"]

    back = _valid(release.rollback(switched, "payment"))
    assert release.route(back, "payment") == Route("payment", "blue", "live", 0)

    promoted = _valid(release.promote(switched, "payment"))
    assert release.route(promoted, "payment") == Route("payment", "green", "live", 0)
    assert release.route(promoted, "payment").candidate == "blue"  # free for the next version
    assert COMMITTED["flags"]["payment-route"]["defaultVariant"] == "blue"  # never changed


def test_what_cannot_be_done_says_why() -> None:
    with pytest.raises(ReleaseError, match="between 1 and 99"):
        release.canary(COMMITTED, "payment", 100)
    with pytest.raises(ReleaseError, match="nothing to roll back"):
        release.rollback(COMMITTED, "payment")
    with pytest.raises(KeyError, match="no routed group 'order'"):
        release.route(COMMITTED, "order")
    older = {"flags": {k: v for k, v in COMMITTED["flags"].items() if k != "payment-route"}}
    with pytest.raises(ReleaseError, match="the flags have no 'payment-route'"):
        release.route(older, "payment")


def test_a_copy_from_an_older_checkout_gains_the_flags_declared_since(tmp_path: Path) -> None:
    config = PlatformConfig(data_dir=tmp_path)
    assert json.loads(config.ensure_flags().read_text()) == COMMITTED  # first use: a copy
    set_here = release.canary(COMMITTED, "payment", 5)
    older = {**set_here, "flags": {"payment-route": set_here["flags"]["payment-route"]}}
    config.flags_file.write_text(json.dumps(older))
    kept = json.loads(config.ensure_flags().read_text())
    assert kept == set_here  # the others added as committed, the route as it was set
    config.flags_file.write_text("{ not json")
    assert config.ensure_flags().read_text() == "{ not json"  # the services name the line


def test_a_route_says_itself_in_one_line() -> None:
    canary = release.route(release.canary(COMMITTED, "payment", 50), "payment")
    assert str(canary) == (
        "payment: canary: 50% of new keys to green (candidate), the rest to blue (live)"
    )
