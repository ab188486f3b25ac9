"""How a service process ends, for whoever supervises it (make run's Supervisor, Kubernetes)."""

from __future__ import annotations

# sysexits.h EX_SOFTWARE: a consumer loop died (a fenced producer, a bug). Restart it.
EXIT_CRASH = 70
# sysexits.h EX_CONFIG: it cannot run as configured. Restarting it would fail the same way.
EXIT_CONFIG = 78
