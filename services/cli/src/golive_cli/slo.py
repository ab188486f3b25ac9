"""SLO gates for a load run: declared in one file (load/slo.toml), checked against locust's
statistics (its `<prefix>_stats.csv`). A gate holds a request's percentile under a limit, or
its share of failures under a rate, over at least so many requests: a run where too little
happened fails too. `make load` and the pipeline's load-smoke stage exit non-zero on a miss,
naming the gate and by how much it missed."""

from __future__ import annotations

import csv
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The percentiles locust writes in its stats CSV, by their column names.
PERCENTILES = ("50", "66", "75", "80", "90", "95", "98", "99", "99.9", "99.99", "100")
ALL = "all"  # a gate's request: every request of the run (locust's "Aggregated" row)


class SloFileError(ValueError):
    """The SLO file cannot be read as gates: its message names the file and line."""


class Profile(BaseModel):
    """How hard a run pushes: locust's users, their spawn rate, and the run's length."""

    model_config = ConfigDict(extra="forbid")

    users: int = Field(gt=0)
    spawn_rate: float = Field(gt=0)
    run_time_s: int = Field(gt=0)


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    request: str = Field(min_length=1)  # locust's "<type> <name>", or "all"
    percentile: str | None = None
    max_ms: float | None = Field(default=None, gt=0)
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    min_count: int = Field(default=1, ge=1)
    # The profiles it gates (all when unset): a latency objective for a full run need not hold
    # for a short smoke run beside other jobs.
    profiles: list[str] | None = None

    @model_validator(mode="after")
    def _one_objective(self) -> Self:
        latency = self.percentile is not None or self.max_ms is not None
        if latency == (self.max_error_rate is not None):
            raise ValueError("a gate has either percentile and max_ms, or max_error_rate")
        if latency and (self.percentile is None or self.max_ms is None):
            raise ValueError("a latency gate needs both percentile and max_ms")
        if self.percentile is not None and self.percentile not in PERCENTILES:
            raise ValueError(
                f"percentile {self.percentile!r} is not one of {', '.join(PERCENTILES)}"
            )
        return self


class SloFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profiles: dict[str, Profile]
    gate: list[Gate] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_profiles(self) -> Self:
        for i, gate in enumerate(self.gate):
            unknown = set(gate.profiles or ()) - set(self.profiles)
            if unknown:
                raise ValueError(f"gate {i} ({gate.name}) names no profile {sorted(unknown)}")
        return self

    def gates(self, profile: str) -> list[Gate]:
        return [g for g in self.gate if g.profiles is None or profile in g.profiles]


def load(path: Path) -> SloFile:
    """The gates and profiles of `path`; a SloFileError naming the line that is wrong."""
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise SloFileError(f"{path}:{found.group(1) if found else 1}: not TOML: {exc}") from None
    try:
        return SloFile.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        line = _line_of(text, error["loc"])
        raise SloFileError(f"{path}:{line}: {where}: {error['msg']}") from None


def _line_of(text: str, loc: tuple[int | str, ...]) -> int:
    """The line a validation error's location points at: the key inside its table (or array
    item), else the table's header, else the first line."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    if len(loc) >= 2 and loc[0] == "gate" and isinstance(loc[1], int):
        headers = [i for i, line in enumerate(lines) if line.strip() == "[[gate]]"]
        if loc[1] < len(headers):
            start = headers[loc[1]]
            end = next((h for h in headers if h > start), len(lines))
    elif len(loc) >= 2 and loc[0] == "profiles":
        header = f"[profiles.{loc[1]}]"
        start = next((i for i, line in enumerate(lines) if line.strip() == header), 0)
    key = next((str(part) for part in reversed(loc) if isinstance(part, str)), None)
    for i in range(start, end):
        if key is not None and re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
            return i + 1
    return start + 1


@dataclass(frozen=True)
class Stat:
    """One row of locust's stats: a request's count, failures and percentiles (ms)."""

    count: int
    failures: int
    percentiles: dict[str, float]

    @property
    def error_rate(self) -> float:
        return self.failures / self.count if self.count else 0.0


def read_stats(path: Path) -> dict[str, Stat]:
    """locust's `<prefix>_stats.csv`, by "<type> <name>" ("all" for its Aggregated row)."""
    found = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            request = ALL if row["Name"] == "Aggregated" else f"{row['Type']} {row['Name']}"
            percentiles = {
                p: float(row[f"{p}%"])
                for p in PERCENTILES
                if row.get(f"{p}%") not in (None, "N/A", "")
            }
            found[request] = Stat(int(row["Request Count"]), int(row["Failure Count"]), percentiles)
    return found


@dataclass(frozen=True)
class Verdict:
    gate: Gate
    measured: str
    objective: str
    met: bool
    miss: str  # by how much it missed; empty when met


def check(slo: SloFile, profile: str, stats: dict[str, Stat]) -> list[Verdict]:
    """The verdict of each gate of `profile` on a run's statistics."""
    return [_verdict(gate, stats.get(gate.request)) for gate in slo.gates(profile)]


def _verdict(gate: Gate, stat: Stat | None) -> Verdict:
    if gate.max_error_rate is not None:
        objective = f"errors <= {gate.max_error_rate:.2%} of >= {gate.min_count}"
    else:
        objective = f"p{gate.percentile} <= {gate.max_ms:g} ms over >= {gate.min_count}"
    count = stat.count if stat else 0
    if stat is None or count < gate.min_count:
        return Verdict(
            gate,
            f"{count} requests",
            objective,
            False,
            f"{gate.min_count - count} too few requests",
        )
    if gate.max_error_rate is not None:
        rate = stat.error_rate
        met = rate <= gate.max_error_rate
        miss = (
            "" if met else f"{rate - gate.max_error_rate:+.2%} ({stat.failures} of {count} failed)"
        )
        return Verdict(gate, f"{rate:.2%} of {count}", objective, met, miss)
    assert gate.percentile is not None
    assert gate.max_ms is not None
    value = stat.percentiles.get(gate.percentile)
    if value is None:
        return Verdict(gate, "no percentile", objective, False, "locust reported none")
    met = value <= gate.max_ms
    miss = "" if met else f"+{value - gate.max_ms:g} ms ({value / gate.max_ms:.1f} x the limit)"
    return Verdict(gate, f"{value:g} ms over {count}", objective, met, miss)


def report(verdicts: list[Verdict]) -> str:
    rows = [("gate", "request", "measured", "objective", "met", "missed by")]
    rows += [
        (v.gate.name, v.gate.request, v.measured, v.objective, "yes" if v.met else "NO", v.miss)
        for v in verdicts
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
