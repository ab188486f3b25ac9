"""A DogStatsD listener for the tests: a real UDP socket on loopback taking the datagrams the
services' `datadog` client sends, parsed as the agent parses them
(`name:value|type|#tag:value,...`, several per datagram, one per line)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    name: str
    value: float
    kind: str  # c, g, d, h, ms
    tags: dict[str, str]


def parse(line: str) -> Point:
    name, _, rest = line.partition(":")
    fields = rest.split("|")
    tags: dict[str, str] = {}
    for field in fields[2:]:
        if field.startswith("#"):
            for tag in field[1:].split(","):
                key, _, value = tag.partition(":")
                tags[key] = value
    return Point(name, float(fields[0]), fields[1], tags)


class Listener:
    def __init__(self) -> None:
        self.points: list[Point] = []
        self._lock = threading.Lock()

    def take(self, datagram: bytes) -> None:
        found = [parse(line) for line in datagram.decode().splitlines() if line.strip()]
        with self._lock:
            self.points += found

    def named(self, name: str, **tags: str) -> list[Point]:
        """The points of metric `name` whose tags include `tags`."""
        with self._lock:
            return [
                p
                for p in self.points
                if p.name == name and all(p.tags.get(k) == v for k, v in tags.items())
            ]


@contextmanager
def listening() -> Iterator[tuple[Listener, int]]:
    """A listener and its UDP port (for DD_DOGSTATSD_PORT, with DD_AGENT_HOST=127.0.0.1)."""
    listener = Listener()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                datagram = sock.recv(65535)
            except TimeoutError:
                continue
            listener.take(datagram)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    try:
        yield listener, sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()
