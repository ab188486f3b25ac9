"""Console entry point: golive-audit (recorder and API in one process)."""

from __future__ import annotations

import uvicorn

from golive_audit.service import AuditSettings, audit_app


def main() -> None:
    settings = AuditSettings()
    uvicorn.run(
        audit_app(settings), host=settings.audit_host, port=settings.audit_port, log_level="warning"
    )
