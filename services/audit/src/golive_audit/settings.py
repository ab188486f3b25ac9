"""Audit's settings, from the environment (see .env.example)."""

from __future__ import annotations

from golive_eventing.auth import AuthSettings
from golive_eventing.settings import KafkaSettings
from pydantic_settings import SettingsConfigDict


class AuditSettings(KafkaSettings, AuthSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    audit_database_url: str = "sqlite:///var/audit.db"
    audit_host: str = "127.0.0.1"
    audit_port: int = 8030
    instance_id: str = "0"
