"""Releases by routing on the real broker, registry and service processes (ADR 0012): payment's
router hands each order to one version slot, blue running the live rules and green the
candidate's (golive_cli.system.SLOT_RULES), while `golive release` rewrites the route."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from golive_cli import shadow as shadow_module
from golive_cli.main import app
from golive_cli.release import ACTOR_ENV
from golive_contracts.events import PaymentAuthorized, PaymentDeclined, ReleaseRouteChanged
from golive_contracts.topology import RELEASES, dlq_topic, shadow_topic
from golive_payment.domain import rules
from golive_platform.testing import Cluster, config_env, suite_config
from typer.testing import CliRunner

from tests.factories import order_placed
from tests.helpers import Topics, events_on, eventually, make_topics, read_topic, service_ports
from tests.reliability.harness import (
    PIPELINE,
    Services,
    all_settled,
    new_orders,
    publish,
    serde_for,
)

pytestmark = pytest.mark.reliability

# Orders version 2 declines and version 1 authorizes: over 5,000 EUR, under 10,000 EUR.
BETWEEN_LIMITS_MINOR = 700_000


@pytest.fixture(scope="module")
def topics(cluster: Cluster) -> Topics:
    return make_topics(cluster, f"rls{uuid.uuid4().hex[:8]}", partitions=6)


@pytest.fixture(scope="module")
def system(
    cluster: Cluster,
    topics: Topics,
    tmp_path_factory: pytest.TempPathFactory,
    keep_logs: Callable[[Path], None],
) -> Iterator[Services]:
    config = suite_config(data_dir=tmp_path_factory.mktemp("release"), **service_ports())
    keep_logs(config.data_dir)
    services = Services.on(cluster, topics, config)
    services.start(*PIPELINE, "payment-green")
    try:
        yield services
    finally:
        services.stop_all()


def _release(
    system: Services,
    cluster: Cluster,
    topics: Topics,
    action: str,
    *args: str,
    ok: bool | None = True,
) -> str:
    """`golive release ACTION payment ...` on this system's flags and topics (in process: a
    subprocess would add seconds of imports to each of the many steps)."""
    suffix = topics.group_prefix.removesuffix(".")
    argv = ["release", action, "payment", *args, "--flags", str(system.config.flags_file)]
    argv += ["--suffix", suffix]
    env = {**config_env(system.config), **cluster.connection.env(), ACTOR_ENV: "test_release"}
    done = CliRunner().invoke(app, argv, env=env)
    assert ok is None or (done.exit_code == 0) is ok, done.output
    return done.output


def _payments(cluster: Cluster, topics: Topics, topic: str) -> dict[str, list[Any]]:
    serde = serde_for(cluster, topics)
    found: dict[str, list[Any]] = {}
    for _key, value in read_topic(cluster.connection, topic, timeout_s=30):
        event = serde.deserialize(value)
        if isinstance(event, PaymentAuthorized | PaymentDeclined):
            found.setdefault(str(event.order_id), []).append(event)
    return found


def test_shadow_shows_exactly_the_orders_the_candidate_decides_otherwise(
    system: Services, cluster: Cluster, topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    _release(system, cluster, topics, "shadow")
    shadow = shadow_topic(topics.payments)
    probes: list[str] = []

    def shadowing() -> bool:
        """The router reads the flags within a second: a probe order gets a shadow decision."""
        (probe,) = new_orders(1)
        probes.append(str(probe.order_id))
        publish(cluster, topics, [probe])
        return bool(set(probes) & _payments(cluster, topics, shadow).keys())

    eventually(shadowing, 30, "the router to read the shadow route", every_s=0.5)
    changed = [order_placed(total_minor=BETWEEN_LIMITS_MINOR) for _ in range(5)]
    same = new_orders(20)
    publish(cluster, topics, [*changed, *same])
    everything = [*changed, *same]
    ids = {str(o.order_id) for o in everything}

    def compared() -> tuple[dict[str, list[Any]], dict[str, list[Any]]] | None:
        live, candidate = (
            _payments(cluster, topics, topics.payments),
            _payments(cluster, topics, shadow),
        )
        return (live, candidate) if ids <= live.keys() and ids <= candidate.keys() else None

    live, candidate = eventually(compared, 60, "the live and shadow decisions", every_s=1.0)
    differing = {i for i in ids if type(live[i][0]) is not type(candidate[i][0])}
    assert differing == {str(o.order_id) for o in changed}
    assert all(candidate[i][0].reason == "amount_over_limit" for i in differing)
    # The live version decided them all, once; the candidate's decisions stayed in shadow.
    assert all(len(live[i]) == 1 for i in ids)
    assert {live[i][0].envelope.producer_version for i in ids} == {"0.1.0"}
    assert {candidate[i][0].envelope.producer_version for i in ids} == {"0.2.0"}
    assert read_topic(cluster.connection, dlq_topic(topics.orders, "payment-green"), 5) == []

    # The comparison, as golive release compares: every difference is one version 2 intends.
    # (Copies handed over in the last 30 s count as in flight; here none is.)
    monkeypatch.setattr(shadow_module, "IN_FLIGHT_MS", 0)
    comparison = _release(system, cluster, topics, "compare")
    assert "5 differ as the candidate intends, 0 differ otherwise" in comparison
    assert "0 handed to the candidate have no shadow decision" in comparison

    # Copies the candidate never decides (it is down) are missing, and stop a promotion.
    system.stop("payment-green")
    lost = new_orders(3)
    publish(cluster, topics, lost)
    lost_ids = {str(o.order_id) for o in lost}
    eventually(
        lambda: lost_ids <= _payments(cluster, topics, topics.payments).keys(),
        30,
        "the live version to decide the orders the candidate misses",
    )
    missing = _release(system, cluster, topics, "compare", ok=False)
    assert "3 handed to the candidate have no shadow decision" in missing
    assert all(f"no shadow decision: order {i}" in missing for i in lost_ids)
    system.start("payment-green")  # back: it decides what it was handed
    eventually(
        lambda: (
            "0 handed to the candidate have no shadow decision"
            in _release(system, cluster, topics, "compare", ok=None)
        ),
        60,
        "the candidate to decide what it missed",
        every_s=1.0,
    )
    # A candidate that did not declare them would not be promoted, naming the orders.
    monkeypatch.setitem(rules.INTENDED, "2", lambda live, candidate: False)
    refused = _release(system, cluster, topics, "promote", ok=False)
    assert "promotion refused: 5 order(s)" in refused
    assert all(str(o.order_id) in refused for o in changed)
    monkeypatch.undo()
    promoted = _release(system, cluster, topics, "promote")
    assert "now  payment: live: every new key to green (live)" in promoted
    back = _release(system, cluster, topics, "promote")  # blue again, for the next
    assert "now  payment: live: every new key to blue (live)" in back
    # Each action taken was recorded first, in order; the refused promotion was not.
    recorded = [
        e
        for e in events_on(cluster, topics, topics.names.topic(RELEASES))
        if isinstance(e, ReleaseRouteChanged)
    ]
    assert [(e.action, e.mode, e.live) for e in recorded[-3:]] == [
        ("shadow", "shadow", "blue"),
        ("promote", "live", "green"),
        ("promote", "live", "blue"),
    ]
    assert {e.by for e in recorded} == {"test_release"}


def test_route_flips_under_load_and_a_killed_version_decide_each_order_exactly_once(
    system: Services, cluster: Cluster, topics: Topics
) -> None:
    orders = new_orders(900)
    chunks = [orders[i : i + 100] for i in range(0, len(orders), 100)]
    steps: list[tuple[str, ...]] = [
        ("shadow",),
        ("canary", "--percent", "50"),
        ("switch",),
        ("rollback",),
        ("switch",),
        ("kill",),  # green, which decides every new order now, dies mid-stream
        ("rollback",),
        ("canary", "--percent", "50"),
        ("rollback",),
    ]
    for n, (chunk, step) in enumerate(zip(chunks, steps, strict=True)):
        publish(cluster, topics, chunk, per_second=200)
        if n == 3:  # switched: every new key to green; these were pinned to blue, and stay
            publish(cluster, topics, chunks[0][:50])  # a producer's retry, say
        if step == ("kill",):
            system.kill("payment-green")
            system.start("payment-green")
        else:
            _release(system, cluster, topics, *step)

    found = eventually(
        lambda: all_settled(cluster, topics, orders), 180, "every order to end", every_s=2.0
    )
    ids = [str(o.order_id) for o in orders]
    assert [i for i in ids if found.payments[i] != 1] == [], "orders without exactly one payment"
    assert [i for i in ids if found.terminal[i] != 1] == [], "orders without exactly one end"
    by_version = Counter(
        events[0].envelope.producer_version
        for order_id, events in _payments(cluster, topics, topics.payments).items()
        if order_id in set(ids)
    )
    assert by_version["0.1.0"] > 0 and by_version["0.2.0"] > 0, by_version  # both decided some
    route = json.loads(system.config.flags_file.read_text())["flags"]["payment-route"]
    assert route["defaultVariant"] == "blue"  # rolled back
    caught_up = [
        ["payment-router", "0", "unread"],
        ["payment-blue", "0", "unread"],
        ["payment-green", "0", "unread"],
    ]

    def status() -> list[str] | None:
        said = _release(system, cluster, topics, "status").splitlines()
        return said if [line.split()[:3] for line in said[1:4]] == caught_up else None

    # The router's last records are the orders' ends, which it does not act on: their
    # positions are committed once owed for OWED_COMMIT_S (ADR 0005), not at once.
    said = eventually(status, 15, "the router and both versions to commit past every record")
    assert said[0] == "payment: live: every new key to blue (live)"
