"""Payment's settings, from the environment (see .env.example)."""

from __future__ import annotations

from golive_eventing.auth import AuthSettings
from golive_eventing.settings import KafkaSettings
from pydantic_settings import SettingsConfigDict


class PaymentSettings(KafkaSettings, AuthSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    payment_database_url: str = "sqlite:///var/payment.db"
    payment_host: str = "127.0.0.1"
    payment_port: int = 8020
    instance_id: str = "0"
