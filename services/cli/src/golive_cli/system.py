"""The composition root of `make run`: which service processes start, with what settings."""

from __future__ import annotations

import sys
from pathlib import Path

from golive_platform.config import PlatformConfig
from golive_platform.platform import Echo, Platform
from golive_platform.postgres import ensure_database
from golive_platform.services import ServiceSpec

TOPICS = {"orders": "orders", "payments": "payments"}


def _script(name: str) -> str:
    """A console script installed beside this interpreter (the workspace's .venv/bin)."""
    return str(Path(sys.executable).parent / name)


def service_specs(
    config: PlatformConfig,
    *,
    postgres: bool = False,
    topics: dict[str, str] | None = None,
    group_prefix: str = "",
) -> list[ServiceSpec]:
    """order API, order process manager, payment, audit; SQLite under the data dir, or each service
    its own PostgreSQL database (golive_<service>) on the local server. Other `topics` than the
    default ones come with a `group_prefix` of their own (see KafkaSettings.kafka_group_prefix)."""
    names = topics or TOPICS
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": config.bootstrap_servers,
        "SCHEMA_REGISTRY_URL": config.registry_url,
        "ORDERS_TOPIC": names["orders"],
        "PAYMENTS_TOPIC": names["payments"],
        # Only when given: otherwise the prefix of the shell or .env stands.
        **({"KAFKA_GROUP_PREFIX": group_prefix} if group_prefix else {}),
    }

    def db(service: str) -> str:
        if postgres:
            return f"postgresql://golive@{config.host}:{config.postgres_port}/golive_{service}"
        return f"sqlite:///{config.data_dir / 'services' / f'{service}.db'}"

    return [
        ServiceSpec("order", [_script("golive-order")], config.order_port,
                    env={**common, "ORDER_DATABASE_URL": db("order"), "ORDER_PORT": str(config.order_port)}),
        ServiceSpec("order-pm", [_script("golive-order-process-manager")], config.order_process_manager_port,
                    env={**common, "ORDER_PROCESS_MANAGER_PORT": str(config.order_process_manager_port)}),
        ServiceSpec("payment", [_script("golive-payment")], config.payment_port,
                    env={**common, "PAYMENT_DATABASE_URL": db("payment"), "PAYMENT_PORT": str(config.payment_port)}),
        ServiceSpec("audit", [_script("golive-audit")], config.audit_port,
                    env={**common, "AUDIT_DATABASE_URL": db("audit"), "AUDIT_PORT": str(config.audit_port)}),
    ]  # fmt: skip


DATABASES = ("golive_order", "golive_payment", "golive_audit")


def prepare_postgres(config: PlatformConfig) -> None:
    """Before the services: the schemas registered, and each service's own database created."""
    register_schemas(config)
    for name in DATABASES:
        ensure_database(config, name)


def register_schemas(config: PlatformConfig, topics: dict[str, str] | None = None) -> None:
    """Services never auto-register: the project registers every committed schema version first."""
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415
    from golive_eventing.schemas import register_all  # noqa: PLC0415

    register_all(SchemaRegistryClient({"url": config.registry_url}), topics or TOPICS)


def system(config: PlatformConfig, *, with_postgres: bool = False, echo: Echo = print) -> Platform:
    return Platform(
        config,
        with_postgres=with_postgres,
        echo=echo,
        services=service_specs(config, postgres=with_postgres),
        prepare=prepare_postgres if with_postgres else register_schemas,
    )
