"""Desensitise Avro without decoding it: walk the bytes, keep public ones, replace personal ones.

Capture used to decode every record with fastavro, walk the Python value beside its schema and
encode it again: a dict, datetimes and UUIDs per record, only to write most of the same bytes
back. That ran at 0.08x the raw consume rate (docs/recorder.md). A `Rewriter` instead steps
through the binary encoding: public values are skipped and their bytes kept as they are;
personal ones are read, tokenised by the same `Tokeniser` and written in their place. Walking
every value also checks the record (lengths, union branches, enum symbols, UTF-8, uuid
strings), so a damaged record still fails with `UndecodableError` and is left out.

Each writer schema is compiled once into Python source, one function per record type, the way
dataclasses and fastavro build theirs: straight-line code per field with the one-byte varint
read inline is several times faster than a call per field. `Rewriter.source` shows the code.
No text from the schema reaches the code except as `repr()` in comments; names and sizes are
passed as constants.

The rules are those of `desensitise.Desensitiser`, which does the same on decoded values (for
`golive inspect` and the audit store): a field is personal if marked `"pii": true`, or inside a
personal value unless marked `"pii": false`; the tokens are identical (tests/replay checks both
agree).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from golive_cli.recorder.desensitise import (
    NAMED_KINDS,
    DesensitiseError,
    Names,
    Tokeniser,
    field_personal,
)

# Edits collected while walking: (start, end, new bytes) of each personal value, in order.
Edits = list[tuple[int, int, bytes]]
Walk = Callable[[bytes, int, Edits], int]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_WIDTH = {"boolean": 1, "float": 4, "double": 8}
# Python allows 20 nested blocks per function; deeper anonymous nesting gets its own function.
_MAX_DEPTH = 8


class UndecodableError(ValueError):
    """The bytes are not a value of the writer schema."""


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """Avro's zig-zag varint at `pos`: (value, position after it)."""
    byte = buf[pos]
    pos += 1
    n = byte & 0x7F
    shift = 7
    while byte & 0x80:
        if shift > 63:
            raise UndecodableError("a number longer than ten bytes")
        byte = buf[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def write_long(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class Rewriter:
    """One writer schema compiled. `rewrite(value, start)`: the value desensitised.

    With no tokeniser it only checks the record and returns the bytes unchanged, trailing bytes
    included (as a consumer reads them). With one, nothing the schema does not account for is
    kept: the result ends where the record does, as re-encoding did.
    """

    def __init__(self, schema: Any, tokeniser: Tokeniser | None) -> None:
        self._tokeniser = tokeniser
        scope = _scope(tokeniser)
        self.source = _Generator(schema, scope, desensitise=tokeniser is not None).module()
        exec(compile(self.source, "<golive rewriter>", "exec"), scope)  # noqa: S102
        self._walk: Walk = scope["walk"]

    def rewrite(self, value: bytes, start: int = 0) -> bytes:
        edits: Edits = []
        try:
            end = self._walk(value, start, edits)
        except (UndecodableError, DesensitiseError):
            raise
        except (IndexError, ValueError) as exc:  # ran off the end; not UTF-8; not a uuid
            raise UndecodableError(f"does not decode: {exc or 'ends inside a value'}") from None
        if end > len(value):
            raise UndecodableError("ends inside a value")
        if self._tokeniser is None:
            return value
        parts = []
        last = 0
        for at, until, new in edits:
            parts.append(value[last:at])
            parts.append(new)
            last = until
        parts.append(value[last:end])
        return b"".join(parts)


def _scope(tokeniser: Tokeniser | None) -> dict[str, Any]:
    """What the generated code calls: varints, errors, and the tokens of personal values."""
    scope: dict[str, Any] = {
        "read_long": read_long,
        "bad_length": _bad_length,
        "bad_index": _bad_index,
        "check_uuid": _check_uuid,
        "DesensitiseError": DesensitiseError,
    }
    if tokeniser is None:
        return scope

    def framed(token: bytes) -> bytes:
        return write_long(len(token)) + token

    def string(raw: bytes) -> bytes:
        return framed(tokeniser.token(raw.decode()).encode())

    def uuid_string(raw: bytes) -> bytes:
        return framed(str(tokeniser.scalar("string", uuid.UUID(raw.decode()))).encode())

    scope.update(
        token_string=lru_cache(maxsize=65536)(string),
        token_uuid=uuid_string,
        token_int=lambda v: write_long(tokeniser.scalar("int", v)),
        token_long=lambda v: write_long(tokeniser.scalar("long", v)),
        token_bytes=lambda raw: framed(tokeniser.digest(raw)),
        token_fixed=lambda raw: tokeniser.digest(raw)[: len(raw)],
    )
    return scope


def _bad_length(size: int) -> None:
    raise UndecodableError(f"a length of {size} runs past the record")


def _bad_index(what: str, index: int, count: int) -> None:
    raise UndecodableError(f"{what} {index} of {count}")


# The form every writer uses; anything else goes through uuid.UUID, which fastavro decodes with.
_CANONICAL_UUID = re.compile(rb"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}").fullmatch


def _check_uuid(raw: bytes) -> None:
    if _CANONICAL_UUID(raw) is None:
        uuid.UUID(raw.decode())


class _Generator:
    """Python source for one schema: `walk(buf, p, edits) -> p`, one function per record type."""

    def __init__(self, schema: Any, scope: dict[str, Any], *, desensitise: bool) -> None:
        self.schema = schema
        self.names = Names(schema)
        self.scope = scope  # constants the code refers to are added here
        self.desensitise = desensitise
        self.functions: dict[tuple[str, bool], str] = {}  # (record, personal) -> function name
        self.pending: list[tuple[str, Callable[[list[str]], None]]] = []
        self.counter = 0

    def module(self) -> str:
        schema = self.schema
        self.pending.append(("walk", lambda code: self._value(code, schema, False, "", depth=1)))
        bodies = []
        while self.pending:
            name, emit = self.pending.pop()
            code = [f"def {name}(buf, p, edits):", "    L = len(buf)"]
            emit(code)
            code.append("    return p")
            bodies.append("\n".join(code))
        return "\n\n".join(bodies) + "\n"

    def _fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    # -- values -------------------------------------------------------------------------------

    def _value(
        self, code: list[str], schema: Any, personal: bool, namespace: str, depth: int
    ) -> None:
        personal = personal and self.desensitise
        if depth > _MAX_DEPTH:
            self._call(code, self._fresh("nested"), schema, personal, namespace, depth)
            return
        if isinstance(schema, list):
            self._union(code, schema, personal, namespace, depth)
        elif isinstance(schema, str) and schema in _PRIMITIVES:
            self._primitive(code, schema, None, personal, depth)
        elif isinstance(schema, str):
            self._named(code, *self.names.resolve(schema, namespace), personal, depth)
        elif schema["type"] in NAMED_KINDS:
            full = self.names.full_name(schema, namespace)
            self._named(code, *self.names.resolve(full, namespace), personal, depth)
        elif schema["type"] == "array":
            self._blocks(code, schema["items"], None, personal, namespace, depth)
        elif schema["type"] == "map":
            self._blocks(code, schema["values"], "string", personal, namespace, depth)
        elif schema["type"] in _PRIMITIVES:
            self._primitive(code, schema["type"], schema.get("logicalType"), personal, depth)
        else:
            raise ValueError(f"not an Avro type: {schema['type']!r}")

    def _named(
        self,
        code: list[str],
        full: str,
        schema: dict[str, Any],
        namespace: str,
        personal: bool,
        depth: int,
    ) -> None:
        kind = schema["type"]
        if kind == "enum":
            self._varint(code, "n", depth)
            count = len(schema["symbols"])
            pad = "    " * depth
            code.append(f"{pad}if not 0 <= n < {count}: bad_index('enum symbol', n, {count})")
            if personal:
                self._refuse(code, "cannot tokenise a personal enum", depth)
        elif kind == "fixed":
            self._primitive(code, "fixed", schema.get("logicalType"), personal, depth,
                            size=int(schema["size"]))  # fmt: skip
        else:  # a record: its own function, shared by every use (and by itself if recursive)
            key = (full, personal)
            if key not in self.functions:
                self.functions[key] = self._fresh("record")
                self.pending.append(
                    (
                        self.functions[key],
                        lambda code: self._fields(code, schema, namespace, personal),
                    )
                )
            code.append(f"{'    ' * depth}p = {self.functions[key]}(buf, p, edits)  # {full!r}")

    def _call(
        self, code: list[str], name: str, schema: Any, personal: bool, namespace: str, depth: int
    ) -> None:
        self.pending.append(
            (name, lambda code: self._value(code, schema, personal, namespace, depth=1))
        )
        code.append(f"{'    ' * depth}p = {name}(buf, p, edits)")

    def _fields(
        self, code: list[str], schema: dict[str, Any], namespace: str, personal: bool
    ) -> None:
        for field in schema["fields"]:
            code.append(f"    # {field['name']!r}")
            self._value(code, field["type"], field_personal(field, personal), namespace, depth=1)

    def _union(
        self, code: list[str], branches: list[Any], personal: bool, namespace: str, depth: int
    ) -> None:
        pad = "    " * depth
        self._varint(code, "n", depth)
        for index, branch in enumerate(branches):
            code.append(f"{pad}{'if' if index == 0 else 'elif'} n == {index}:")
            before = len(code)
            self._value(code, branch, personal, namespace, depth + 1)
            if len(code) == before:
                code.append(f"{pad}    pass")
        code.append(f"{pad}else:")
        code.append(f"{pad}    bad_index('union branch', n, {len(branches)})")

    def _blocks(
        self,
        code: list[str],
        item: Any,
        key: str | None,
        personal: bool,
        namespace: str,
        depth: int,
    ) -> None:
        """Arrays and maps: blocks of items; a negative count is followed by the block's size."""
        pad = "    " * depth
        count = self._fresh("c")
        code.append(f"{pad}while True:")
        self._varint(code, count, depth + 1)
        code += [
            f"{pad}    if {count} == 0:",
            f"{pad}        break",
            f"{pad}    if {count} < 0:",
            f"{pad}        {count} = -{count}",
            f"{pad}        _, p = read_long(buf, p)",
            f"{pad}    if {count} > L:",
            f"{pad}        bad_index('block of items', {count}, L)",
            f"{pad}    for _ in range({count}):",
        ]
        if key is not None:
            self._primitive(code, key, None, personal, depth + 2)
        self._value(code, item, personal, namespace, depth + 2)

    def _varint(self, code: list[str], into: str, depth: int) -> None:
        """Read a varint into `into`; the one-byte case, nearly every length, stays inline."""
        pad = "    " * depth
        code += [
            f"{pad}{into} = buf[p]",
            f"{pad}if {into} & 0x80:",
            f"{pad}    {into}, p = read_long(buf, p)",
            f"{pad}else:",
            f"{pad}    {into} = ({into} >> 1) ^ -({into} & 1)",
            f"{pad}    p += 1",
        ]

    def _span(self, code: list[str], depth: int) -> None:
        """A length-prefixed value at p: its bytes are buf[p:e] afterwards."""
        pad = "    " * depth
        self._varint(code, "n", depth)
        code += [f"{pad}e = p + n", f"{pad}if n < 0 or e > L:", f"{pad}    bad_length(n)"]

    def _primitive(  # noqa: PLR0912 (one case per primitive, public and personal)
        self,
        code: list[str],
        kind: str,
        logical: str | None,
        personal: bool,
        depth: int,
        size: int = 0,
    ) -> None:
        pad = "    " * depth
        if kind == "null":
            return
        if personal and logical not in (None, "uuid"):
            self._refuse(code, f"cannot tokenise a personal {logical}", depth)
        elif personal and kind in ("boolean", "float", "double"):
            self._refuse(code, f"cannot tokenise a personal {kind}", depth)
        elif kind in _WIDTH:
            code.append(f"{pad}p += {_WIDTH[kind]}")
        elif kind == "fixed" and personal:
            code += [f"{pad}e = p + {size}",
                     f"{pad}edits.append((p, e, token_fixed(buf[p:e])))", f"{pad}p = e"]  # fmt: skip
        elif kind == "fixed":
            code.append(f"{pad}p += {size}")
        elif kind in ("int", "long") and personal:
            code += [f"{pad}s = p", f"{pad}n, p = read_long(buf, p)",
                     f"{pad}edits.append((s, p, token_{kind}(n)))"]  # fmt: skip
        elif kind in ("int", "long"):
            code += [f"{pad}while buf[p] & 0x80:", f"{pad}    p += 1", f"{pad}p += 1"]
        else:  # string or bytes: a length, then the bytes
            helper = {"bytes": "token_bytes", "string": "token_string"}[kind]
            if kind == "string" and logical == "uuid":
                helper = "token_uuid"
            if personal:
                code.append(f"{pad}s = p")
            self._span(code, depth)
            if personal:
                code.append(f"{pad}edits.append((s, e, {helper}(buf[p:e])))")
            elif kind == "string" and logical == "uuid":
                code.append(f"{pad}check_uuid(buf[p:e])")
            elif kind == "string":
                code.append(f"{pad}buf[p:e].decode()")
            code.append(f"{pad}p = e")

    def _refuse(self, code: list[str], reason: str, depth: int) -> None:
        name = f"k{len(self.scope)}"
        self.scope[name] = reason
        code.append(f"{'    ' * depth}raise DesensitiseError({name})")
