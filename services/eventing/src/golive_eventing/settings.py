"""Connection settings every service shares, from the environment (see .env.example)."""

from __future__ import annotations

from golive_contracts.topology import ORDERS, PAYMENTS, PII_ACCESS, RELEASES, Names

from golive_eventing.clients import Connection
from golive_eventing.serde import UNKNOWN_SCHEMA_GRACE_S


class KafkaSettings(Connection):
    """The connection (golive_eventing.clients), and the names of the topics (tests use their own)."""

    orders_topic: str = "orders"
    payments_topic: str = "payments"
    pii_access_topic: str = "pii-access"
    releases_topic: str = "releases"
    # Prepended to the id of every consumer group this service joins, and to its transactional
    # ids. Environments that share a cluster have their own topics, and need their own groups
    # too: a member of the same group on other topics still takes part in every rebalance
    # (tests, golive regress). Readers that only assign partitions join no group: rebuild and
    # redrive (the operator's tools) keep the logical name; a state restore, run by the
    # service under its own login, takes the prefix, for its group must be granted.
    kafka_group_prefix: str = ""
    # Bounded: an HTTP handler answers 503 instead of hanging when the broker is away.
    delivery_timeout_ms: int = 5000
    linger_ms: int = 1
    # How long a schema id the registry answers 404 for is retried before the record is
    # dead-lettered (golive_eventing.serde.UNKNOWN_SCHEMA_GRACE_S says why).
    unknown_schema_grace_s: float = UNKNOWN_SCHEMA_GRACE_S

    @property
    def names(self) -> Names:
        """This environment's topics and group prefix (golive_contracts.topology.Names)."""
        topics = {
            ORDERS: self.orders_topic,
            PAYMENTS: self.payments_topic,
            PII_ACCESS: self.pii_access_topic,
            RELEASES: self.releases_topic,
        }
        return Names(topics, self.kafka_group_prefix)

    def group_id(self, group: str) -> str:
        """The consumer group id of the logical group `group` (DLQ and state topic names,
        redrive headers and stored positions keep the logical name) in this environment."""
        return self.names.group_id(group)

    def topic_map(self) -> dict[str, str]:
        """Logical topic (as the contracts name it) -> the topic in this environment."""
        return dict(self.names.topics)
