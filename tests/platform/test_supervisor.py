"""`make run`'s supervisor: what dies is restarted, with a growing pause and a line saying why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from golive_eventing.exits import EXIT_CONFIG
from golive_platform.errors import PlatformError
from golive_platform.platform import Platform, Supervisor

pytestmark = pytest.mark.unit


@dataclass
class _Parts:
    """A platform's parts as the supervisor sees them: who is dead, how, and their logs."""

    log: Path
    dead: set[str] = field(default_factory=set)
    codes: dict[str, int | None] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)  # restart raises for these
    lines: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)

    def order(self) -> list[str]:
        return ["kafka", "registry", "payment"]

    def _died(self, name: str) -> bool:
        return name in self.dead

    def exit_code(self, name: str) -> int | None:
        return self.codes.get(name)

    def own_log(self, name: str) -> Path:
        return self.log

    def restart(self, name: str) -> None:
        if name in self.failing:
            raise PlatformError(f"{name} did not become ready within 90s")
        self.dead.discard(name)
        self.restarted.append(name)

    def echo(self, line: str) -> None:
        self.lines.append(line)


def _supervisor(parts: _Parts, now: list[float], pauses: list[float]) -> Supervisor:
    return Supervisor(cast(Platform, cast(Any, parts)), clock=lambda: now[0], sleep=pauses.append)


def test_a_dead_part_is_restarted_saying_how_it_died_and_its_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("started\nFATAL the last thing it said\n")
    parts = _Parts(log, dead={"kafka"}, codes={"kafka": -9})
    pauses: list[float] = []
    assert _supervisor(parts, [0.0], pauses).check() == ["kafka"]
    assert parts.restarted == ["kafka"] and pauses == [1.0]
    said = parts.lines[0]
    assert said.startswith("kafka was killed by SIGKILL; restarting it in 1 s")
    assert "FATAL the last thing it said" in said and str(log) in said
    assert parts.lines[1] == "kafka is back"


def test_the_pause_doubles_while_it_keeps_dying_and_resets_once_it_stayed_up(
    tmp_path: Path,
) -> None:
    parts = _Parts(tmp_path / "payment.log", codes={"payment": 70})
    now: list[float] = [0.0]
    pauses: list[float] = []
    supervisor = _supervisor(parts, now, pauses)
    for _ in range(7):
        parts.dead.add("payment")
        now[0] += 5  # dies again soon after each restart
        supervisor.check()
    assert pauses == [1, 2, 4, 8, 16, 30, 30]
    assert "exited with code 70" in parts.lines[0]
    parts.dead.add("payment")
    now[0] += 61  # up for over a minute: forgiven
    supervisor.check()
    assert pauses[-1] == 1


def test_a_part_that_does_not_come_back_is_tried_again_at_the_next_check(
    tmp_path: Path,
) -> None:
    parts = _Parts(tmp_path / "registry.log", dead={"registry"}, failing={"registry"})
    now: list[float] = [0.0]
    pauses: list[float] = []
    supervisor = _supervisor(parts, now, pauses)
    assert supervisor.check() == []
    assert "registry did not come back" in parts.lines[-1]
    parts.failing.clear()
    assert supervisor.check() == ["registry"]
    assert pauses == [1, 2]


def test_a_part_that_cannot_run_as_configured_is_said_once_and_left_down(tmp_path: Path) -> None:
    log = tmp_path / "payment.log"
    log.write_text("golive-payment: cannot start as configured: no keys to verify API tokens\n")
    parts = _Parts(log, dead={"payment"}, codes={"payment": EXIT_CONFIG})
    pauses: list[float] = []
    supervisor = _supervisor(parts, [0.0], pauses)
    assert supervisor.check() == [] and supervisor.check() == []
    assert parts.restarted == [] and pauses == []
    (said,) = parts.lines
    assert said.startswith("payment cannot start as configured (exit code 78); not restarted")
    assert "no keys to verify API tokens" in said
