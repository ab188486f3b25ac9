"""`make bench`'s one table: each figure beside its same-run reference, the ratio, the target
(issue 18) and whether it is met; printed, and written as JSON and as an HTML page with a bar
per ratio under var/bench/."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Issue 18's throughput targets, as ratios to the bare FastAPI echo.
POST_TARGET = 0.6
SUSTAINED_TARGET = 0.25


def percentile(ordered: list[float], p: float) -> float:
    """The nearest-rank percentile `p` (0-100) of an ascending list (not empty)."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Row:
    figure: str
    value: float
    unit: str
    reference: str = ""  # what it is measured against, in the same run
    reference_value: float | None = None
    target: str = ""  # in words: ">= 0.6 x", "< 20 ms"
    met: bool | None = None  # None: no target

    @property
    def ratio(self) -> float | None:
        if not self.reference_value:
            return None
        return self.value / self.reference_value


def rows(f: dict[str, Any]) -> list[Row]:
    """The table of a `make bench` run's figures (bench_orders.py)."""
    echo = float(f["echo_req_per_s"])
    post, sustained = float(f["post_orders_req_per_s"]), float(f["sustained_orders_per_s"])
    bound = f["cores"] * 1000 / sum(f["cpu_ms_per_order"].values())
    return [
        Row("raw Kafka produce (512 B, acks=all)", f["raw_produce_msgs_per_s"], "msg/s"),
        Row("raw Kafka consume", f["raw_consume_msgs_per_s"], "msg/s"),
        Row("bare FastAPI echo", echo, "req/s", target="(the reference)"),
        *(
            [
                Row(
                    "bare FastAPI echo again, at the end (the host's drift)",
                    end,
                    "req/s",
                    "echo",
                    echo,
                )
            ]
            if (end := f.get("echo_at_end_req_per_s"))
            else []
        ),
        Row(
            "echo with the bearer token checked",
            f["echo_with_token_check_req_per_s"],
            "req/s",
            "echo",
            echo,
        ),
        Row(
            "durable echo: token checked, order produced, broker ack",
            f["durable_echo_req_per_s"],
            "req/s",
            "echo",
            echo,
        ),
        Row(
            "POST /orders",
            post,
            "req/s",
            "echo",
            echo,
            f">= {POST_TARGET} x",
            post / echo >= POST_TARGET,
        ),
        Row(
            "POST /orders against the durable echo",
            post,
            "req/s",
            "durable echo",
            f["durable_echo_req_per_s"],
        ),
        Row(
            "sustained placed-to-outcome",
            sustained,
            "orders/s",
            "echo",
            echo,
            f">= {SUSTAINED_TARGET} x",
            sustained / echo >= SUSTAINED_TARGET,
        ),
        Row(
            "throughput bound: cores / CPU per order",
            bound,
            "orders/s",
            "sustained",
            sustained,
            "the sustained rate's ceiling",
            None,
        ),
        *(
            system_floor_rows(f, echo, post, sustained)
            if "system_floor_post_req_per_s" in f
            else []
        ),
        *journey_rows(f, "half the sustained rate"),
        *(journey_rows(f["light"], "light load") if "light" in f else []),
        Row(
            "whole stack resident (sum of RSS)",
            f["stack_rss_mb"],
            "MB",
            target="< 1,200 MB",
            met=f["stack_rss_mb"] < 1200,
        ),
        Row(
            "whole stack resident, shared pages once (PSS)",
            f["stack_pss_mb"],
            "MB",
            target="< 1,200 MB",
            met=f["stack_pss_mb"] < 1200,
        ),
        *host_rows(f),
    ]


def system_floor_rows(f: dict[str, Any], echo: float, post: float, sustained: float) -> list[Row]:
    """The system floor (bench_orders' `system_floor`): the durable echo with the system's
    Kafka work behind it, bare. Where it stays below an echo target, that target is out of reach
    on this machine, and POST /orders or the sustained rate is held to the floor's instead
    (issue 18: reach the reference that bounds it)."""
    floor_post = float(f["system_floor_post_req_per_s"])
    floor_sustained = float(f["system_floor_sustained_per_s"])
    post_bound = floor_post / echo < POST_TARGET
    sustained_bound = floor_sustained / echo < SUSTAINED_TARGET
    reach = ">= 1.0 x (the echo's target is beyond the floor)"
    return [
        Row(
            "system floor: the durable echo, 3 bare stateful exactly-once hops and bare readers behind it",
            floor_post,
            "req/s",
            "echo",
            echo,
        ),
        Row("system floor sustained placed-to-outcome", floor_sustained, "orders/s", "echo", echo),
        Row(
            "POST /orders against the system floor",
            post,
            "req/s",
            "system floor",
            floor_post,
            reach if post_bound else "",
            post >= floor_post if post_bound else None,
        ),
        Row(
            "sustained against the system floor",
            sustained,
            "orders/s",
            "system floor",
            floor_sustained,
            reach if sustained_bound else "",
            sustained >= floor_sustained if sustained_bound else None,
        ),
    ]


# A journey's two measures (bench_orders.latency): the figures' prefix, what it spans, and
# which end of a floor it is held to: a record's creation, or its reading (a floor's "_read"
# figures: when a read_committed reader had the last hop's copy).
FROM_THE_RECORDS = ("journey", "POST sent -> outcome written", "")
AS_A_CLIENT_SEES_IT = ("client_journey", "202 -> GET answers final, issue 18's", "_read")


def journey_rows(f: dict[str, Any], load: str) -> list[Row]:
    """A journey phase's percentiles against the floor measured at its rate (bench_orders'
    `latency`), and the floor's own; then against the stateful floor, the same hops writing a
    state record each as the journey's do, where the run measured one. The journey as its
    records time it, against the floors to their last record's creation; and, where the phase
    followed its orders, as a client sees it, against the floors to a reader having it (a
    run without those figures: to the creation)."""
    at = f"at {f['latency_rate_per_s']}/s ({load})"
    hops = f["floor_hops"]
    floors = [(f"{hops}-hop floor", "floor")]
    if "stateful_floor_p50_ms" in f:
        floors.append((f"{hops}-hop stateful floor", "stateful_floor"))
    rows = []
    for journey, spans, end in (FROM_THE_RECORDS, AS_A_CLIENT_SEES_IT):
        if f"{journey}_p50_ms" not in f:
            continue
        for floor, prefix in floors:
            read = end and f"{prefix}{end}_p50_ms" in f
            to = f"{floor} to a reader" if read else floor
            rows += _against(f, at, to, f"{prefix}{end}" if read else prefix, journey, spans)
    for prefix, name, what in (
        ("floor", "floor", f"{hops} bare exactly-once hops"),
        ("stateful_floor", "stateful floor", f"{hops} hops, a state record each"),
    ):
        for p in ("p50", "p99") if f"{prefix}_p50_ms" in f else ():
            rows.append(Row(f"{name} {p} {at}: {what}", f[f"{prefix}_{p}_ms"], "ms"))
            if f"{prefix}_read_{p}_ms" in f:
                rows.append(
                    Row(f"{name} {p} {at}, to a reader: {what}", f[f"{prefix}_read_{p}_ms"], "ms")
                )
    return rows


def _against(
    f: dict[str, Any], at: str, floor: str, prefix: str, journey: str, spans: str
) -> list[Row]:
    """The journey's p50 and p99 (figures starting `journey`) against the floor whose figures
    start with `prefix`, each with issue 18's target: an absolute bound, or a ratio to that
    floor."""
    p50, p99 = float(f[f"{journey}_p50_ms"]), float(f[f"{journey}_p99_ms"])
    floor_p50, floor_p99 = float(f[f"{prefix}_p50_ms"]), float(f[f"{prefix}_p99_ms"])
    return [
        Row(
            f"journey p50 {at}, {spans}",
            p50,
            "ms",
            floor,
            floor_p50,
            f"< 20 ms, or <= 1.5 x {floor}",
            p50 < 20 or p50 <= 1.5 * floor_p50,
        ),
        Row(
            f"journey p99 {at}, {spans}",
            p99,
            "ms",
            floor,
            floor_p99,
            f"< 100 ms, or <= 2 x {floor}",
            p99 < 100 or p99 <= 2 * floor_p99,
        ),
    ]


# psutil.cpu_times() fields that are already counted in user and nice (Linux).
_GUEST = ("guest", "guest_nice")


def host_shares(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """The host's CPU time between two readings of `psutil.cpu_times()._asdict()`, in % of all
    of it: busy, idle, iowait (idle, waiting on a disk) and steal (taken by the hypervisor for
    another guest: time the stack waited for, at no fault of its own)."""
    spent = {k: after[k] - before[k] for k in after if k not in _GUEST}
    total = sum(spent.values())
    if total <= 0:
        raise ValueError("no CPU time passed between the two readings")
    waiting = ("idle", "iowait", "steal")
    shares = {k: spent.get(k, 0.0) * 100 / total for k in waiting}
    shares["busy"] = sum(v for k, v in spent.items() if k not in waiting) * 100 / total
    return {k: round(v, 1) for k, v in shares.items()}


def host_text(f: dict[str, Any]) -> str:
    """How steady the host was: what it gave away in each phase, and the echo's drift."""
    lines = ["the host, % of its CPU time (busy / idle / iowait / stolen by the hypervisor):"]
    for phase, share in f.get("host_cpu_pct", {}).items():
        lines.append(
            f"  {phase}: {share['busy']} / {share['idle']} / {share['iowait']} / {share['steal']}"
        )
    if "echo_at_end_req_per_s" in f:
        drift = f["echo_at_end_req_per_s"] / f["echo_req_per_s"]
        lines.append(
            f"the bare echo at the end {f['echo_at_end_req_per_s']:,} req/s, "
            f"{drift:.2f} x its {f['echo_req_per_s']:,} at the start (the host's drift)"
        )
    return "\n".join(lines)


def host_rows(f: dict[str, Any]) -> list[Row]:
    """The phase in which the hypervisor took the most of the host's CPU, in the table: a run
    that missed a target there may have been the host's."""
    phases = f.get("host_cpu_pct", {})
    if not phases:
        return []
    phase, share = max(phases.items(), key=lambda kv: kv[1]["steal"])
    return [Row(f"CPU stolen by the hypervisor, the worst phase: {phase}", share["steal"], "%")]


def cpu_text(f: dict[str, Any]) -> str:
    """Each component's CPU per order, largest first: where the throughput bound comes from."""
    shares = sorted(f["cpu_ms_per_order"].items(), key=lambda kv: -kv[1])
    total = sum(ms for _, ms in shares)
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in shares)
    line = f"CPU per order, ms: {parts}; total {total:.2f} on {f['cores']} cores"
    if "system_floor_cpu_ms_per_order" in f:
        line += (
            f"\nthe system floor's CPU per order, ms: {f['system_floor_cpu_ms_per_order']:.2f}"
            f" (Kafka {f['system_floor_kafka_cpu_ms_per_order']:.2f})"
        )
    return line


def _met(row: Row) -> str:
    return "" if row.met is None else ("yes" if row.met else "NO")


def text(table: list[Row]) -> str:
    cells = [("figure", "value", "reference", "ratio", "target", "met?")]
    for r in table:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f} x"
        reference = f"{r.reference} {r.reference_value:,.0f}" if r.reference_value else ""
        cells.append((r.figure, f"{r.value:,.1f} {r.unit}", reference, ratio, r.target, _met(r)))
    widths = [max(len(c[i]) for c in cells) for i in range(6)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def write(table: list[Row], out: Path, title: str) -> None:
    """<out>.table.json and <out>.html beside the figures' JSON."""
    data = [asdict(r) | {"ratio": r.ratio} for r in table]
    out.with_suffix(".table.json").write_text(json.dumps(data, indent=2))
    body = []
    for r in table:
        bar = ""
        if r.ratio is not None:
            width = min(r.ratio, 1.0) * 300
            colour = "#2e7d32" if r.met or r.met is None else "#c62828"
            bar = (
                f'<svg width="310" height="14"><rect width="{width:.0f}" height="14" '
                f'fill="{colour}"/></svg> {r.ratio:.2f} x'
            )
        body.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(c))}</td>"
                for c in (r.figure, f"{r.value:,.1f} {r.unit}", r.reference, r.target, _met(r))
            )
            + f"<td>{bar}</td></tr>"
        )
    page = (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        "<style>body{font:14px sans-serif}td,th{padding:3px 10px;text-align:left}</style>"
        f"<h1>{html.escape(title)}</h1><table><tr><th>figure</th><th>value</th><th>reference"
        "</th><th>target</th><th>met?</th><th>ratio to the reference</th></tr>"
        + "".join(body)
        + "</table>"
    )
    out.with_suffix(".html").write_text(page)
