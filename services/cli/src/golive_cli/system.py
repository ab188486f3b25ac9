"""The running system, described once: which service processes, with which settings, on which
cluster and names. `make run` starts it; so do the e2e and fault tests and `golive regress`, each
on topics and consumer groups of its own (golive_contracts.topology.Names)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic
from golive_contracts import access
from golive_contracts.scopes import Scope
from golive_contracts.topology import GROUPS, SLOTS, Names
from golive_eventing import clients
from golive_eventing.clients import Connection
from golive_platform import acls
from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError
from golive_platform.platform import Echo, Platform
from golive_platform.postgres import ensure_database
from golive_platform.services import ServiceSpec
from golive_platform.tokens import bearer
from golive_platform.viewer import exporting as viewer_exporting

from golive_cli.deploy import SLOT_RULES

DATABASES = ("golive_order", "golive_payment", "golive_audit")

# Each service process logs in as the service it belongs to (order-pm: order).
PROCESS_SERVICE = {g.process: g.service for g in GROUPS}


@dataclass(frozen=True)
class Cluster:
    """A broker and its schema registry, and how to reach them (golive_eventing.clients)."""

    connection: Connection
    # Each service's own login where the cluster has one per service (the local platform);
    # elsewhere every process uses `connection`.
    services: Mapping[str, Connection] = field(default_factory=dict)

    def service(self, name: str) -> Connection:
        return self.services.get(name, self.connection)

    @property
    def bootstrap(self) -> str:
        return self.connection.kafka_bootstrap_servers

    @property
    def registry_url(self) -> str:
        return self.connection.schema_registry_url

    @classmethod
    def of(cls, config: PlatformConfig) -> Cluster:
        """The local platform of `config`: the operator's login, and each service's."""
        return cls(config.connection(), config.service_logins())

    @classmethod
    def chosen(cls, bootstrap: str | None = None, registry: str | None = None) -> Cluster:
        """What a command acts on: the local platform, unless --bootstrap names another Kafka
        or --registry another registry; their security and credentials then come from the
        environment (KAFKA_SECURITY_PROTOCOL, SCHEMA_REGISTRY_USER_INFO and the rest)."""
        local = cls.of(PlatformConfig())
        if bootstrap is None and registry is None:
            return local
        given = Connection()
        at, services = local.connection, dict(local.services)
        if bootstrap is not None:  # another Kafka: one login, from the environment
            kafka = {
                f: getattr(given, f) for f in Connection.model_fields if f.startswith("kafka_")
            }
            at, services = at.model_copy(update={**kafka, "kafka_bootstrap_servers": bootstrap}), {}
        if registry is not None:
            own = {f: getattr(given, f) for f in Connection.model_fields if f.startswith("schema_")}
            update = {**own, "schema_registry_url": registry}
            at = at.model_copy(update=update)
            services = {s: c.model_copy(update=update) for s, c in services.items()}
        return cls(at, services)


# A token from your identity provider, for the CLI's calls to the APIs of a deployed system.
TOKEN_ENV = "GOLIVE_API_TOKEN"  # noqa: S105 (the variable's name, not a secret)


def api_headers(
    config: PlatformConfig, *scopes: Scope, subject: str = "golive-cli"
) -> dict[str, str]:
    """The Authorization of the CLI's API calls: $GOLIVE_API_TOKEN if set, else a token of the
    local platform's issuer (golive_platform.tokens) for `scopes`."""
    return bearer(os.environ.get(TOKEN_ENV) or config.issuer().token(*scopes, subject=subject))


class TopicSetupError(RuntimeError):
    """An environment's topics could not be made."""


def _script(name: str) -> str:
    """A console script installed beside this interpreter (the workspace's .venv/bin)."""
    return str(Path(sys.executable).parent / name)


def service_specs(
    config: PlatformConfig,
    cluster: Cluster | None = None,
    names: Names | None = None,
    *,
    postgres: bool = False,
    env: Mapping[str, str] | None = None,
    slots: Sequence[str] = SLOTS,
) -> list[ServiceSpec]:
    """order API, order process manager, payment (router, read model, API) and its two version
    slots, audit; SQLite under the data dir, or each service
    its own PostgreSQL database (golive_<service>) on the local server. The cluster defaults to the
    platform of `config`, the names to the topology's own; a group prefix is set only when the
    names have one (otherwise the shell's or .env's stands). `env` goes to every process; `slots`
    are the version slots that run (a system whose route never names the other one, as a test's
    or a replay's, need not start it)."""
    at = cluster or Cluster.of(config)
    names = names or Names()
    common = {
        **config.issuer().env(),  # API tokens: verified with the platform's issuer keys
        "FLAGS_FILE": str(config.ensure_flags()),
        **{setting.upper(): topic for setting, topic in names.settings().items()},
        **({"KAFKA_GROUP_PREFIX": names.group_prefix} if names.group_prefix else {}),
        **(viewer_exporting(config) if config.viewers else {}),
        **(env or {}),
    }

    def db(service: str) -> str:
        if postgres:
            return f"postgresql://golive@{config.host}:{config.postgres_port}/golive_{service}"
        return f"sqlite:///{config.data_dir / 'services' / f'{service}.db'}"

    def spec(name: str, script: str, port: int, **own: str) -> ServiceSpec:
        login = at.service(PROCESS_SERVICE[name]).env()
        return ServiceSpec(name, [_script(script)], port, env={**login, **common, **own})

    return [
        spec("order", "golive-order", config.order_port,
             ORDER_DATABASE_URL=db("order"), ORDER_PORT=str(config.order_port)),
        spec("order-pm", "golive-order-process-manager", config.order_process_manager_port,
             ORDER_PROCESS_MANAGER_PORT=str(config.order_process_manager_port)),
        spec("payment", "golive-payment", config.payment_port,
             PAYMENT_DATABASE_URL=db("payment"), PAYMENT_PORT=str(config.payment_port)),
        *(spec(f"payment-{slot}", "golive-payment-slot", port, PAYMENT_SLOT=slot,
               PAYMENT_RULES=SLOT_RULES[slot], PAYMENT_SLOT_PORT=str(port))
          for slot, port in (("blue", config.payment_blue_port),
                             ("green", config.payment_green_port)) if slot in slots),
        spec("audit", "golive-audit", config.audit_port,
             AUDIT_DATABASE_URL=db("audit"), AUDIT_PORT=str(config.audit_port)),
    ]  # fmt: skip


def create_topics(
    cluster: Cluster, names: Names, partitions: int, replication: int = 1
) -> list[str]:
    """Every topic the topology derives for these names (event topics, dead letters, compacted
    changelogs), each service's ACLs on them where the cluster has a login per service, then
    the committed schemas registered for them; the topics' names. For an
    environment of one's own on a shared cluster; `golive topics apply` manages the real ones."""
    from golive_eventing.schemas import register_all  # noqa: PLC0415

    needs = names.needs()
    compacted = {"cleanup.policy": "compact"}
    new = [
        NewTopic(n.name, partitions, replication, config=compacted if n.compacted else {})
        for n in needs
    ]
    admin = clients.admin(cluster.connection)
    try:
        for future in admin.create_topics(new, operation_timeout=15).values():
            future.result(timeout=20)
    except KafkaException as exc:
        raise TopicSetupError(f"could not create topics on {cluster.bootstrap}: {exc}") from exc
    if cluster.services:  # a cluster with a login per service: each may do only its part
        try:
            acls.apply(admin, access.grants(names), access.resources(names))
        except PlatformError as exc:
            raise TopicSetupError(str(exc)) from exc
    register_all(clients.registry(cluster.connection), dict(names.topics))
    return [n.name for n in needs]


@contextmanager
def started(
    config: PlatformConfig, specs: list[ServiceSpec], echo: Echo = lambda _line: None
) -> Iterator[Platform]:
    """These service processes, started together and ready; stopped on exit."""
    platform = Platform(config, services=specs, echo=echo)
    platform.start_services()
    try:
        yield platform
    finally:
        platform.stop_services()


def prepare_postgres(config: PlatformConfig) -> None:
    """Before the services: the schemas registered, and each service's own database created."""
    register_schemas(config)
    for name in DATABASES:
        ensure_database(config, name)


def register_schemas(config: PlatformConfig, registry: Connection | None = None) -> None:
    """Services never auto-register: the project registers every committed schema version first
    (into the local platform's registry, unless `registry` names another)."""
    from golive_eventing.schemas import register_all  # noqa: PLC0415

    register_all(clients.registry(registry or config.connection()), dict(Names().topics))


def system(config: PlatformConfig, *, with_postgres: bool = False, echo: Echo = print) -> Platform:
    """`make run`: the platform and every service process on the default names."""
    return Platform(
        config,
        with_postgres=with_postgres,
        echo=echo,
        services=service_specs(config, postgres=with_postgres),
        prepare=prepare_postgres if with_postgres else register_schemas,
    )
