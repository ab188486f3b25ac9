"""The feature flags Golive's services read: each declared once, here, with its type and the value
it takes when it cannot be read (no flags file, a flag missing from it, a value of the wrong
type). infra/flags/flags.json gives them their values in flagd's format, and `golive flags
check` holds that file to these declarations and to flagd's schema; the services evaluate them
through OpenFeature (golive_eventing.flags).
"""

from __future__ import annotations

from dataclasses import dataclass

FlagValue = bool | str | int | float


@dataclass(frozen=True)
class Flag:
    key: str
    owner: str  # the service that reads it
    fallback: FlagValue  # its value when it cannot be read: the safe one, said in the log
    description: str

    @property
    def kind(self) -> type:
        return type(self.fallback)


ORDERS_OPEN = Flag(
    "orders-open",
    owner="order",
    fallback=True,
    description="The order API takes new orders. Off: POST /orders answers 503 with "
    "Retry-After (orders already placed go on to their end); reads are unaffected.",
)

FLAGS = (ORDERS_OPEN,)


def flag(key: str) -> Flag:
    found = next((f for f in FLAGS if f.key == key), None)
    if found is None:
        raise KeyError(f"no flag {key!r}: one of {', '.join(f.key for f in FLAGS)}")
    return found
