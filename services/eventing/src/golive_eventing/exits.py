"""How a service process ends, for whoever supervises it (make run's Supervisor, Kubernetes)."""

from __future__ import annotations

# sysexits.h EX_SOFTWARE: a consumer loop died (a fenced producer, a bug). Restart it.
EXIT_CRASH = 70
# sysexits.h EX_CONFIG: it cannot run as configured. Restarting it would fail the same way.
EXIT_CONFIG = 78


class ConfigError(ValueError):
    """What a process was given cannot work (a setting, a file, a key): it ends with EXIT_CONFIG
    and this message (golive_eventing.app.configured), not a traceback. Each kind of
    configuration has its own subclass beside what reads it; declared here, so a process that
    does not read tokens or flags need not import what does."""
