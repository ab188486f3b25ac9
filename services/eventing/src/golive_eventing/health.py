"""Liveness and readiness: /healthz says the process runs; /readyz that its dependencies answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from golive_eventing import clients
from golive_eventing.loop import Runner
from golive_eventing.settings import KafkaSettings

Check = Callable[[], bool]


def broker_check(settings: KafkaSettings) -> Check:
    admin = clients.admin(settings)

    def check() -> bool:
        try:
            return bool(admin.list_topics(timeout=1.0).brokers)
        except Exception:  # any failure to get metadata means "not ready"
            return False

    return check


def registry_check(settings: KafkaSettings) -> Check:
    # /schemas/types is constant and small; /subjects lists every subject (up to 1,000 on
    # Apicurio), once a second per service.
    http = clients.registry_http(settings, timeout_s=1.0)

    def check() -> bool:
        try:
            return http.get("/schemas/types").status_code == 200
        except httpx.HTTPError:
            return False

    return check


@dataclass
class Readiness:
    """Named checks, evaluated at most once per `ttl_s` so probes stay cheap."""

    checks: dict[str, Check]
    ttl_s: float = 1.0
    _cached: tuple[float, dict[str, bool]] = field(default=(0.0, {}))

    def report(self) -> dict[str, bool]:
        now = time.monotonic()
        if now - self._cached[0] > self.ttl_s:
            self._cached = (now, {name: check() for name, check in self.checks.items()})
        return self._cached[1]


def service_readiness(
    settings: KafkaSettings, runners: Sequence[Runner], database: Check | None = None
) -> Readiness:
    """The checks every service answers /readyz with: broker, registry, database (its adapter's
    check, golive_eventing.db.database_check), its consumers."""
    checks: dict[str, Check] = {
        "broker": broker_check(settings),
        "registry": registry_check(settings),
    }
    if database is not None:
        checks["database"] = database
    checks["consumer"] = lambda: all(runner.joined.is_set() for runner in runners)
    return Readiness(checks)
