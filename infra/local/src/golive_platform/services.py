"""The hook where the application's services join the platform (filled by the services' issue)."""

from __future__ import annotations

from dataclasses import dataclass, field

from golive_platform.config import PlatformConfig


@dataclass(frozen=True)
class ServiceSpec:
    """A service process `make run` starts after Kafka, the registry and the topics are ready."""

    name: str
    argv: list[str]
    port: int | None = None
    ready_path: str = "/readyz"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://127.0.0.1:{self.port}"


def services(config: PlatformConfig) -> list[ServiceSpec]:
    """Order, payment and audit join here; the platform starts, probes and stops them like the rest."""
    del config
    return []
