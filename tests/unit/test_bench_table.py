"""`make bench`'s table (load/bench_table.py): each journey figure against its floors, with
issue 18's targets judged on the figures the run measured."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "load"))  # scripts, not a package
import bench_table

pytestmark = pytest.mark.unit


def _phase(**overrides: Any) -> dict[str, Any]:
    """A journey phase's figures as bench_orders.latency writes them."""
    return {
        "latency_rate_per_s": 20.0,
        "journey_p50_ms": 24.0,
        "journey_p99_ms": 120.0,
        "floor_hops": 3,
        "floor_p50_ms": 12.0,
        "floor_p99_ms": 30.0,
        "stateful_floor_p50_ms": 17.0,
        "stateful_floor_p99_ms": 70.0,
    } | overrides


def _verdicts(rows: list[bench_table.Row]) -> list[tuple[str, float | None, bool | None]]:
    return [(r.reference, r.reference_value, r.met) for r in rows if r.figure.startswith("journey")]


def test_the_journey_is_judged_against_the_bare_floor_and_the_stateful_one() -> None:
    rows = bench_table.journey_rows(_phase(), "light load")

    assert _verdicts(rows) == [
        ("3-hop floor", 12.0, False),  # 24 > 1.5 x 12
        ("3-hop floor", 30.0, False),  # 120 > 2 x 30 and not under 100
        ("3-hop stateful floor", 17.0, True),  # 24 <= 1.5 x 17
        ("3-hop stateful floor", 70.0, True),  # 120 <= 2 x 70
    ]
    stateful = [r for r in rows if r.figure.startswith("stateful floor")]
    assert [r.value for r in stateful] == [17.0, 70.0]


def test_an_absolute_bound_is_met_whatever_the_floor() -> None:
    rows = bench_table.journey_rows(
        _phase(journey_p50_ms=19.0, journey_p99_ms=99.0, stateful_floor_p50_ms=5.0), "light load"
    )

    assert all(met for _, _, met in _verdicts(rows))


def test_a_run_without_a_stateful_floor_still_makes_its_table() -> None:
    figures = _phase()
    del figures["stateful_floor_p50_ms"], figures["stateful_floor_p99_ms"]

    rows = bench_table.journey_rows(figures, "light load")

    assert [reference for reference, _, _ in _verdicts(rows)] == ["3-hop floor", "3-hop floor"]
    assert not any("stateful" in r.figure for r in rows)


def test_a_followed_phase_judges_the_journey_as_a_client_sees_it_against_floors_read() -> None:
    rows = bench_table.journey_rows(
        _phase(
            client_journey_p50_ms=16.0,
            client_journey_p99_ms=140.0,
            floor_read_p50_ms=15.0,
            floor_read_p99_ms=40.0,
            stateful_floor_read_p50_ms=20.0,
            stateful_floor_read_p99_ms=75.0,
        ),
        "light load",
    )

    client = [r for r in rows if "202 -> GET answers final" in r.figure]
    assert [(r.value, r.reference, r.reference_value, r.met) for r in client] == [
        (16.0, "3-hop floor to a reader", 15.0, True),  # under 20 ms
        (140.0, "3-hop floor to a reader", 40.0, False),  # 140 > 2 x 40 and not under 100
        (16.0, "3-hop stateful floor to a reader", 20.0, True),
        (140.0, "3-hop stateful floor to a reader", 75.0, True),  # 140 <= 2 x 75
    ]
    # The journey from its records is held to the floors' record creation, as before.
    records = [r for r in rows if "POST sent -> outcome written" in r.figure]
    assert [r.reference_value for r in records] == [12.0, 30.0, 17.0, 70.0]
    read = [r.value for r in rows if "to a reader:" in r.figure]
    assert read == [15.0, 40.0, 20.0, 75.0]


def test_a_followed_phase_without_floors_read_is_held_to_their_creation() -> None:
    rows = bench_table.journey_rows(
        _phase(client_journey_p50_ms=16.0, client_journey_p99_ms=140.0), "light load"
    )

    client = [r for r in rows if "202 -> GET answers final" in r.figure]
    assert [(r.reference, r.reference_value) for r in client] == [
        ("3-hop floor", 12.0),
        ("3-hop floor", 30.0),
        ("3-hop stateful floor", 17.0),
        ("3-hop stateful floor", 70.0),
    ]
