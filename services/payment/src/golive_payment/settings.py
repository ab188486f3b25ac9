"""Payment's settings, from the environment (see .env.example)."""

from __future__ import annotations

from typing import Literal

from golive_eventing.settings import AuthSettings, FlagsSettings, KafkaSettings
from pydantic_settings import SettingsConfigDict

Slot = Literal["blue", "green"]  # topology.SLOTS (tests/unit/test_topology.py holds them equal)


class PaymentSettings(KafkaSettings, AuthSettings, FlagsSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    payment_database_url: str = "sqlite:///var/payment.db"
    payment_host: str = "127.0.0.1"
    payment_port: int = 8020
    instance_id: str = "0"
    # A version slot process (golive-payment-slot): which slot, the version of the rules it
    # runs (golive_payment.domain.rules.LIMITS_MAJOR), and its health port.
    payment_slot: Slot = "blue"
    payment_rules: Literal["1", "2"] = "1"
    payment_slot_port: int = 8021
