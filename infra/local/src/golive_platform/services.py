"""How the application's services join the platform: what to run, where it listens, how to probe it."""

from __future__ import annotations

from dataclasses import dataclass, field


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
