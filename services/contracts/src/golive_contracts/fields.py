"""Every field says whether it is personal data: the mark travels into the Avro schema as "pii"."""

from __future__ import annotations

from typing import Any

from pydantic import Field

PII_KEY = "pii"


def personal(description: str, **kwargs: Any) -> Any:
    """A field holding personal data: desensitised in captures, encrypted per customer later."""
    return Field(description=description, json_schema_extra={PII_KEY: True}, **kwargs)


def public(description: str, **kwargs: Any) -> Any:
    """A field holding no personal data."""
    return Field(description=description, json_schema_extra={PII_KEY: False}, **kwargs)
