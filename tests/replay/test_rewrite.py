"""The byte-level rewriter capture uses: the same tokens as decoding, walking and re-encoding.

The reference is the slow path it replaced: fastavro decode, `Desensitiser.record`, fastavro
encode. Hypothesis draws values for every Avro type (personal and public, nested, recursive,
long strings for multi-byte lengths) and both must write identical bytes.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import fastavro
import pytest
from golive_cli.recorder.archive import CapturedRecord
from golive_cli.recorder.desensitise import DEV_KEY, DesensitiseError, Desensitiser, Tokeniser
from golive_cli.recorder.rewrite import Rewriter, UndecodableError, write_long
from golive_contracts.avro import avro_schema
from golive_contracts.events import OrderPlaced
from golive_recorder_native import json_string
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import order_placed

pytestmark = pytest.mark.unit

TOKENISER = Tokeniser(DEV_KEY)

CONTACT = {
    "type": "record",
    "name": "Contact",
    "fields": [
        {"name": "email", "type": "string"},  # no mark: personal inside a personal value
        {"name": "country", "type": "string", "pii": False},
    ],
}
CUSTOMER: dict[str, Any] = {
    "type": "record",
    "name": "Customer",
    "namespace": "test.rw",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}, "pii": False},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}, "pii": True},
        {"name": "name", "type": "string", "pii": True},
        {"name": "age", "type": "int", "pii": True},
        {"name": "score", "type": "long", "pii": True},
        {"name": "avatar", "type": "bytes", "pii": True},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 8}, "pii": True},
        {"name": "tier", "type": {"type": "enum", "name": "Tier", "symbols": ["A", "B", "C"]}},
        {"name": "ratio", "type": "double", "pii": False},
        {"name": "flag", "type": "boolean", "pii": False},
        {"name": "weight", "type": "float", "pii": False},
        {"name": "seen", "type": {"type": "long", "logicalType": "timestamp-micros"}, "pii": False},
        {"name": "nick", "type": ["null", "string"], "pii": True},
        {"name": "contact", "type": ["null", CONTACT], "pii": True},
        {"name": "tags", "type": {"type": "map", "values": "string"}, "pii": True},
        {"name": "labels", "type": {"type": "map", "values": "long"}, "pii": False},
        {"name": "history", "type": {"type": "array", "items": "Contact"}, "pii": True},
        {"name": "copies", "type": {"type": "array", "items": "test.rw.Hash"}, "pii": False},
        {"name": "next", "type": ["null", "Customer"], "pii": False},  # a record inside itself
    ],
}
PARSED = fastavro.parse_schema(CUSTOMER)

text = st.text(max_size=200)  # past 63 bytes a length takes two bytes
contact = st.fixed_dictionaries({"email": text, "country": text})


def customers(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.uuids(),
            "ref": st.uuids(),
            "name": text,
            "age": st.integers(-(2**31), 2**31 - 1),
            "score": st.integers(-(2**63), 2**63 - 1),
            "avatar": st.binary(max_size=100),
            "hash": st.binary(min_size=8, max_size=8),
            "tier": st.sampled_from(["A", "B", "C"]),
            "ratio": st.floats(allow_nan=False),
            "flag": st.booleans(),
            "weight": st.floats(width=32, allow_nan=False),
            "seen": st.integers(0, 2**52),
            "nick": st.none() | text,
            "contact": st.none() | contact,
            "tags": st.dictionaries(text, text, max_size=5),
            "labels": st.dictionaries(text, st.integers(-(2**63), 2**63 - 1), max_size=5),
            "history": st.lists(contact, max_size=5),
            "copies": st.lists(st.binary(min_size=8, max_size=8), max_size=3),
            "next": leaf,
        }
    )


def encode(parsed: Any, value: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, value)
    return out.getvalue()


def reference(schema: dict[str, Any], parsed: Any, data: bytes) -> bytes:
    """Decode, desensitise the Python value, encode: what capture did before the rewriter."""
    decoded = fastavro.schemaless_reader(io.BytesIO(data), parsed, None)
    return encode(parsed, Desensitiser(TOKENISER).record(schema, decoded))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(customers(st.none() | customers(st.none())))
def test_the_rewriter_writes_what_decoding_desensitising_and_encoding_writes(
    value: dict[str, Any],
) -> None:
    data = encode(PARSED, value)
    assert Rewriter(CUSTOMER, TOKENISER).rewrite(data) == reference(CUSTOMER, PARSED, data)
    assert Rewriter(CUSTOMER, None).rewrite(data) is data  # raw: checked, not changed


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=80), st.text(max_size=300), st.none() | st.text())
def test_order_placed_rewrites_as_before(customer: str, email: str, line2: str | None) -> None:
    schema = avro_schema(OrderPlaced)
    parsed = fastavro.parse_schema(schema)
    event = order_placed().model_copy(update={"customer_id": customer, "email": email})
    value = event.model_dump(mode="python")
    value["shipping_address"]["line2"] = line2
    data = encode(parsed, value)
    framed = b"\x00\x00\x00\x00\x07" + data  # the wire format: magic byte and schema id first
    assert Rewriter(schema, TOKENISER).rewrite(framed, 5) == framed[:5] + reference(
        schema, parsed, data
    )


def sample() -> bytes:
    value = {
        "id": uuid.uuid4(),
        "ref": uuid.uuid4(),
        "name": "Ada",
        "age": 36,
        "score": 1,
        "avatar": b"\x01",
        "hash": b"12345678",
        "tier": "B",
        "ratio": 0.5,
        "flag": True,
        "weight": 1.5,
        "seen": 1,
        "nick": None,
        "contact": {"email": "a@b.c", "country": "NL"},
        "tags": {"k": "v"},
        "labels": {},
        "history": [],
        "copies": [],
        "next": None,
    }
    return encode(PARSED, value)


def test_every_cut_short_record_is_undecodable_in_both_modes() -> None:
    data = sample()
    for tokeniser in (TOKENISER, None):
        rewriter = Rewriter(CUSTOMER, tokeniser)
        for end in range(len(data)):
            with pytest.raises(UndecodableError):
                rewriter.rewrite(data[:end])


def test_damaged_values_are_undecodable() -> None:
    data = sample()
    rewriter = Rewriter(CUSTOMER, None)
    not_a_uuid = data.replace(data[1:37], b"z" * 36, 1)  # the first field: a uuid string
    with pytest.raises(UndecodableError, match=r"not a valid|badly formed"):
        rewriter.rewrite(not_a_uuid)
    schema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "s", "type": "string"}, {"name": "u", "type": ["null", "long"]}],
    }
    with pytest.raises(UndecodableError, match="utf-8"):
        Rewriter(schema, None).rewrite(write_long(2) + b"\xff\xfe" + b"\x00")
    with pytest.raises(UndecodableError, match="union branch 5 of 2"):
        Rewriter(schema, None).rewrite(write_long(0) + write_long(5))
    with pytest.raises(UndecodableError, match="length of -3"):
        Rewriter(schema, None).rewrite(write_long(-3))


def test_trailing_bytes_are_kept_raw_and_dropped_when_desensitised() -> None:
    data = sample()
    assert Rewriter(CUSTOMER, None).rewrite(data + b"personal?") == data + b"personal?"
    assert Rewriter(CUSTOMER, TOKENISER).rewrite(data + b"personal?") == reference(
        CUSTOMER, PARSED, data
    )


def test_blocks_with_a_byte_size_are_read() -> None:
    """Writers may give a block a negative count followed by its size in bytes."""
    schema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "xs", "type": {"type": "array", "items": "long"}, "pii": True}],
    }
    items = write_long(7) + write_long(300)
    data = write_long(-2) + write_long(len(items)) + items + write_long(0)
    rewritten = Rewriter(schema, TOKENISER).rewrite(data)
    expected = [TOKENISER.scalar("long", 7), TOKENISER.scalar("long", 300)]
    assert fastavro.schemaless_reader(
        io.BytesIO(rewritten), fastavro.parse_schema(schema), None
    ) == {"xs": expected}
    # The tokens change the items' size, so the block's size goes: a positive count instead,
    # as fastavro writes it (a reader skipping by the old size would land mid-record).
    assert rewritten == reference(schema, fastavro.parse_schema(schema), data)
    assert rewritten.startswith(write_long(2))


def test_personal_values_that_cannot_be_tokenised_are_refused_only_when_present() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {
                "name": "born",
                "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}],
                "pii": True,
            }
        ],
    }
    rewriter = Rewriter(schema, TOKENISER)
    assert rewriter.rewrite(write_long(0)) == write_long(0)  # null: nothing personal in it
    with pytest.raises(DesensitiseError, match="timestamp-micros"):
        rewriter.rewrite(write_long(1) + write_long(12345))
    assert Rewriter(schema, None).rewrite(write_long(1) + write_long(12345))  # raw: kept


NODE = {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}


def test_nesting_deeper_than_the_limit_is_undecodable_not_a_crash() -> None:
    """A recursive schema lets each byte nest a level deeper: 100,000 levels overflowed the
    walk's stack (a segfault) before the limit."""
    for key in (TOKENISER, None):
        assert Rewriter(NODE, key).rewrite(write_long(1) * 999 + write_long(0))
        with pytest.raises(UndecodableError, match="nested more than 1000 deep"):
            Rewriter(NODE, key).rewrite(write_long(1) * 100_000 + write_long(0))
    endless = {"type": "record", "name": "R", "fields": [{"name": "r", "type": "R"}]}
    with pytest.raises(UndecodableError, match="nested"):
        Rewriter(endless, None).rewrite(b"")


def test_a_small_record_cannot_ask_for_billions_of_empty_items() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "xs", "type": {"type": "array", "items": "null"}}],
    }
    assert Rewriter(schema, None).rewrite(write_long(2) + write_long(0))  # two nulls: fine
    # 30,000 blocks of 100,000 nulls each, in 90 kB: three billion items.
    many = write_long(100_000) * 30_000 + write_long(0) + bytes(10_000)
    with pytest.raises(UndecodableError, match="more values than a record of its size"):
        Rewriter(schema, None).rewrite(many)


def test_a_personal_fixed_wider_than_the_digest_is_refused_not_cut_short() -> None:
    """Its token would be 32 bytes in a wider slot: bytes no consumer could read."""
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "h", "type": {"type": "fixed", "name": "Wide", "size": 40}, "pii": True}
        ],
    }
    with pytest.raises(DesensitiseError, match="fixed of 40 bytes"):
        Rewriter(schema, TOKENISER).rewrite(bytes(40))
    with pytest.raises(DesensitiseError, match="fixed of 40 bytes"):
        Desensitiser(TOKENISER).record(schema, {"h": bytes(40)})


# Strings whose token depends on a pattern: emails and card tokens, at the patterns' edges
# (Python's `$` before a final newline, its `\s` wider than Unicode's White_Space).
EDGES = [
    "a@b.c",
    "a@b.c\n",
    "a@b.c\n\n",
    "a@.bc",
    "a@bc.",
    "a@b..c",
    "a@b@c.d",
    "@b.c",
    "a@b.",
    "tok_abc_1234",
    "tok_abc_1234\n",
    "tok__1234",
    "tok_a_b_1234",
    "tok_abc_123",
    "tok_é_1234",
    "tok_abc_١٢٣٤",
    "x",
    "",
    *(
        f"a{chr(c)}@b.c"
        for c in [
            *range(0x20),
            0x7F,
            0x85,
            0xA0,
            0x1680,
            0x180E,
            *range(0x2000, 0x200C),
            0x2028,
            0x2029,
            0x202F,
            0x205F,
            0x3000,
            0xFEFF,
        ]
    ),
]
STRING = {"type": "record", "name": "S", "fields": [{"name": "s", "type": "string", "pii": True}]}


@pytest.mark.parametrize("value", EDGES)
def test_native_string_tokens_are_the_tokenisers(value: str) -> None:
    data = value.encode()
    rewritten = Rewriter(STRING, TOKENISER).rewrite(write_long(len(data)) + data)
    assert rewritten.decode()[1:] == TOKENISER.token(value)


@given(st.text())
def test_native_string_tokens_are_the_tokenisers_for_any_text(value: str) -> None:
    test_native_string_tokens_are_the_tokenisers(value)
    test_native_string_tokens_are_the_tokenisers(f"{value}@example.org")
    test_native_string_tokens_are_the_tokenisers(f"tok_{value}_1234")


@given(st.text())
def test_native_json_strings_are_json_dumps(value: str) -> None:
    assert json_string(value) == json.dumps(value)


def test_names_in_a_schema_stay_data() -> None:
    hostile = "x'\nraise SystemExit('injected')\n#"
    schema = {"type": "record", "name": "R", "fields": [{"name": hostile, "type": "string"}]}
    rewriter = Rewriter(schema, TOKENISER)
    assert rewriter.rewrite(write_long(1) + b"a") == write_long(1) + b"a"
    assert rewriter.program == ([("record", 0)], [[("string",)]])


@given(
    st.text(),
    st.integers(0, 2**31),
    st.integers(0, 2**63),
    st.none() | st.binary(),
    st.lists(st.tuples(st.text(), st.binary()), max_size=3),
    st.binary(),
)
def test_a_record_line_is_the_json_of_the_record(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    headers: list[tuple[str, bytes]],
    value: bytes,
) -> None:
    record = CapturedRecord(topic, partition, offset, offset // 7, key, tuple(headers), value, 9)
    expected = json.dumps({"record": record.to_json()}, separators=(",", ":"), sort_keys=True)
    assert record.line() == (expected + "\n").encode()
