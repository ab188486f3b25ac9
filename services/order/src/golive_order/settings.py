"""The order service's settings, from the environment (see .env.example)."""

from __future__ import annotations

from golive_eventing.settings import AuthSettings, FlagsSettings, KafkaSettings
from pydantic_settings import SettingsConfigDict


class OrderSettings(KafkaSettings, AuthSettings, FlagsSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    order_database_url: str = "sqlite:///var/order.db"
    # Idempotency-Keys: by default beside the read model; for SQLite in a file of their own, so a
    # POST's writes never queue behind the projection's for SQLite's single write lock.
    order_keys_database_url: str | None = None
    order_host: str = "127.0.0.1"
    order_port: int = 8000
    order_process_manager_port: int = 8010
    instance_id: str = "0"
    # A GET right after a 202 waits this long, at most, for the projection to catch up.
    read_your_writes_timeout_s: float = 5.0
    # GET /orders/{id} with If-None-Match and Prefer: wait=N waits at most this long...
    order_long_poll_max_s: int = 30
    # ...woken when this process's projection changes the order, and reading it again this
    # often besides (another instance's projection, sharing the database, wakes nobody here).
    order_long_poll_recheck_s: float = 0.5
    # A claimed Idempotency-Key whose request died is taken over after this long.
    idempotency_lease_s: float = 15.0
    max_body_bytes: int = 64 * 1024
    # An order with no payment outcome this long after it was placed is cancelled (payment_timeout).
    payment_timeout_s: float = 30.0

    @property
    def keys_database_url(self) -> str:
        if self.order_keys_database_url:
            return self.order_keys_database_url
        if self.order_database_url.startswith("sqlite:///") and self.order_database_url.endswith(
            ".db"
        ):
            return self.order_database_url.removesuffix(".db") + "-keys.db"
        return self.order_database_url

    @property
    def version(self) -> str:
        return "0.1.0"
