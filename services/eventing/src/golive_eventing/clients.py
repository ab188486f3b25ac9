"""The one place that builds Kafka and schema-registry clients, from one set of settings.

Every producer, consumer, admin client and registry client in the project is made here, so
pointing the whole system at another cluster (SASL_SSL, Confluent Cloud) is a matter of
settings, never of code (docs/security.md). Nothing else writes `bootstrap.servers`:
tests/unit/test_clients.py fails on any other literal client configuration.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, Literal, Self

import httpx
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Connection(BaseSettings):
    """Where Kafka and the registry are and who this process is to them.

    From the environment (or .env): KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL,
    KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SSL_CA_LOCATION,
    SCHEMA_REGISTRY_URL, SCHEMA_REGISTRY_USER_INFO (`key:secret`), SCHEMA_REGISTRY_CA_LOCATION.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # A CA bundle for a broker certificate no system CA signed (the system's store otherwise).
    kafka_ssl_ca_location: str | None = None
    schema_registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    schema_registry_user_info: SecretStr | None = None
    schema_registry_ca_location: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        info = self.schema_registry_user_info
        if info is not None and ":" not in info.get_secret_value():
            raise ValueError("SCHEMA_REGISTRY_USER_INFO must be `key:secret`")
        return self

    @classmethod
    def exactly(cls, **fields: Any) -> Self:
        """These values and the defaults for the rest, whatever the environment or .env say."""
        defaults = {name: field.default for name, field in cls.model_fields.items()}
        return cls(**(defaults | fields))

    @property
    def principal(self) -> str | None:
        """Who the broker sees: the SASL user, or None on an unauthenticated listener."""
        return (
            self.kafka_sasl_username if self.kafka_security_protocol.startswith("SASL_") else None
        )

    def env(self) -> dict[str, str]:
        """This connection as the environment of a process that reads it back (make run, tests)."""
        out: dict[str, str] = {}
        for name in Connection.model_fields:
            value = getattr(self, name)
            if value is not None:
                secret = isinstance(value, SecretStr)
                out[name.upper()] = value.get_secret_value() if secret else str(value)
        return out

    def registry_auth(self) -> tuple[str, str] | None:
        """The registry's basic-auth pair, for plain HTTP calls (readiness)."""
        if self.schema_registry_user_info is None:
            return None
        user, _, secret = self.schema_registry_user_info.get_secret_value().partition(":")
        return user, secret


def kafka_config(connection: Connection, **extra: Any) -> dict[str, Any]:
    """librdkafka's configuration: the connection's part, then the caller's own keys."""
    conf: dict[str, Any] = {
        "bootstrap.servers": connection.kafka_bootstrap_servers,
        "security.protocol": connection.kafka_security_protocol,
    }
    if connection.kafka_security_protocol.startswith("SASL_"):
        assert connection.kafka_sasl_password is not None  # the validator made sure
        conf |= {
            "sasl.mechanism": connection.kafka_sasl_mechanism,
            "sasl.username": connection.kafka_sasl_username,
            "sasl.password": connection.kafka_sasl_password.get_secret_value(),
        }
    if connection.kafka_ssl_ca_location and connection.kafka_security_protocol.endswith("SSL"):
        conf["ssl.ca.location"] = connection.kafka_ssl_ca_location
    return conf | extra


# What the broker refuses for good, whatever the retries: said once per client, in words.
REFUSED = {
    KafkaError._AUTHENTICATION: "refused the login of",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "refused a topic to",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "refused a consumer group to",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "refused a transactional id to",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "refused a cluster operation to",
}
# Of those, the ones a running service stops for: the login was accepted, the ACLs say no.
# A refused login is retried (said once): a restarting broker can refuse one while it loads
# its SCRAM credentials.
NOT_GRANTED = frozenset(REFUSED) - {KafkaError._AUTHENTICATION}


class AccessRefusedError(RuntimeError):
    """The broker refused this principal a resource for good: the grants or the login are
    wrong (golive acls apply, docs/security.md), and no retry changes that."""


def login_name(connection: Connection) -> str:
    """Who `connection` logs in as, for a message about a refusal."""
    return connection.principal or "an unauthenticated client"


def not_granted(exc: BaseException) -> KafkaError | None:
    """The broker's refusal `exc` carries (a topic, group, transactional id or cluster
    operation not granted), if it carries one."""
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if isinstance(error, KafkaError) and error.code() in NOT_GRANTED:
        return error
    return None


log = logging.getLogger(__name__)
# librdkafka's own log lines (served by poll), each kind once in a while: a refused login is
# otherwise one line per attempt, several a second, for as long as it lasts.
LIBRDKAFKA = logging.getLogger("librdkafka")
REPEAT_AFTER_S = 300.0


class _OnceInAWhile(logging.Filter):
    """Pass a librdkafka line unless the same one (timings aside) passed in the last while."""

    _timings = re.compile(r"\(after \d+ms in state \w+\)|\d+ms|\d+ attempts?")

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = self._timings.sub("", record.getMessage())
        now = time.monotonic()
        if now - self._last.get(kind, -REPEAT_AFTER_S) < REPEAT_AFTER_S:
            return False
        self._last[kind] = now
        return True


LIBRDKAFKA.addFilter(_OnceInAWhile())


def _reporting(
    connection: Connection, callback: Callable[[KafkaError], None] | None
) -> Callable[[KafkaError], None]:
    """An error_cb that says each refusal once, then hands every error to the caller's."""
    said: set[int] = set()
    who = login_name(connection)

    def on_error(error: KafkaError) -> None:
        code = error.code()
        if code in REFUSED and code not in said:
            said.add(code)
            log.error(
                "Kafka at %s %s %r: %s (credentials and ACLs: docs/security.md)",
                connection.kafka_bootstrap_servers,
                REFUSED[code],
                who,
                error.str(),
            )
        if callback is not None:
            callback(error)

    return on_error


def _client_config(connection: Connection, extra: dict[str, Any]) -> dict[str, Any]:
    conf = kafka_config(connection, **extra)
    conf["error_cb"] = _reporting(connection, extra.get("error_cb"))
    conf.setdefault("logger", LIBRDKAFKA)
    return conf


def producer(connection: Connection, **extra: Any) -> Producer:
    return Producer(_client_config(connection, extra))


def consumer(connection: Connection, **extra: Any) -> Consumer:
    return Consumer(_client_config(connection, extra))


def admin(
    connection: Connection, *, logger: logging.Logger | None = None, **extra: Any
) -> AdminClient:
    """An admin client; `logger` takes librdkafka's log lines (connection refusals while a
    broker starts are expected by readiness polls, and would otherwise go to stderr)."""
    conf = _client_config(connection, extra)
    if logger is not None:
        conf["logger"] = logger
    return AdminClient(conf)


def registry_config(connection: Connection) -> dict[str, Any]:
    conf: dict[str, Any] = {"url": connection.schema_registry_url}
    if connection.schema_registry_user_info is not None:
        conf["basic.auth.credentials.source"] = "USER_INFO"
        conf["basic.auth.user.info"] = connection.schema_registry_user_info.get_secret_value()
    if connection.schema_registry_ca_location:
        conf["ssl.ca.location"] = connection.schema_registry_ca_location
    return conf


def registry(connection: Connection) -> SchemaRegistryClient:
    return SchemaRegistryClient(registry_config(connection))


def registry_http(connection: Connection, timeout_s: float = 10.0) -> httpx.Client:
    """The registry's REST API for what SchemaRegistryClient does not offer (the compatibility
    gate's dry runs, readiness), with the same URL, credentials and CA."""
    return httpx.Client(
        base_url=connection.schema_registry_url.rstrip("/"),
        auth=connection.registry_auth(),
        verify=connection.schema_registry_ca_location or True,
        timeout=timeout_s,
    )
