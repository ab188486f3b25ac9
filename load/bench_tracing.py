"""`make bench-tracing`: what tracing costs a Kafka hop, per record, with export off and on.

One hop's tracing work, as a processor does it for every record: take the record's trace
context, a consumer span with the messaging attributes, a producer span inside it, and the
inject into the output's headers. Measured in a fresh process for each way of running:

- `no tracing`: the same hop with no tracing call at all (its context managers, its output's
  header list): the reference;
- `export off`: `golive_eventing.tracing.setup` with no exporter set, as `make run` runs:
  the hop makes no span and passes the record's context along;
- `recorded`: the same with a recording sampler and no exporter (what export costs before
  the batch leaves the process, the exporter's encoding aside).

The record carries a W3C traceparent, as every record a service publishes does. Prints
microseconds per record and what each way adds to the reference. CPU time of this process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import nullcontext

MODES = ("no tracing", "export off", "recorded")


def _hop_cost(mode: str, records: int) -> float:
    """Microseconds of CPU per record for one hop's tracing in `mode` (run in this process)."""
    from golive_eventing import tracing  # noqa: PLC0415
    from golive_eventing.records import Consumed  # noqa: PLC0415

    if mode == MODES[1] or mode == MODES[2]:
        if mode == MODES[2]:
            os.environ["OTEL_TRACES_SAMPLER"] = "always_on"
            os.environ["OTEL_TRACES_EXPORTER"] = "otlp"
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"  # never sent
        tracing.setup("bench", "0")
        if mode == MODES[2]:  # keep the spans in the process: drop the exporter, keep recording
            from opentelemetry import trace  # noqa: PLC0415

            provider = trace.get_tracer_provider()
            provider._active_span_processor._span_processors = ()  # type: ignore[attr-defined]
    upstream = [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    record = Consumed(
        topic="orders",
        partition=3,
        offset=1234,
        timestamp_ms=0,
        key="6f1c2b9e-0000-4000-8000-000000000000",
        headers=tuple(upstream),
        value=b"",
        event=None,
    )

    def hop() -> None:
        with tracing.processing(record, "payment"), tracing.producing("payments", record.key):
            tracing.inject([])

    def untraced() -> None:
        with nullcontext(record), nullcontext(record.key):
            list[tuple[str, bytes]]()

    work = untraced if mode == MODES[0] else hop

    for _ in range(records // 10):  # warm up
        work()
    started = time.process_time()
    for _ in range(records):
        work()
    return (time.process_time() - started) / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one measurement
    args = parser.parse_args()
    if args.mode:
        print(_hop_cost(args.mode, args.records))
        return
    costs = {}
    for mode in MODES:
        done = subprocess.run(
            [sys.executable, __file__, "--mode", mode, "--records", str(args.records)],
            capture_output=True,
            text=True,
            check=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        )
        costs[mode] = float(done.stdout.strip())
    reference = costs[MODES[0]]
    print(f"tracing work of one Kafka hop, per record ({args.records:,} records each)")
    print(f"{'mode':<12} {'us/record':>10} {'+us over no tracing':>20}")
    for mode, cost in costs.items():
        print(f"{mode:<12} {cost:>10.2f} {cost - reference:>20.2f}")


if __name__ == "__main__":
    main()
