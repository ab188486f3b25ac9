"""The feature flags Golive's services read: each declared once, here, with its type and the value
it takes when it cannot be read (no flags file, a flag missing from it, a value of the wrong
type). infra/flags/flags.json gives them their values in flagd's format, and `golive flags
check` holds that file to these declarations and to flagd's schema; the services evaluate them
through OpenFeature (golive_eventing.flags).

Each routed group of the topology (golive_contracts.topology.ROUTED) has two flags, derived
here: its route (which version slot decides a key not yet pinned; a `fractional` rule on the
order id splits keys for a canary; its metadata names the live slot) and its shadow (the slot
that also gets a copy of every input, or none). ADR 0012, docs/runbooks/release-a-new-version.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from golive_contracts.topology import ROUTED, SLOTS

FlagValue = bool | str | int | float
NO_SHADOW = "none"


@dataclass(frozen=True)
class Flag:
    key: str
    owner: str  # who reads it: a service, or a router (`payment-router`)
    # Its value when it cannot be read: the safe one, said in the log. None: there is no safe
    # guess, and the reader waits until it can read the flag (a route).
    fallback: FlagValue | None
    description: str
    of: type | None = None  # its type, where the fallback does not say it
    values: tuple[str, ...] = ()  # the only values its variants may take, if limited

    @property
    def kind(self) -> type:
        return self.of or type(self.fallback)


ORDERS_OPEN = Flag(
    "orders-open",
    owner="order",
    fallback=True,
    description="The order API takes new orders. Off: POST /orders answers 503 with "
    "Retry-After (orders already placed go on to their end); reads are unaffected.",
)


def route_flag(routed: str) -> Flag:
    return Flag(
        f"{routed}-route",
        owner=f"{routed}-router",
        fallback=None,
        of=str,
        values=SLOTS,
        description=f"The version slot that decides a {routed} key not yet pinned "
        f"({', '.join(SLOTS)}); a fractional rule on order_id sends a share of keys to the "
        "candidate (canary); metadata.live names the live slot. Unreadable: the router waits.",
    )


def shadow_flag(routed: str) -> Flag:
    return Flag(
        f"{routed}-shadow",
        owner=f"{routed}-router",
        fallback=NO_SHADOW,
        values=(NO_SHADOW, *SLOTS),
        description=f"The slot that also gets a shadow copy of every {routed} input (its "
        f"outputs go to shadow topics only), or {NO_SHADOW}.",
    )


FLAGS = (
    ORDERS_OPEN,
    *(f for g in ROUTED for f in (route_flag(g.name), shadow_flag(g.name))),
)


def flag(key: str) -> Flag:
    found = next((f for f in FLAGS if f.key == key), None)
    if found is None:
        raise KeyError(f"no flag {key!r}: one of {', '.join(f.key for f in FLAGS)}")
    return found
