"""The metrics every service emits: one catalogue, read by the emitters (golive_eventing.metrics),
the Datadog dashboards and monitors (their check refuses a metric not declared here) and
docs/observability.md. Plain data.

Names are Datadog's style (dotted, `golive.` first); OpenTelemetry gets the same names. Every
metric also carries the unified service tags env, service and version (DD_ENV, the service,
its version), which are not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property


class Kind(StrEnum):
    COUNT = "count"  # DogStatsD count, an OpenTelemetry counter
    GAUGE = "gauge"  # DogStatsD gauge, an OpenTelemetry gauge
    DISTRIBUTION = "distribution"  # DogStatsD distribution (global percentiles), a histogram


# Where an OpenTelemetry histogram of seconds splits its buckets. The SDK's default boundaries
# (0, 5, 10, 25, ... 10,000) are made for milliseconds: every duration in seconds would land in
# the first bucket and every quantile would read 2.5 s. These are the semantic conventions'
# (http.server.request.duration), then 30 to 60 s: a journey that ends at its payment deadline
# (30 s by default) takes a little over it, and a bucket of (30, 60] alone would read its p99
# as up to 60 s.
# fmt: off
SECONDS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
    30, 31, 32.5, 35, 45, 60,
)
# fmt: on


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    unit: str  # UCUM, as OpenTelemetry wants it: "s", "1", "{record}"
    description: str
    tags: tuple[str, ...]  # every data point has exactly these (besides env, service, version)

    @cached_property
    def tag_names(self) -> frozenset[str]:
        """`tags` as a set, made once: every data point is checked against it."""
        return frozenset(self.tags)

    @property
    def buckets(self) -> tuple[float, ...] | None:
        """A distribution's histogram boundaries for OpenTelemetry (DogStatsD needs none)."""
        if self.kind is Kind.DISTRIBUTION and self.unit == "s":
            return SECONDS_BUCKETS
        return None


HTTP_REQUESTS = Metric(
    "golive.http.requests",
    Kind.COUNT,
    "{request}",
    "HTTP requests answered, by route template and status code (probes left out).",
    ("method", "route", "status"),
)
HTTP_DURATION = Metric(
    "golive.http.request.duration",
    Kind.DISTRIBUTION,
    "s",
    "Time to answer an HTTP request, by route template and status code.",
    ("method", "route", "status"),
)
RECORDS_PROCESSED = Metric(
    "golive.records.processed",
    Kind.COUNT,
    "{record}",
    "Records a consumer group processed (decided, projected, routed or recorded).",
    ("group", "topic"),
)
RECORDS_DEAD_LETTERED = Metric(
    "golive.records.dead_lettered",
    Kind.COUNT,
    "{record}",
    "Records a consumer group could not process and wrote to its dead-letter topic.",
    ("group", "topic"),
)
COMMIT_DURATION = Metric(
    "golive.transaction.commit.duration",
    Kind.DISTRIBUTION,
    "s",
    "Time to commit a batch: a Kafka transaction (processors, routers) or a database "
    "transaction with its offsets (projections).",
    ("group",),
)
CONSUMER_LAG = Metric(
    "golive.consumer.lag",
    Kind.GAUGE,
    "{record}",
    "Committed records a consumer group has yet to read, per partition (end offset minus the "
    "group's committed offset), measured from outside the group by audit's lag watch.",
    ("group", "topic", "partition"),
)
JOURNEY_DURATION = Metric(
    "golive.order.journey.duration",
    Kind.DISTRIBUTION,
    "s",
    "From an order's placement to its final state in the orders read model (what a client "
    "polling GET /orders/{id} waits), by outcome.",
    ("outcome",),
)
PAYMENT_DECISIONS = Metric(
    "golive.payment.decisions",
    Kind.COUNT,
    "{decision}",
    "Payment decisions in the payments read model, by outcome, reason and the deciding "
    "version (shadow decisions are not counted).",
    ("outcome", "reason", "decided_by"),
)
SERVICE_READY = Metric(
    "golive.service.ready",
    Kind.GAUGE,
    "1",
    "1 while the process answers /readyz ready (broker, registry, database, consumers), else "
    "0; measured every 10 s by the process itself. No data: the process is gone.",
    (),
)

METRICS = (
    HTTP_REQUESTS,
    HTTP_DURATION,
    RECORDS_PROCESSED,
    RECORDS_DEAD_LETTERED,
    COMMIT_DURATION,
    CONSUMER_LAG,
    JOURNEY_DURATION,
    PAYMENT_DECISIONS,
    SERVICE_READY,
)
UNIFIED_TAGS = ("env", "service", "version")


def metric(name: str) -> Metric:
    found = next((m for m in METRICS if m.name == name), None)
    if found is None:
        raise KeyError(f"no metric {name!r}: one of {', '.join(m.name for m in METRICS)}")
    return found
