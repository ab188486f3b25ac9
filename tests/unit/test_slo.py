"""SLO gates (golive_cli.slo): the committed file reads, a bad one names its line, and a run's
statistics pass or fail each gate, saying by how much."""

from __future__ import annotations

from pathlib import Path

import pytest
from golive_cli import slo

ROOT = Path(__file__).resolve().parents[2]
# locust 2.47's stats CSV header, as `make load` writes it.
HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def _stats(tmp_path: Path, *rows: tuple[str, str, int, int, float]) -> dict[str, slo.Stat]:
    """A locust stats CSV whose 99th percentile is the row's value and every other one 1 ms:
    a gate reading another column would see 1."""
    lines = [HEADER]
    for kind, name, count, failures, ms in rows:
        percentiles = [str(ms) if p == "99" else "1" for p in slo.PERCENTILES]
        lines.append(f"{kind},{name},{count},{failures},1,1,1,1,0,1,0," + ",".join(percentiles))
    path = tmp_path / "locust_stats.csv"
    path.write_text("\n".join(lines) + "\n")
    return slo.read_stats(path)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slo.toml"
    path.write_text(text)
    return path


GATES = """
[profiles.smoke]
users = 2
spawn_rate = 1
run_time_s = 5

[[gate]]
name = "fast posts"
request = "POST /orders"
percentile = "99"
max_ms = 500
min_count = 10

[[gate]]
name = "journeys end"
request = "JOURNEY placed to final"
max_error_rate = 0.0
min_count = 10
"""


def test_the_committed_gates_read() -> None:
    gates = slo.load(ROOT / "load" / "slo.toml")
    assert {"load", "smoke"} <= set(gates.profiles)
    assert any(g.request == "JOURNEY placed to final" for g in gates.gate)


def test_a_run_within_every_gate_passes(tmp_path: Path) -> None:
    stats = _stats(
        tmp_path,
        ("POST", "/orders", 100, 0, 120.0),
        ("JOURNEY", "placed to final", 100, 0, 300.0),
    )
    verdicts = slo.check(slo.load(_file(tmp_path, GATES)), "smoke", stats)
    assert [v.met for v in verdicts] == [True, True]


def test_a_slow_percentile_fails_saying_by_how_much(tmp_path: Path) -> None:
    stats = _stats(
        tmp_path,
        ("POST", "/orders", 100, 0, 750.0),
        ("JOURNEY", "placed to final", 100, 0, 300.0),
    )
    slow, ended = slo.check(slo.load(_file(tmp_path, GATES)), "smoke", stats)
    assert not slow.met
    assert slow.miss == "+250 ms (1.5 x the limit)"
    assert ended.met
    assert "NO" in slo.report([slow, ended])


def test_failures_over_the_rate_fail(tmp_path: Path) -> None:
    stats = _stats(
        tmp_path,
        ("POST", "/orders", 100, 0, 100.0),
        ("JOURNEY", "placed to final", 100, 2, 300.0),
    )
    _, ended = slo.check(slo.load(_file(tmp_path, GATES)), "smoke", stats)
    assert not ended.met
    assert "2 of 100 failed" in ended.miss


def test_a_run_where_too_little_happened_fails(tmp_path: Path) -> None:
    stats = _stats(tmp_path, ("POST", "/orders", 3, 0, 10.0))
    fast, ended = slo.check(slo.load(_file(tmp_path, GATES)), "smoke", stats)
    assert (fast.met, fast.miss) == (False, "7 too few requests")
    assert (ended.met, ended.miss) == (False, "10 too few requests")


# GATES's lines: 7 is the first [[gate]], 10 its percentile, 11 its max_ms, 12 its min_count.
@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('percentile = "99"', 'percentile = "97"', r"slo\.toml:7: gate\.0: .*'97' is not one of"),
        ("max_ms = 500", "max_ms = 500\nmax_error_rate = 0.1", r"slo\.toml:7: gate\.0: .*either"),
        ("max_ms = 500", "max_ms = -5", r"slo\.toml:11: gate\.0\.max_ms: Input should be greater"),
        ("max_ms = 500", "max_ms = = 5", r"slo\.toml:11: not TOML"),
        (
            "min_count = 10\n\n",
            "min_count = 10\nmax_p99 = 3\n\n",
            r"slo\.toml:13: gate\.0\.max_p99: Extra",
        ),
        ("run_time_s = 5", "run_time_s = 0", r"slo\.toml:5: profiles\.smoke\.run_time_s: Input"),
    ],
)
def test_a_bad_file_names_its_line(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GATES
    with pytest.raises(slo.SloFileError, match=message):
        slo.load(_file(tmp_path, GATES.replace(old, new, 1)))


def test_a_gate_for_some_profiles_gates_only_those(tmp_path: Path) -> None:
    text = GATES.replace("min_count = 10\n\n", 'min_count = 10\nprofiles = ["load"]\n\n', 1)
    text = text.replace(
        "[profiles.smoke]",
        "[profiles.load]\nusers = 9\nspawn_rate = 1\nrun_time_s = 60\n\n[profiles.smoke]",
    )
    gates = slo.load(_file(tmp_path, text))
    assert [g.name for g in gates.gates("load")] == ["fast posts", "journeys end"]
    assert [g.name for g in gates.gates("smoke")] == ["journeys end"]


def test_a_gate_naming_an_unknown_profile_is_refused(tmp_path: Path) -> None:
    text = GATES.replace("min_count = 10\n\n", 'min_count = 10\nprofiles = ["soak"]\n\n', 1)
    with pytest.raises(slo.SloFileError, match=r"names no profile \['soak'\]"):
        slo.load(_file(tmp_path, text))


def test_all_is_the_aggregated_row(tmp_path: Path) -> None:
    stats = _stats(tmp_path, ("POST", "/orders", 10, 0, 5.0), ("", "Aggregated", 30, 3, 9.0))
    assert stats[slo.ALL].count == 30
    assert stats[slo.ALL].error_rate == pytest.approx(0.1)
    assert stats["POST /orders"].percentiles["99"] == 5.0
