"""The experiment behind docs/recorder.md's "tried and dropped": capture's per-record work
(rewrite, line) in a process pool fed by one consumer, against the same work in one process.

    make bench-capture-pool [ARGS="--records 100000 --workers 1,2,3"]

On the bench instance of bench_platform (started if down, stopped after if this run started
it). Worth running again on a machine with more cores before deciding capture stays single-process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import uuid
from typing import Any

from bench_platform import bench_config
from bench_recorder import reader, seed
from golive_cli.recorder.archive import CapturedRecord
from golive_cli.recorder.desensitise import DEV_KEY, Tokeniser
from golive_cli.recorder.environment import Cluster, make_topics
from golive_cli.recorder.rewrite import Rewriter
from golive_cli.recorder.wire import HEADER, SourceSchemas, schema_id_of
from golive_platform.platform import Platform

Row = tuple[str, int, int, int, bytes | None, Any, bytes]
_state: dict[str, Any] = {}


def _start(registry_url: str) -> None:
    _state["schemas"] = SourceSchemas(registry_url)
    _state["rewriters"] = {}


def work(batch: list[Row]) -> list[bytes]:
    """What capture does per record once it has the message: rewrite and format the line."""
    rewriters: dict[int, Rewriter] = _state["rewriters"]
    lines = []
    for topic, partition, offset, timestamp_ms, key, headers, value in batch:
        schema_id = schema_id_of(value)
        if schema_id not in rewriters:
            rewriters[schema_id] = Rewriter(_state["schemas"].get(schema_id).raw,
                                            Tokeniser(DEV_KEY))  # fmt: skip
        rewritten = rewriters[schema_id].rewrite(value, HEADER.size)
        lines.append(CapturedRecord(topic, partition, offset, timestamp_ms, key,
                                    tuple(headers or ()), rewritten, schema_id).line())  # fmt: skip
    return lines


def rate(cluster: Cluster, topic: str, records: int, workers: int) -> float:
    """Records per second through consume + work, `workers` processes (0: in this process)."""
    if workers:
        pool = multiprocessing.get_context("forkserver").Pool(
            workers, initializer=_start, initargs=(cluster.registry_url,)
        )
    else:
        _start(cluster.registry_url)
    consumer = reader(cluster, topic)
    started = time.monotonic()
    deadline = started + 300
    seen, done = 0, 0
    batch: list[Row] = []
    pending: list[Any] = []
    while seen < records and time.monotonic() < deadline:
        for m in consumer.consume(1000, timeout=0.2):
            if m.error() is not None:
                continue
            seen += 1
            batch.append((m.topic() or "", m.partition() or 0, m.offset() or 0, m.timestamp()[1],
                          m.key(), m.headers(), m.value() or b""))  # fmt: skip
            if len(batch) >= 2000 or seen == records:
                if workers:
                    pending.append(pool.apply_async(work, (batch,)))
                else:
                    done += len(work(batch))
                batch = []
    done += sum(len(p.get()) for p in pending)
    elapsed = time.monotonic() - started
    consumer.close()
    if workers:
        pool.close()
        pool.join()
    if done < records:
        raise SystemExit(f"processed only {done} of {records} records in 300 s")
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,3", help="pool sizes to try, comma-separated")
    args = parser.parse_args()
    platform = Platform(bench_config(), echo=lambda _line: None)
    started = platform.ensure_up()
    try:
        config = platform.config
        cluster = Cluster(config.bootstrap_servers, config.registry_url)
        topics = make_topics(cluster, f"bench-pool-{uuid.uuid4().hex[:8]}")
        seed(cluster, topics, args.records)
        print(f"{'one process':<20} {rate(cluster, topics['orders'], args.records, 0):>10.0f}/s")
        for workers in (int(w) for w in args.workers.split(",")):
            found = rate(cluster, topics["orders"], args.records, workers)
            print(f"{f'{workers} pool workers':<20} {found:>10.0f}/s")
    finally:
        if started:
            platform.down()


if __name__ == "__main__":
    main()
