"""Console entry point: golive-audit (recorder and API in one process)."""

from __future__ import annotations

from golive_eventing.app import serve

from golive_audit.service import AuditSettings, audit_app


def main() -> None:
    settings = AuditSettings()
    serve(audit_app(settings), settings.audit_host, settings.audit_port)
