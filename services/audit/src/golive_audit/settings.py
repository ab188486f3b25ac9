"""Audit's settings, from the environment (see .env.example)."""

from __future__ import annotations

from golive_eventing.lag import LAG_INTERVAL_S
from golive_eventing.settings import AuthSettings, KafkaSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class AuditSettings(KafkaSettings, AuthSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    audit_database_url: str = "sqlite:///var/audit.db"
    audit_host: str = "127.0.0.1"
    audit_port: int = 8030
    instance_id: str = "0"
    # How often the lag watch measures every group's lag (golive_eventing.lag).
    lag_interval_s: float = Field(default=LAG_INTERVAL_S, gt=0)
