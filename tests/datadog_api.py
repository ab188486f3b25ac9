"""A stand-in for Datadog's API v1 (a paid SaaS we cannot run here) for `golive datadog apply`:
dashboards, monitors and SLOs kept in memory, answered in the API's own JSON, every request
kept with its keys. The client on the other side is the real datadog-api-client. Loopback."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse


@dataclass
class Api:
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitors: dict[int, dict[str, Any]] = field(default_factory=dict)
    slos: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p][2:]  # after api/v1
        kind, rest = parts[0], parts[1:]
        handler = {"dashboard": self._dashboard, "monitor": self._monitor, "slo": self._slo}.get(
            kind
        )
        if handler is None:
            return 404, {"errors": ["no such endpoint"]}
        return 200, handler(method, rest, body)

    def _dashboard(self, method: str, rest: list[str], body: Any) -> Any:
        if method == "GET":
            if rest:
                return self.dashboards[rest[0]]
            return {
                "dashboards": [{"id": k, "title": v["title"]} for k, v in self.dashboards.items()]
            }
        key = rest[0] if rest else f"abc-{next(self.ids)}"
        self.dashboards[key] = {**body, "id": key}
        return self.dashboards[key]

    def _monitor(self, method: str, rest: list[str], body: Any) -> Any:
        if method == "GET":
            return list(self.monitors.values())
        key = int(rest[0]) if rest else next(self.ids)
        self.monitors[key] = {**self.monitors.get(key, {}), **body, "id": key}
        return self.monitors[key]

    def _slo(self, method: str, rest: list[str], body: Any) -> Any:
        if method == "GET":
            return {"data": list(self.slos.values())}
        key = rest[0] if rest else f"slo{next(self.ids)}"
        self.slos[key] = {**body, "id": key}
        return {"data": [self.slos[key]]}


@contextmanager
def serving() -> Iterator[tuple[Api, str]]:
    api = Api()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length)) if length else None
            path = urlparse(self.path).path
            keys = {k: self.headers.get(k, "") for k in ("DD-API-KEY", "DD-APPLICATION-KEY")}
            with lock:
                api.requests.append((self.command, self.path, keys, body))
                status, answer = api.answer(self.command, path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
