"""The native window capture hands each consumed batch to: lines, order, what is kept, tallies.

Messages here are stand-ins with confluent-kafka's Message methods (the window calls them by
name), so merge order, journeys and spilling are checked exactly, without a broker; the capture
tests under tests/replay run the same window on the real one.
"""

from __future__ import annotations

import heapq
import json
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from golive_cli.recorder.archive import CapturedRecord
from golive_cli.recorder.rewrite import Program, UndecodableError, compile_schema, write_long
from golive_recorder_native import Window
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.unit

START, END, OTHER, BROKEN = 1, 2, 3, 4  # OrderPlaced-like, OrderConfirmed-like, neither, bad
SCHEMA = {"type": "record", "name": "E", "fields": [{"name": "s", "type": "string"}]}
ROLE = {START: 1, END: 2, OTHER: 0}


def resolve(schema_id: int) -> tuple[Program, int]:
    if schema_id == BROKEN:  # a program this build cannot run (a fixed of negative size)
        return ([("skip", -1)], []), 0
    if schema_id not in ROLE:
        raise UndecodableError(f"schema id {schema_id} is unknown")
    return compile_schema(SCHEMA, desensitise=False), ROLE[schema_id]


def value(schema_id: int, text: str = "x") -> bytes:
    data = text.encode()
    return struct.pack(">bI", 0, schema_id) + write_long(len(data)) + data


@dataclass
class Msg:
    _topic: str
    _partition: int
    _offset: int
    _timestamp: int
    _key: bytes | None
    _value: bytes | None
    _headers: list[tuple[str, bytes | None]] | None = None
    _error: Any = None

    def error(self) -> Any:
        return self._error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self._headers

    def record(self, schema_id: int) -> CapturedRecord:
        headers = tuple((n, v or b"") for n, v in self._headers or ())
        return CapturedRecord(
            self._topic,
            self._partition,
            self._offset,
            self._timestamp,
            self._key,
            headers,
            self._value or b"",
            schema_id,
        )


def run(
    batches: list[list[Msg]],
    *,
    batch: int,
    start: int,
    end: int,
    complete: bool,
) -> tuple[list[bytes], Window]:
    with tempfile.TemporaryFile() as spool:
        window = Window(None, resolve, spool.fileno(), batch, start, end)
        for messages in batches:
            window.push(messages)
        window.settle()
        window.merge(complete)
        lines: list[bytes] = []
        while block := window.lines(64):  # small blocks: several per run
            lines += block.splitlines(keepends=True)
        return lines, window


def test_lines_are_the_records_lines_merged_by_timestamp_each_partition_in_order() -> None:
    a = [
        Msg("t", 0, 10, 300, b"k1", value(OTHER), [("trace", b"1"), ('q"é', None)]),
        Msg("t", 0, 11, 100, None, value(OTHER)),  # earlier than the one before it
        Msg("t", 0, 12, 500, b"k2", value(OTHER)),
    ]
    b = [Msg("u", 3, 7, 200, b"k3", value(OTHER)), Msg("u", 3, 8, 400, b"k4", value(OTHER))]
    for size in (1000, 2):  # everything in memory; spilled to the spool every two records
        lines, _ = run([a[:2], b, a[2:]], batch=size, start=0, end=1000, complete=False)
        # The earliest head first; a partition's records never pass each other (k1 before 11).
        want = [m.record(OTHER).line() for m in (b[0], a[0], a[1], b[1], a[2])]
        assert lines == want


def test_journeys_decide_what_after_the_window_is_kept() -> None:
    msgs = [
        Msg("t", 0, 0, 50, b"in", value(START)),  # starts a journey in the window
        Msg("t", 0, 1, 60, b"early", value(OTHER)),
        Msg("t", 0, 2, 150, b"in", value(END)),  # after the window, its journey: kept
        Msg("t", 0, 3, 160, b"late", value(START)),  # after the window: starts nothing
        Msg("t", 0, 4, 170, b"late", value(END)),
    ]
    lines, window = run([msgs], batch=2, start=0, end=100, complete=True)
    assert [json.loads(line)["record"]["offset"] for line in lines] == [0, 1, 2]
    counts, used, undecodable, samples = window.tally()
    assert (counts, used, undecodable, samples) == ({"t": 3}, {START, OTHER, END}, {}, [])
    assert (window.started, window.open) == (1, 0)  # "late" started after the window
    lines, _ = run([msgs], batch=2, start=0, end=100, complete=False)
    assert [json.loads(line)["record"]["offset"] for line in lines] == [0, 1]


def test_journeys_open_until_they_end() -> None:
    with tempfile.TemporaryFile() as spool:
        window = Window(None, resolve, spool.fileno(), 10, 0, 100)
        window.push(
            [
                Msg("t", 0, 0, 10, b"a", value(START)),
                Msg("t", 1, 0, 20, b"b", value(END)),  # ended before it starts: closed
                Msg("t", 0, 1, 30, b"b", value(START)),
            ]
        )
        window.settle()
        assert (window.started, window.open) == (2, 1)
        window.push([Msg("t", 0, 2, 40, b"a", value(END))])
        window.settle()
        assert (window.started, window.open) == (2, 0)
        assert window.last_timestamps() == {("t", 0): 40, ("t", 1): 20}


def test_undecodable_records_kept_are_counted_not_written() -> None:
    msgs = [
        Msg("t", 0, 0, 10, b"a", b"\x01junk"),  # not the wire format
        Msg("t", 0, 1, 20, b"b", value(99)),  # an id the registry does not know
        Msg("t", 0, 2, 30, b"c", value(OTHER)[:-1]),  # cut short
        Msg("t", 0, 3, 40, b"d", None),
        Msg("t", 0, 4, 500, b"e", b"\x01junk"),  # outside the window: not counted
        Msg("t", 0, 5, 50, b"f", value(OTHER), _error="broker said no"),  # skipped
        Msg("t", 0, 6, 60, b"g", value(OTHER)),
        Msg("t", 0, 7, 70, b"h", value(BROKEN)),
    ]
    lines, window = run([msgs], batch=2, start=0, end=100, complete=True)
    assert [json.loads(line)["record"]["offset"] for line in lines] == [6]
    _, _, undecodable, samples = window.tally()
    assert undecodable == {"t": 5}
    assert samples == [
        "t: magic byte 1 is not 0: not the registry's format",
        "t: schema id 99 is unknown",
        "t: a length of 1 runs past the record",
        "t: too short for the wire format (no magic byte and schema id)",
        "t: can't convert negative int to unsigned",
    ]


def test_a_window_reads_once_and_merges_once() -> None:
    _, window = run([], batch=2, start=0, end=100, complete=True)
    assert window.lines(64) == b""
    with pytest.raises(RuntimeError, match="merged already"):
        window.merge(True)
    with pytest.raises(RuntimeError, match="nothing more can be read"):
        window.push([])


def messages() -> st.SearchStrategy[list[Msg]]:
    msg = st.builds(
        Msg,
        st.sampled_from(["t", "u"]),
        st.integers(0, 2),
        st.integers(0, 2**40),
        st.integers(0, 2**41),
        st.none() | st.binary(max_size=8),
        st.builds(value, st.sampled_from([START, END, OTHER]), st.text(max_size=20)),
        st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=5)), max_size=2),
    )
    return st.lists(msg, max_size=40)


@settings(max_examples=60, deadline=None)
@given(messages(), st.integers(1, 5))
def test_every_line_is_byte_for_byte_the_python_line(msgs: list[Msg], size: int) -> None:
    lines, _ = run([msgs], batch=size, start=0, end=2**62, complete=False)
    # What heapq.merge of each partition's records by timestamp gives (the Python merge).
    places: dict[tuple[str, int], list[CapturedRecord]] = {}
    for m in msgs:
        schema_id = struct.unpack(">bI", m._value[:5])[1] if m._value else 0
        places.setdefault((m._topic, m._partition), []).append(m.record(schema_id))
    merged: Iterator[CapturedRecord] = heapq.merge(*places.values(), key=lambda r: r.timestamp_ms)
    assert lines == [r.line() for r in merged]
