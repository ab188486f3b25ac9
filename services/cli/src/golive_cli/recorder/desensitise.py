"""Personal data out, joins and business rules kept: deterministic keyed tokens (HMAC-SHA256).

Which fields are personal is read from the writer schema ("pii": true on an Avro field, written
by golive_contracts from personal()). A field inside a personal record is personal unless it is
marked "pii": false itself. The same value maps to the same token in every field and event, so
a customer or an email still joins up. Formats that consumers validate are kept: an email stays
an email (at example.com, reserved by RFC 2606), a card token stays tok_<id>_<last four> with
its last four digits (the payment rules read them).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import uuid
from functools import lru_cache
from typing import Any

from golive_contracts.fields import PII_KEY

# One class for both paths: the native walker (capture) raises it too. A ValueError.
from golive_recorder_native import DesensitiseError as DesensitiseError  # noqa: PLC0414

KEY_ENV = "GOLIVE_CAPTURE_KEY"
# Only with an explicit --dev-key: public, so its tokens protect nothing outside a laptop or CI.
DEV_KEY = b"golive-dev-capture-key:not-a-secret"
MIN_KEY_BYTES = 16
DIGEST_BYTES = 32  # a personal fixed value's token is its digest cut to its width: at most this

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CARD_TOKEN = re.compile(r"^tok_[A-Za-z0-9]+_([0-9]{4})$")


class MissingKeyError(ValueError):
    """No key: desensitising needs a per-environment secret, or an explicit dev default."""


def capture_key(explicit: str | None, *, dev: bool) -> tuple[bytes, str]:
    """The HMAC key and its public id; refuses to guess one."""
    if explicit:
        key = explicit.encode()
    elif dev:
        return DEV_KEY, "dev"
    else:
        raise MissingKeyError(
            f"no desensitisation key: set {KEY_ENV} (at least {MIN_KEY_BYTES} bytes, one per "
            "environment, from your secret store), or pass --dev-key for the public development key"
        )
    if len(key) < MIN_KEY_BYTES:
        raise MissingKeyError(f"{KEY_ENV} is too short: at least {MIN_KEY_BYTES} bytes")
    return key, key_id(key)


def key_from_env() -> str | None:
    return os.environ.get(KEY_ENV) or None


def key_id(key: bytes) -> str:
    """Names a key without revealing it: two captures with the same id have joinable tokens."""
    return hmac.new(key, b"golive-capture-key-id", hashlib.sha256).hexdigest()[:12]


class Tokeniser:
    def __init__(self, key: bytes) -> None:
        self._key = key
        self.token = lru_cache(maxsize=65536)(self._token)

    @property
    def key(self) -> bytes:
        """The HMAC key: what the native walker tokenises with (the same tokens)."""
        return self._key

    def digest(self, value: bytes) -> bytes:
        return hmac.new(self._key, value, hashlib.sha256).digest()

    def _token(self, value: str) -> str:
        hexed = self.digest(value.encode()).hex()
        card = _CARD_TOKEN.match(value)
        if card:
            return f"tok_{hexed[:24]}_{card.group(1)}"
        if _EMAIL.match(value):
            return f"u{hexed[:20]}@example.com"
        return f"p{hexed[:16]}"

    def scalar(self, avro_type: str, value: Any) -> Any:
        if isinstance(value, str):
            return self.token(value)
        if isinstance(value, uuid.UUID):
            return uuid.UUID(bytes=self.digest(value.bytes)[:16], version=4)
        if isinstance(value, bytes) and avro_type == "fixed" and len(value) > DIGEST_BYTES:
            raise DesensitiseError(
                f"cannot tokenise a personal fixed of {len(value)} bytes (at most 32)"
            )
        if isinstance(value, bytes):
            return self.digest(value)[: len(value)] if avro_type == "fixed" else self.digest(value)
        if isinstance(value, int) and not isinstance(value, bool) and avro_type in ("int", "long"):
            bits = 31 if avro_type == "int" else 63
            return int.from_bytes(self.digest(str(value).encode())[:8], "big") % (1 << bits)
        raise DesensitiseError(f"cannot tokenise a personal {avro_type} ({type(value).__name__})")


def field_personal(field: dict[str, Any], inherited: bool) -> bool:
    """A field is personal if marked so, or inside a personal value unless marked public."""
    return bool(field.get(PII_KEY, inherited))


NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})


class Names:
    """A schema's named types (records, enums, fixed) by full name, each with its namespace.

    All are collected before anything is walked: a type may be defined inside a value that is
    absent (a null branch) and referenced by name later.
    """

    def __init__(self, schema: Any) -> None:
        self.types: dict[str, tuple[dict[str, Any], str]] = {}
        self._collect(schema, "")

    @staticmethod
    def full_name(schema: dict[str, Any], namespace: str) -> str:
        name = str(schema["name"])
        if "." in name:
            return name
        namespace = schema.get("namespace", namespace)
        return f"{namespace}.{name}" if namespace else name

    def resolve(self, name: str, namespace: str) -> tuple[str, dict[str, Any], str]:
        """(full name, schema, its namespace) of a name used inside `namespace`."""
        for full in (f"{namespace}.{name}" if namespace and "." not in name else name, name):
            if full in self.types:
                return full, *self.types[full]
        raise ValueError(f"the schema refers to an undefined type {name!r}")

    def _collect(self, schema: Any, namespace: str) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
        elif isinstance(schema, dict):
            kind = schema.get("type")
            if kind in NAMED_KINDS:
                full = self.full_name(schema, namespace)
                inner = full.rpartition(".")[0]
                self.types.setdefault(full, (schema, inner))
                for f in schema.get("fields", ()):
                    self._collect(f["type"], inner)
            elif kind == "array":
                self._collect(schema["items"], namespace)
            elif kind == "map":
                self._collect(schema["values"], namespace)
            else:
                self._collect(kind, namespace)


class Desensitiser:
    """Walks a decoded record beside its writer schema, replacing personal values by tokens.

    Capture does the same on the encoded bytes (rewrite.py); this one serves values already
    decoded: `golive inspect` and the audit store.
    """

    def __init__(self, tokeniser: Tokeniser) -> None:
        self.tokeniser = tokeniser

    def record(self, schema: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._walk(schema, value, False, "", Names(schema))
        return result

    def _walk(self, schema: Any, value: Any, personal: bool, namespace: str, names: Names) -> Any:
        if value is None:
            return None
        if isinstance(schema, list):
            branch = _branch(schema, value, namespace, names)
            return self._walk(branch, value, personal, namespace, names)
        if isinstance(schema, str) and schema not in _PYTHON_TYPES:
            _, named, namespace = names.resolve(schema, namespace)
            return self._complex(named, value, personal, namespace, names)
        if isinstance(schema, str):
            return self.tokeniser.scalar(schema, value) if personal else value
        if schema["type"] in NAMED_KINDS:
            _, named, namespace = names.resolve(names.full_name(schema, namespace), namespace)
            return self._complex(named, value, personal, namespace, names)
        return self._complex(schema, value, personal, namespace, names)

    def _complex(
        self, schema: dict[str, Any], value: Any, personal: bool, namespace: str, names: Names
    ) -> Any:
        kind = schema["type"]
        if kind in ("record", "error"):
            return {
                f["name"]: self._walk(
                    f["type"], value.get(f["name"]), field_personal(f, personal), namespace, names
                )
                for f in schema["fields"]
            }
        if kind == "array":
            return [self._walk(schema["items"], v, personal, namespace, names) for v in value]
        if kind == "map":
            return {
                (self.tokeniser.token(k) if personal else k): self._walk(
                    schema["values"], v, personal, namespace, names
                )
                for k, v in value.items()
            }
        if not personal:
            return value
        if kind == "enum" or schema.get("logicalType", "").startswith(
            ("timestamp", "date", "time")
        ):
            raise DesensitiseError(f"cannot tokenise a personal {schema.get('logicalType', kind)}")
        return self.tokeniser.scalar(kind, value)


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "string": (str, uuid.UUID),
    "bytes": (bytes,),
    "int": (int,),
    "long": (int,),
    "boolean": (bool,),
    "float": (float,),
    "double": (float,),
    "array": (list,),
    "map": (dict,),
    "record": (dict,),
}


def _branch(union: list[Any], value: Any, namespace: str, names: Names) -> Any:
    """The union branch a decoded value came from (fastavro returns the value alone)."""
    candidates = [b for b in union if b != "null"]
    if len(candidates) == 1:
        return candidates[0]
    for branch in candidates:
        resolved = branch
        if isinstance(branch, str) and branch not in _PYTHON_TYPES:
            resolved = names.resolve(branch, namespace)[1]
        kind = resolved if isinstance(resolved, str) else resolved["type"]
        if kind == "record" and isinstance(value, dict):
            if set(value) == {f["name"] for f in resolved["fields"]}:
                return branch
        elif isinstance(value, _PYTHON_TYPES.get(kind, ())):
            return branch
    raise DesensitiseError(f"no branch of union {union} matches a {type(value).__name__}")
