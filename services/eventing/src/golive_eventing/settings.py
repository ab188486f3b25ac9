"""Settings every service shares, from the environment (see .env.example): the connection, how
tokens are verified, where the flags are. Declared apart from what uses them, so a process that
verifies no token or reads no flag does not load what does (tests/unit/test_bootstrap.py)."""

from __future__ import annotations

from pathlib import Path

from golive_contracts.topology import ORDERS, PAYMENTS, PII_ACCESS, RELEASES, Names
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    # Every producer here is waited on: the API's by a client for its 202, a hop's by the next
    # hop (a transaction's commit sends what lingers at once anyway). Sent at once, a POST
    # answered sooner in each of nine alternating pairs at 20 orders/s; under wrk's load, no
    # cost showed beyond the host's spread (docs/performance-journal.md, 2026-12-03, night).
    linger_ms: int = 0
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


LOCAL_ISSUER = "golive-local"
AUDIENCE = "golive"


class AuthSettings(BaseSettings):
    """How a service verifies bearer tokens (AUTH_*, see .env.example and docs/security.md)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    auth_issuer: str = LOCAL_ISSUER
    auth_audience: str = AUDIENCE
    # The identity provider's keys, e.g. https://idp.example.com/.well-known/jwks.json ...
    auth_jwks_url: str | None = None
    # ... or a JWKS file (make run: <credentials dir>/token-keys.json).
    auth_jwks_file: Path | None = None
    auth_algorithms: tuple[str, ...] = ("ES256", "RS256")
    # Clock skew tolerated on exp/nbf/iat, in seconds.
    auth_leeway_s: int = 30

    @model_validator(mode="after")
    def _one_key_source(self) -> AuthSettings:
        if self.auth_jwks_url and self.auth_jwks_file:
            raise ValueError("set AUTH_JWKS_URL or AUTH_JWKS_FILE, not both")
        return self


class FlagsSettings(BaseSettings):
    """Where the flags come from (FLAGS_FILE; see .env.example and docs/flags.md)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # flagd's format (infra/flags/flags.json); `make run` keeps the running copy under var/.
    flags_file: Path | None = None
