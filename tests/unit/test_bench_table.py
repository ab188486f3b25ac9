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


def _cpu_times(**spent: float) -> dict[str, float]:
    """psutil.cpu_times()._asdict() on Linux, every field 0 but those given."""
    fields = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest")
    return {name: spent.get(name, 0.0) for name in (*fields, "guest_nice")}


def test_the_hosts_share_of_steal_and_iowait_is_of_its_cpu_time_over_the_run() -> None:
    before = _cpu_times(user=100.0, idle=50.0)
    # 60 s busy (guest time is counted in user already), 20 idle, 10 iowait, 10 stolen.
    after = _cpu_times(
        user=140.0, system=15.0, softirq=5.0, idle=70.0, iowait=10.0, steal=10.0, guest=7.0
    )

    assert bench_table.host_shares(before, after) == {
        "idle": 20.0,
        "iowait": 10.0,
        "steal": 10.0,
        "busy": 60.0,
    }


def test_two_readings_with_no_time_between_them_are_refused() -> None:
    with pytest.raises(ValueError, match="no CPU time"):
        bench_table.host_shares(_cpu_times(user=1.0), _cpu_times(user=1.0))


def test_each_phase_shows_what_the_host_gave_away_and_the_table_its_worst() -> None:
    calm = {"busy": 60.0, "idle": 40.0, "iowait": 0.0, "steal": 0.5}
    stolen = {"busy": 50.0, "idle": 20.0, "iowait": 5.0, "steal": 25.0}
    figures: dict[str, Any] = {"echo_req_per_s": 2000, "echo_at_end_req_per_s": 1500}
    figures["host_cpu_pct"] = {"references": calm, "light load": stolen}

    text = bench_table.host_text(figures)
    assert "references: 60.0 / 40.0 / 0.0 / 0.5" in text
    assert "light load: 50.0 / 20.0 / 5.0 / 25.0" in text
    assert "0.75 x its 2,000 at the start" in text
    (row,) = bench_table.host_rows(figures)
    assert (row.figure, row.value) == (
        "CPU stolen by the hypervisor, the worst phase: light load",
        25.0,
    )
