"""Metrics on the wire: the `datadog` client's DogStatsD datagrams at a real UDP listener, with
the catalogue's names, kinds and tags and the unified service tags (golive_eventing.metrics)."""

from __future__ import annotations

import pytest
from golive_contracts.metrics import COMMIT_DURATION, CONSUMER_LAG, RECORDS_PROCESSED
from golive_eventing.metrics import Metrics

from tests.helpers import eventually
from tests.statsd import listening

pytestmark = pytest.mark.integration


def test_each_kind_arrives_with_its_tags_and_the_unified_service_tags() -> None:
    with listening() as (listener, port):
        env = {"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(port), "DD_ENV": "staging"}
        metrics = Metrics("payment", "0.2.0", env=env)
        metrics.count(RECORDS_PROCESSED, 3, group="payment-blue", topic="orders.payment-blue")
        metrics.distribution(COMMIT_DURATION, 0.012, group="payment-blue")
        metrics.gauge(CONSUMER_LAG, 7, group="payment-blue", topic="orders", partition=2)
        metrics.close()
        eventually(lambda: len(listener.points) >= 3, 10, "three data points")
    unified = {"env": "staging", "service": "payment", "version": "0.2.0"}
    (processed,) = listener.named("golive.records.processed")
    assert (processed.value, processed.kind) == (3, "c")
    assert processed.tags == {**unified, "group": "payment-blue", "topic": "orders.payment-blue"}
    (commit,) = listener.named("golive.transaction.commit.duration")
    assert (commit.value, commit.kind, commit.tags["group"]) == (0.012, "d", "payment-blue")
    (lag,) = listener.named("golive.consumer.lag")
    assert (lag.value, lag.kind, lag.tags["partition"]) == (7, "g", "2")


def test_a_data_point_off_its_declaration_is_refused() -> None:
    with listening() as (_, port):
        metrics = Metrics(
            "order", "0.1.0", env={"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(port)}
        )
        with pytest.raises(ValueError, match=r"tagged group, topic: not a count tagged group$"):
            metrics.count(RECORDS_PROCESSED, group="order-projector")
        with pytest.raises(ValueError, match="is a gauge"):
            metrics.count(CONSUMER_LAG, group="g", topic="t", partition=0)
        metrics.close()


def test_without_an_agent_or_an_endpoint_metrics_are_off() -> None:
    metrics = Metrics("order", "0.1.0", env={})
    assert not metrics.on
    metrics.count(RECORDS_PROCESSED, group="wrong tags are not even looked at")
