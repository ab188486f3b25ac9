"""`golive release`: a routed group's route, read from and written to the flags (ADR 0012).

A routed group (payment) runs two version slots; its route flag says which slot decides a key
not yet pinned, its shadow flag which slot also gets a copy of every input. The route flag's
metadata names the live slot; the other is the candidate. Each release action is a rewrite of
the flags, which the router reads within a second:

| action   | new keys go to                                    | shadow copies to |
|----------|---------------------------------------------------|------------------|
| shadow   | the live slot                                     | the candidate    |
| canary N | N% of keys to the candidate (flagd `fractional` on order_id), the rest live | none |
| switch   | the candidate                                     | none             |
| rollback | the live slot                                     | none             |
| promote  | the candidate, which becomes the live slot        | none             |

Keys already pinned stay where they are: a route change moves only keys not yet seen. The
functions here are pure (a flags document in, a new one out); the command reads and writes the
file and says what changed.

Every action is recorded before it takes effect: a ReleaseRouteChanged event (`recorded`) on
the releases topic, written under the `release` login; an action that cannot be recorded is
not taken. The audit service keeps them (GET /releases), so an incident is lined up with the
release that caused it.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Literal

from golive_contracts.envelope import Envelope
from golive_contracts.events import ReleaseRouteChanged
from golive_contracts.flags import NO_SHADOW, route_flag, shadow_flag
from golive_contracts.topology import RELEASES, SLOTS, routed, topic

from golive_cli.deploy import SLOT_RULES

if TYPE_CHECKING:
    from golive_cli.shadow import Intended

Mode = Literal["live", "shadow", "canary", "switched"]
ORDER_ID = "order_id"  # the attribute a canary splits on (golive_eventing.router)
# Who takes release actions, to the broker: the releases topic's one writer.
RELEASE = topic(RELEASES).writer
ACTOR_ENV = "GOLIVE_ACTOR"


class ReleaseError(ValueError):
    """A release action that cannot be taken from the route as it is."""


@dataclass(frozen=True)
class Route:
    """A routed group's route as the flags say it."""

    group: str
    live: str
    mode: Mode
    share: int  # percent of new keys the candidate decides

    @property
    def candidate(self) -> str:
        return next(s for s in SLOTS if s != self.live)

    @property
    def deciding(self) -> tuple[str, ...]:
        """The slots that get inputs on this route: the live one alone, or both."""
        return (self.live,) if self.mode == "live" else SLOTS

    def __str__(self) -> str:
        what = {
            "live": f"every new key to {self.live} (live)",
            "shadow": f"every new key to {self.live} (live), a shadow copy to {self.candidate}",
            "canary": f"{self.share}% of new keys to {self.candidate} (candidate), the rest to "
            f"{self.live} (live)",
            "switched": f"every new key to {self.candidate} (candidate; rollback returns them "
            f"to {self.live})",
        }[self.mode]
        return f"{self.group}: {self.mode}: {what}"


@dataclass(frozen=True)
class Candidate:
    """What the version in a slot declares: the version its outputs carry, and the differences
    from the live version it means to make (a shadow comparison's gate)."""

    version: str
    intended: Intended


def candidate(group: str, slot: str) -> Candidate:
    """The version a routed group's slot runs (golive_cli.deploy.SLOT_RULES) and what it
    declares. One entry per routed group of the topology."""
    if group == "payment":
        from golive_payment.domain.rules import INTENDED  # noqa: PLC0415
        from golive_payment.entrypoints.consumers import AuthorizeOrders  # noqa: PLC0415

        rules = SLOT_RULES[slot]
        return Candidate(AuthorizeOrders(rules).version, INTENDED[rules])
    raise KeyError(f"no version declarations for {group!r}")


def route(document: dict[str, Any], group: str) -> Route:
    """The route of routed group `group` in a flags document."""
    routed(group)  # a KeyError naming the routed groups if it is not one
    flags = document["flags"]
    for declared in (route_flag(group), shadow_flag(group)):
        if declared.key not in flags:
            raise ReleaseError(
                f"the flags have no {declared.key!r} ({declared.description}): add it as "
                "infra/flags/flags.json has it"
            )
    body = flags[route_flag(group).key]
    live = str(body.get("metadata", {}).get("live", SLOTS[0]))
    if live not in SLOTS:
        raise ReleaseError(f"{route_flag(group).key}: metadata.live is {live!r}, not a slot")
    default = body["variants"][body["defaultVariant"]]
    shadow = flags[shadow_flag(group).key]
    shadowing = shadow["variants"][shadow["defaultVariant"]] != NO_SHADOW
    split = _split(body.get("targeting"), body["variants"])
    if split is not None:
        share = split.get(next(s for s in SLOTS if s != live), 0)
        return Route(group, live, "canary", share)
    if default != live:
        return Route(group, live, "switched", 100)
    return Route(group, live, "shadow" if shadowing else "live", 0)


def _split(targeting: Any, variants: dict[str, str]) -> dict[str, int] | None:
    """A canary's shares per slot, from a `fractional` rule; None without one."""
    if not isinstance(targeting, dict) or "fractional" not in targeting:
        return None
    buckets = [b for b in targeting["fractional"] if isinstance(b, list)]
    return {str(variants.get(b[0], b[0])): int(b[1]) for b in buckets}


def _rewrite(
    document: dict[str, Any],
    group: str,
    *,
    to: str,
    live: str,
    shadow: str = NO_SHADOW,
    targeting: dict[str, Any] | None = None,
) -> dict[str, Any]:
    flags = dict(document["flags"])
    route_key, shadow_key = route_flag(group).key, shadow_flag(group).key
    body = {k: v for k, v in flags[route_key].items() if k != "targeting"}
    body["variants"] = {slot: slot for slot in SLOTS}
    body["defaultVariant"] = to
    body["metadata"] = {**body.get("metadata", {}), "live": live}
    if targeting is not None:
        body["targeting"] = targeting
    flags[route_key] = body
    shadowed = dict(flags[shadow_key])
    shadowed["variants"] = {NO_SHADOW: NO_SHADOW, **{slot: slot for slot in SLOTS}}
    shadowed["defaultVariant"] = shadow
    flags[shadow_key] = shadowed
    return {**document, "flags": flags}


def shadow(document: dict[str, Any], group: str) -> dict[str, Any]:
    now = route(document, group)
    return _rewrite(document, group, to=now.live, live=now.live, shadow=now.candidate)


def canary(document: dict[str, Any], group: str, percent: int) -> dict[str, Any]:
    if not 0 < percent < 100:
        raise ReleaseError(f"a canary's share is between 1 and 99 percent, not {percent}")
    now = route(document, group)
    rule = {
        "fractional": [
            {"var": ORDER_ID},
            [now.live, 100 - percent],
            [now.candidate, percent],
        ]
    }
    return _rewrite(document, group, to=now.live, live=now.live, targeting=rule)


def switch(document: dict[str, Any], group: str) -> dict[str, Any]:
    now = route(document, group)
    return _rewrite(document, group, to=now.candidate, live=now.live)


def rollback(document: dict[str, Any], group: str) -> dict[str, Any]:
    now = route(document, group)
    if now.mode == "live":
        raise ReleaseError(f"{group}: nothing to roll back, every new key goes to {now.live}")
    return _rewrite(document, group, to=now.live, live=now.live)


def promote(document: dict[str, Any], group: str) -> dict[str, Any]:
    """The candidate becomes the live slot; the old live slot is free for the next version."""
    now = route(document, group)
    return _rewrite(document, group, to=now.candidate, live=now.candidate)


def actor() -> str:
    """Who takes a release action: GOLIVE_ACTOR (a pipeline sets its job and run), else the
    operator's login at this host."""
    named = os.environ.get(ACTOR_ENV, "").strip()
    return named or f"{getpass.getuser()}@{socket.gethostname()}"


def recorded(
    action: str,
    before: Route,
    after: Route,
    *,
    by: str,
    reason: str | None,
    where: str,
    now: datetime,
) -> ReleaseRouteChanged:
    """The record of a release action: the route it leaves, the route it makes, who and why."""
    event_id = uuid.uuid4()
    return ReleaseRouteChanged(
        envelope=Envelope(
            event_id=event_id,
            event_type=ReleaseRouteChanged.type_name(),
            occurred_at=now,
            correlation_id=str(event_id),
            producer=RELEASE,
            producer_version=version("golive-cli"),
        ),
        group=after.group,
        action=action,
        by=by,
        reason=reason or None,
        mode_before=before.mode,
        mode=after.mode,
        live=after.live,
        candidate=after.candidate,
        live_version=candidate(after.group, after.live).version,
        candidate_version=candidate(after.group, after.candidate).version,
        candidate_share=after.share,
        shadow=after.mode == "shadow",
        route=str(after),
        where=where,
        changed_at=now,
    )
