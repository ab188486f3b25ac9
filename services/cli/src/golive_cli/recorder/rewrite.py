"""Desensitise Avro without decoding it: walk the bytes, keep public ones, replace personal ones.

Capture used to decode every record with fastavro, walk the Python value beside its schema and
encode it again, only to write most of the same bytes back (0.08x the raw consume rate,
docs/recorder.md). Instead each writer schema is compiled once, here, into a program of walk
ops: which values are skipped (checked, their bytes kept), which are personal and replaced by
their token, which are refused. The native module (services/recorder-native, Rust) runs the
program over each record's bytes. Walking every value also checks the record (lengths, union
branches, enum symbols, UTF-8, uuid strings), so a damaged record still fails with
`UndecodableError` and is left out.

The schema rules live here, in Python, beside `desensitise.Desensitiser`, which applies the same
rules to decoded values (for `golive inspect` and the audit store): a field is personal if
marked `"pii": true`, or inside a personal value unless marked `"pii": false`. The native walker
knows only the encoding. The tokens are identical to the Tokeniser's (tests/replay checks).

A program is `(root ops, ops of each record type)`; an op is a tuple, its tag first:

- `("skip", width)`: boolean, float, double, a public fixed.
- `("varint",)`, `("string",)`, `("uuid",)`, `("bytes",)`: public values, checked.
- `("enum", symbols)`, `("union", [ops per branch])`, `("array", item ops)`,
  `("map", key op, value ops)`, `("record", index)` (a record type may contain itself).
- `("token_string",)`, `("token_uuid",)`, `("token_int",)`, `("token_long",)`,
  `("token_bytes",)`, `("token_fixed", width)`: personal values, replaced by their tokens.
- `("refuse", reason)`: a personal value no token keeps valid (an enum, a timestamp).
"""

from __future__ import annotations

from typing import Any

from golive_recorder_native import Rewriter as _NativeRewriter
from golive_recorder_native import UndecodableError as UndecodableError  # noqa: PLC0414 (re-export)

from golive_cli.recorder.desensitise import (
    DIGEST_BYTES,
    NAMED_KINDS,
    Names,
    Tokeniser,
    field_personal,
)

Op = tuple[Any, ...]
Program = tuple[list[Op], list[list[Op]]]

_WIDTH = {"boolean": 1, "float": 4, "double": 8}


def write_long(value: int) -> bytes:
    """Avro's zig-zag varint."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def compile_schema(schema: Any, *, desensitise: bool) -> Program:
    """The walk program of a writer schema; without `desensitise`, every value is public."""
    return _Compiler(schema, desensitise).program()


class Rewriter:
    """One writer schema compiled. `rewrite(value, start)`: the value desensitised.

    With no tokeniser it only checks the record and returns the bytes unchanged, trailing bytes
    included (as a consumer reads them). With one, nothing the schema does not account for is
    kept: the result ends where the record does, as re-encoding did.
    """

    def __init__(self, schema: Any, tokeniser: Tokeniser | None) -> None:
        self.program = compile_schema(schema, desensitise=tokeniser is not None)
        self._native = _NativeRewriter(self.program, None if tokeniser is None else tokeniser.key)

    def rewrite(self, value: bytes, start: int = 0) -> bytes:
        rewritten = self._native.rewrite(value, start)
        return value if rewritten is None else rewritten


class _Compiler:
    def __init__(self, schema: Any, desensitise: bool) -> None:
        self.schema = schema
        self.names = Names(schema)
        self.desensitise = desensitise
        self.records: list[list[Op]] = []
        self.index: dict[tuple[str, bool], int] = {}  # (record, personal) -> its ops' index

    def program(self) -> Program:
        return self.value(self.schema, False, ""), self.records

    def value(self, schema: Any, personal: bool, namespace: str) -> list[Op]:  # noqa: PLR0911
        personal = personal and self.desensitise
        if isinstance(schema, list):
            return [("union", [self.value(b, personal, namespace) for b in schema])]
        if isinstance(schema, str) and schema in _PRIMITIVES:
            return self.primitive(schema, None, personal)
        if isinstance(schema, str):
            return self.named(*self.names.resolve(schema, namespace), personal)
        kind = schema["type"]
        if kind in NAMED_KINDS:
            full = self.names.full_name(schema, namespace)
            return self.named(*self.names.resolve(full, namespace), personal)
        if kind == "array":
            return [("array", self.value(schema["items"], personal, namespace))]
        if kind == "map":
            key = ("token_string",) if personal else ("string",)
            return [("map", key, self.value(schema["values"], personal, namespace))]
        if kind in _PRIMITIVES:
            return self.primitive(kind, schema.get("logicalType"), personal)
        raise ValueError(f"not an Avro type: {kind!r}")

    def named(self, full: str, schema: dict[str, Any], namespace: str, personal: bool) -> list[Op]:
        kind = schema["type"]
        if kind == "enum":
            refuse = [("refuse", "cannot tokenise a personal enum")] if personal else []
            return [("enum", len(schema["symbols"])), *refuse]
        if kind == "fixed":
            return self.primitive(
                "fixed", schema.get("logicalType"), personal, size=int(schema["size"])
            )
        key = (full, personal)
        if key not in self.index:  # its index first: a record may contain itself
            self.index[key] = len(self.records)
            self.records.append([])
            ops = []
            for field in schema["fields"]:
                ops += self.value(field["type"], field_personal(field, personal), namespace)
            self.records[self.index[key]] = ops
        return [("record", self.index[key])]

    @staticmethod
    def primitive(  # noqa: PLR0911 (one case per kind, public and personal)
        kind: str, logical: str | None, personal: bool, size: int = 0
    ) -> list[Op]:
        if kind == "null":
            return []
        if personal and logical not in (None, "uuid"):
            return [("refuse", f"cannot tokenise a personal {logical}")]
        if personal and kind in _WIDTH:
            return [("refuse", f"cannot tokenise a personal {kind}")]
        if kind in _WIDTH:
            return [("skip", _WIDTH[kind])]
        if kind == "fixed" and personal and size > DIGEST_BYTES:
            return [("refuse", f"cannot tokenise a personal fixed of {size} bytes (at most 32)")]
        if kind == "fixed":
            return [("token_fixed", size) if personal else ("skip", size)]
        if kind in ("int", "long"):
            return [(f"token_{kind}",) if personal else ("varint",)]
        if kind == "string" and logical == "uuid":
            return [("token_uuid",) if personal else ("uuid",)]
        return [(f"token_{kind}",) if personal else (kind,)]


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
