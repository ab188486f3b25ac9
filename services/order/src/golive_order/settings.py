"""The order service's settings, from the environment (see .env.example)."""

from __future__ import annotations

from golive_eventing.settings import KafkaSettings
from pydantic_settings import SettingsConfigDict


class OrderSettings(KafkaSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    order_database_url: str = "sqlite:///var/order.db"
    order_host: str = "127.0.0.1"
    order_port: int = 8000
    order_process_manager_port: int = 8010
    instance_id: str = "0"
    # A GET right after a 202 waits this long, at most, for the projection to catch up.
    read_your_writes_timeout_s: float = 5.0
    # A claimed Idempotency-Key whose request died is taken over after this long.
    idempotency_lease_s: float = 15.0
    max_body_bytes: int = 64 * 1024

    @property
    def version(self) -> str:
        return "0.1.0"
