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

KEY_ENV = "GOLIVE_CAPTURE_KEY"
# Only with an explicit --dev-key: public, so its tokens protect nothing outside a laptop or CI.
DEV_KEY = b"golive-dev-capture-key:not-a-secret"
MIN_KEY_BYTES = 16

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CARD_TOKEN = re.compile(r"^tok_[A-Za-z0-9]+_([0-9]{4})$")


class DesensitiseError(ValueError):
    """A personal field this build cannot tokenise safely: the record is left out, not leaked."""


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
        if isinstance(value, bytes):
            return self.digest(value)[: len(value)] if avro_type == "fixed" else self.digest(value)
        if isinstance(value, int) and not isinstance(value, bool) and avro_type in ("int", "long"):
            bits = 31 if avro_type == "int" else 63
            return int.from_bytes(self.digest(str(value).encode())[:8], "big") % (1 << bits)
        raise DesensitiseError(f"cannot tokenise a personal {avro_type} ({type(value).__name__})")


def has_personal(schema: Any) -> bool:
    """True if any field anywhere in the schema is marked personal."""
    if isinstance(schema, list):
        return any(has_personal(s) for s in schema)
    if isinstance(schema, dict):
        if schema.get("type") == "record":
            return any(f.get(PII_KEY) is True or has_personal(f["type"]) for f in schema["fields"])
        return has_personal(schema.get("items")) or has_personal(schema.get("values"))
    return False


class Desensitiser:
    """Walks a decoded record beside its writer schema, replacing personal values by tokens."""

    def __init__(self, tokeniser: Tokeniser) -> None:
        self.tokeniser = tokeniser

    def record(self, schema: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._walk(schema, value, personal=False, names={})
        return result

    def _walk(self, schema: Any, value: Any, *, personal: bool, names: dict[str, Any]) -> Any:
        if value is None:
            return None
        if isinstance(schema, list):
            return self._walk(_branch(schema, value, names), value, personal=personal, names=names)
        if isinstance(schema, str):
            if schema in names:
                return self._walk(names[schema], value, personal=personal, names=names)
            return self.tokeniser.scalar(schema, value) if personal else value
        return self._complex(schema, value, personal=personal, names=names)

    def _complex(
        self, schema: dict[str, Any], value: Any, *, personal: bool, names: dict[str, Any]
    ) -> Any:
        kind = schema["type"]
        if kind == "record":
            _define(schema, names)
            return {
                f["name"]: self._walk(
                    f["type"], value.get(f["name"]), personal=f.get(PII_KEY, personal), names=names
                )
                for f in schema["fields"]
            }
        if kind == "array":
            return [self._walk(schema["items"], v, personal=personal, names=names) for v in value]
        if kind == "map":
            return {
                (self.tokeniser.token(k) if personal else k): self._walk(
                    schema["values"], v, personal=personal, names=names
                )
                for k, v in value.items()
            }
        if kind == "fixed":
            _define(schema, names)
        if not personal:
            return value
        if kind == "enum" or schema.get("logicalType", "").startswith(
            ("timestamp", "date", "time")
        ):
            raise DesensitiseError(f"cannot tokenise a personal {schema.get('logicalType', kind)}")
        return self.tokeniser.scalar(kind, value)


def _define(schema: dict[str, Any], names: dict[str, Any]) -> None:
    name = schema["name"]
    namespace = schema.get("namespace")
    names[name] = schema
    if namespace and "." not in name:
        names[f"{namespace}.{name}"] = schema


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
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


def _branch(union: list[Any], value: Any, names: dict[str, Any]) -> Any:
    """The union branch a decoded value came from (fastavro returns the value alone)."""
    candidates = [b for b in union if b != "null"]
    if len(candidates) == 1:
        return candidates[0]
    for branch in candidates:
        resolved = names.get(branch, branch) if isinstance(branch, str) else branch
        kind = resolved if isinstance(resolved, str) else resolved["type"]
        if kind == "record" and isinstance(value, dict):
            if set(value) == {f["name"] for f in resolved["fields"]}:
                return branch
        elif isinstance(value, _PYTHON_TYPES.get(kind, ())):
            return branch
    raise DesensitiseError(f"no branch of union {union} matches a {type(value).__name__}")
