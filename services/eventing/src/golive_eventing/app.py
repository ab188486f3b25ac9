"""What every service shares: a registry client, the serde, health endpoints, consumer threads."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from types import FrameType

import uvicorn
from confluent_kafka import KafkaException
from fastapi import FastAPI, Response
from golive_contracts.metrics import SERVICE_READY
from pydantic import BaseModel, ValidationError

from golive_eventing import clients, logs, metrics
from golive_eventing.exits import EXIT_CONFIG, EXIT_CRASH, ConfigError
from golive_eventing.health import Readiness
from golive_eventing.logs import LogSettings
from golive_eventing.loop import Runner
from golive_eventing.serde import EventSerde
from golive_eventing.settings import KafkaSettings

log = logging.getLogger(__name__)


@contextmanager
def configured(name: str) -> Iterator[None]:
    """Settings that do not validate (an unknown trace exporter among them), no way to verify
    API tokens, a malformed flags file, or a Kafka resource the login is not granted: one line
    naming what is wrong on stderr, and exit code 78, instead of a traceback."""
    try:
        yield
    except (ValidationError, ConfigError) as exc:
        print(f"{name}: cannot start as configured: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG) from None
    except KafkaException as exc:
        refused = clients.not_granted(exc)
        if refused is None:
            raise
        why = f"Kafka refused it: {refused.str()} (golive acls apply; docs/security.md)"
        print(f"{name}: cannot start as configured: {why}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG) from None


def make_serde(settings: KafkaSettings) -> EventSerde:
    return EventSerde(
        clients.registry(settings),
        settings.topic_map(),
        unknown_schema_grace_s=settings.unknown_schema_grace_s,
    )


class ReadinessReport(BaseModel):
    ready: bool
    checks: dict[str, bool]


READY_EVERY_S = 10.0


def _report_readiness(readiness: Readiness, every_s: float) -> None:
    """golive.service.ready, from the checks /readyz answers with (a monitor's no-data alert
    catches a process that is gone)."""
    measured = metrics.get()
    while True:
        try:
            ready = all(readiness.report().values())
        except Exception:  # a check that fails is not ready
            ready = False
        measured.gauge(SERVICE_READY, 1 if ready else 0)
        time.sleep(every_s)  # the reporting interval, not a synchronisation


def add_health(app: FastAPI, readiness: Readiness) -> None:
    if metrics.get().on:
        threading.Thread(
            target=_report_readiness,
            args=(readiness, READY_EVERY_S),
            name="readiness-report",
            daemon=True,
        ).start()

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Broker, registry, database reachable and the consumer joined its group",
        response_model=ReadinessReport,
        responses={503: {"model": ReadinessReport}},
    )
    def readyz(response: Response) -> ReadinessReport:
        checks = readiness.report()
        ready = all(checks.values())
        if not ready:
            response.status_code = 503
        return ReadinessReport(ready=ready, checks=checks)


class RunnerThreads:
    """Consumer loops on their own threads, started and stopped with the app (SIGTERM included).

    Crash-only: a loop that dies (a fenced producer, a bug) takes the process down with
    EXIT_CRASH, so the supervisor restarts it, instead of a process that answers HTTP and
    consumes nothing.
    """

    def __init__(self, runners: Sequence[Runner]) -> None:
        self.runners = list(runners)
        self.threads = [
            threading.Thread(target=_crash_only(r), name=f"{r.group}-loop", daemon=True)
            for r in self.runners
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        for runner in self.runners:
            runner.stop()
        for thread in self.threads:
            thread.join(timeout_s)


def _crash_only(runner: Runner) -> Callable[[], None]:
    def run() -> None:
        try:
            runner.run()
        except clients.AccessRefusedError as exc:
            log.critical(
                "%s; exiting, not to be restarted until the grants or the login are fixed "
                "(golive acls apply; docs/security.md)",
                exc,
            )
            logging.shutdown()
            os._exit(EXIT_CONFIG)
        except BaseException:
            log.critical(
                "%s: consumer loop died; exiting so it restarts", runner.group, exc_info=True
            )
            logging.shutdown()
            os._exit(EXIT_CRASH)

    return run


def runner_lifespan(
    runners: RunnerThreads,
    *closers: Callable[[], None],
    starters: Sequence[Callable[[], None]] = (),
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the consumer loops with the app, and `starters`; on shutdown (SIGTERM) stop the
    loops, then close the rest."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for start in starters:
            start()
        runners.start()
        yield
        runners.stop()
        for close in closers:
            close()

    return lifespan


# On SIGTERM uvicorn stops accepting and waits for the requests in hand, then stops the app
# (its consumers close, its producers flush): this long at most, well inside the platform's
# stop timeout (golive_platform.config: then SIGKILL, and nothing is closed).
GRACEFUL_SHUTDOWN_S = 10
# An idle keep-alive connection is closed after this long: longer than the idle timeout of the
# load balancers and clients in front (60 s is common), so the other end closes first. Shorter
# (uvicorn's default is 5 s), a client that reuses a connection just as the server closes it
# gets "Remote end closed connection without response" (make load met one in 15,732), and a
# load balancer answers 502.
KEEP_ALIVE_S = 65


# The collector's youngest generation is collected once this many more objects it tracks were
# made than freed. CPython's 700 is crossed by a service's every batch or burst of requests
# in flight, not by garbage: under wrk the order process collected it 725 times in 15 s, each
# one walking what was in flight, and those kept there promoted to be walked again.
# At 10,000, twice (docs/performance-journal.md, "The collector"). Cyclic garbage waits that
# much longer to be freed: a few MB at most.
YOUNG_GC_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once a service is built, before it serves: what it made to start (modules, classes,
    the app: 100,000 to 140,000 objects the collector tracks) is frozen out of every later
    collection, so a full one walks only what the service made since (the order process under
    load: 11-40 ms instead of 97-143 ms, the whole process stopped), after a collection, so no
    garbage is frozen for good; and the young generation is collected less often
    (YOUNG_GC_THRESHOLD)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, middle, old)


def serve(app: FastAPI, host: str, port: int, on_exit: Callable[[], None] | None = None) -> None:
    """Run a service process: its logs as golive_eventing.logs says (JSON lines with trace ids,
    or text at a terminal), then uvicorn. `on_exit` runs as soon as the process is asked to
    stop, before the requests in hand are waited for: to answer those that would wait (a long
    poll) at once."""
    settings = LogSettings()
    logs.configure(settings)
    settle_heap()
    _Server(server_config(app, host, port, settings.log_level), on_exit).run()


def server_config(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Config:
    """How every service's HTTP server runs (serve)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None] | None) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.on_exit is not None and not self.should_exit:
            self.on_exit()
        super().handle_exit(sig, frame)
