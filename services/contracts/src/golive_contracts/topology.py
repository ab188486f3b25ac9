"""Who writes each topic and who reads it: the one place Golive's wiring is declared.

Everything else is derived from here: the dead-letter and state topics, consumer group and
transactional ids, the topics an environment needs (`make run`, the tests, `golive regress`),
the AsyncAPI operations, the DLQ tooling; infra/topics.yaml adds sizing and retention and a test
holds it to this. Names here are logical: an environment maps them to its own topics and puts
its prefix in front of group and transactional ids (`Names`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

ORDERS = "orders"
PAYMENTS = "payments"
PII_ACCESS = "pii-access"
RELEASES = "releases"


class Kind(StrEnum):
    PROCESSOR = "processor"  # consume, decide, produce: one Kafka transaction per batch
    PROJECTION = "projection"  # a read model: rows and offsets in one database transaction
    RECORDER = "recorder"  # the audit store: every record of every topic, dead letters too
    ROUTER = "router"  # hands each input of a routed group to one version slot (releases)


# The version slots of a routed group: one is live, the other takes the candidate version.
SLOTS = ("blue", "green")
# The header a router marks a shadow copy with: its outputs go to shadow topics only.
ROUTE_HEADER = "golive.route"
SHADOW = "shadow"


@dataclass(frozen=True)
class Topic:
    name: str
    writer: str  # the one service that writes it
    description: str


@dataclass(frozen=True)
class Group:
    """A consumer group: the service that runs it, what it reads and writes."""

    name: str
    service: str
    process: str  # the process it runs in (golive_cli.system's names)
    kind: Kind
    reads: tuple[str, ...]
    writes: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()  # event type names it acts on; empty: every event it reads
    stateful: bool = False  # keeps per-key state in <first input>.<group>.state
    description: str = ""
    routed: bool = False  # runs as versions in SLOTS behind a router (releases by routing)
    slot: str | None = None  # a version slot of a routed group: reads what its router hands it
    routes: str | None = None  # a router: the routed group whose inputs it hands out

    @property
    def dead_letters(self) -> bool:
        """Processors and projections dead-letter what they cannot process; the recorder keeps
        everything, undecodable records included; a router forwards everything, undecodable
        records too, for the slot that decides them to dead-letter."""
        return self.kind not in (Kind.RECORDER, Kind.ROUTER)


def dlq_topic(topic: str, group: str) -> str:
    return f"{topic}.{group}.dlq"


def state_topic(topic: str, group: str) -> str:
    return f"{topic}.{group}.state"


def slot_topic(topic: str, group: str) -> str:
    """Where a router hands a slot group (`payment-blue`) the records of `topic`."""
    return f"{topic}.{group}"


def shadow_topic(topic: str) -> str:
    """Where a slot writes what it decides on a shadow copy, instead of `topic`."""
    return f"{topic}.{SHADOW}"


TOPICS = (
    Topic(ORDERS, "order", "Order journey events (OrderPlaced, OrderConfirmed, OrderCancelled)."),
    Topic(PAYMENTS, "payment", "Payment outcomes (PaymentAuthorized, PaymentDeclined)."),
    Topic(
        PII_ACCESS, "audit", "Every read of personal data through the audit API (PersonalDataRead)."
    ),
    Topic(
        RELEASES,
        "release",
        "Every release action on a routed group: who, what, when, which split "
        "(ReleaseRouteChanged, written by `golive release` under its own login).",
    ),
)

ORDER_PROJECTOR = Group(
    name="order-projector",
    service="order",
    process="order",
    kind=Kind.PROJECTION,
    reads=(ORDERS,),
    description="The orders read model (GET /orders).",
)
PAYMENT = Group(
    name="payment",
    service="payment",
    process="payment",
    kind=Kind.PROCESSOR,
    reads=(ORDERS,),
    writes=(PAYMENTS,),
    handles=("OrderPlaced",),
    stateful=True,
    routed=True,
    description="Decides each order's payment, in a Kafka transaction per batch.",
)
PAYMENT_PROJECTOR = Group(
    name="payment-projector",
    service="payment",
    process="payment",
    kind=Kind.PROJECTION,
    reads=(PAYMENTS,),
    description="The payments read model (GET /payments/{order_id}).",
)
ORDER_PROCESS_MANAGER = Group(
    name="order-process-manager",
    service="order",
    process="order-pm",
    kind=Kind.PROCESSOR,
    reads=(ORDERS, PAYMENTS),
    writes=(ORDERS,),
    stateful=True,
    description="Ends every journey once: confirms or cancels on the payment outcome, cancels "
    "with payment_timeout at the deadline (state in its changelog).",
)
AUDIT = Group(
    name="audit",
    service="audit",
    process="audit",
    kind=Kind.RECORDER,
    reads=(ORDERS, PAYMENTS, PII_ACCESS, RELEASES),
    description="The black-box recorder: every record, raw and decoded, and the dead-letter "
    "topics; its own record of personal-data reads too, and every release action.",
)


def routing(declared: Group) -> tuple[Group, ...]:
    """A routed group as it runs: its router (in the declared process), which pins each key to
    one slot and hands it the key's records, and one group per slot, each in a process of its
    own (`payment-blue`), with its own transactional ids, changelog and dead letters. ADR 0012."""
    router = Group(
        name=f"{declared.name}-router",
        service=declared.service,
        process=declared.process,
        kind=Kind.ROUTER,
        reads=declared.reads,
        handles=declared.handles,
        stateful=True,  # the pins: which slot each key went to, forever
        routes=declared.name,
        description=f"Hands each {declared.name} input to one version slot, by the route flag; "
        "a key's first slot is its slot for good.",
    )
    slots = tuple(
        replace(
            declared,
            name=f"{declared.name}-{slot}",
            process=f"{declared.process}-{slot}",
            routed=False,
            slot=slot,
            description=f"{declared.description} The {slot} version slot.",
        )
        for slot in SLOTS
    )
    return (router, *slots)


ROUTED = (PAYMENT,)
PAYMENT_ROUTER, PAYMENT_BLUE, PAYMENT_GREEN = routing(PAYMENT)

GROUPS = (
    ORDER_PROJECTOR,
    PAYMENT_ROUTER,
    PAYMENT_BLUE,
    PAYMENT_GREEN,
    PAYMENT_PROJECTOR,
    ORDER_PROCESS_MANAGER,
    AUDIT,
)


def routed(name: str) -> Group:
    """A routed group's declaration (what each of its versions reads, writes and handles)."""
    found = next((g for g in ROUTED if g.name == name), None)
    if found is None:
        raise KeyError(f"no routed group {name!r}: one of {', '.join(g.name for g in ROUTED)}")
    return found


def router_of(name: str) -> Group:
    return next(g for g in GROUPS if g.routes == routed(name).name)


def slot_group(name: str, slot: str) -> Group:
    if slot not in SLOTS:
        raise KeyError(f"no slot {slot!r}: one of {', '.join(SLOTS)}")
    return group(f"{routed(name).name}-{slot}")


def group(name: str) -> Group:
    found = next((g for g in GROUPS if g.name == name), None)
    if found is None:
        raise KeyError(f"no consumer group {name!r}: one of {', '.join(g.name for g in GROUPS)}")
    return found


def topic(name: str) -> Topic:
    found = next((t for t in TOPICS if t.name == name), None)
    if found is None:
        raise KeyError(f"no event topic {name!r}: one of {', '.join(t.name for t in TOPICS)}")
    return found


def readers(topic_name: str) -> tuple[Group, ...]:
    return tuple(g for g in GROUPS if topic_name in g.reads)


@dataclass(frozen=True)
class TopicNeed:
    """A topic an environment must have, and who writes it."""

    name: str
    writer: str
    compacted: bool = False


@dataclass(frozen=True)
class Names:
    """One environment's names: its event topics (logical name -> topic) and the prefix of its
    consumer group and transactional ids. Environments sharing a cluster (the tests, `golive
    regress` beside `make run`) have topics of their own and need groups of their own too: a
    member of the same group on other topics still takes part in every rebalance. Dead-letter
    and state topics derive from the environment's topic and the logical group; readers that
    only assign partitions (state restore, rebuild, redrive) join no group and keep the logical
    name."""

    topics: Mapping[str, str] = field(default_factory=lambda: {t.name: t.name for t in TOPICS})
    group_prefix: str = ""

    @classmethod
    def suffixed(cls, suffix: str) -> Names:
        """Topics and groups of one's own: `orders.<suffix>`, groups `<suffix>.<group>`."""
        return cls({t.name: f"{t.name}.{suffix}" for t in TOPICS}, f"{suffix}.")

    def topic(self, logical: str) -> str:
        return self.topics[logical]

    def settings(self) -> dict[str, str]:
        """These topics as the services' settings name them: `pii-access` -> `pii_access_topic`
        (golive_eventing.settings.KafkaSettings; upper case for the environment)."""
        return {f"{t.replace('-', '_')}_topic": name for t, name in self.topics.items()}

    def group_id(self, group_name: str) -> str:
        return f"{self.group_prefix}{group_name}"

    def restore_group_id(self, group_name: str) -> str:
        """The group id a stateful group's changelog restore reads under: it only assigns
        partitions and never joins, but the broker wants a granted group to find its
        coordinator."""
        return self.group_id(f"{group_name}-restore")

    def transactional_id(self, group_name: str, instance: str) -> str:
        return f"{self.group_id(group_name)}-{instance}"

    def inputs(self, of: Group) -> list[str]:
        """The topics the group consumes: a slot reads what its router hands it."""
        if of.slot is not None:
            return [slot_topic(self.topic(t), of.name) for t in of.reads]
        return [self.topic(t) for t in of.reads]

    def slot_inputs(self, router: Group) -> dict[str, list[str]]:
        """A router's outputs: per slot, the topics it hands that slot."""
        assert router.routes is not None
        return {slot: self.inputs(slot_group(router.routes, slot)) for slot in SLOTS}

    def shadow_topics(self, of: Group) -> list[str]:
        """Where a slot writes its outputs for shadow copies."""
        return [shadow_topic(self.topic(t)) for t in of.writes] if of.slot is not None else []

    def dead_letter_topics(self, of: Group) -> tuple[str, ...]:
        return tuple(dlq_topic(self.topic(t), of.name) for t in of.reads) if of.dead_letters else ()

    def state_topic(self, of: Group) -> str | None:
        return state_topic(self.topic(of.reads[0]), of.name) if of.stateful else None

    def needs(self) -> list[TopicNeed]:
        """Every topic this environment must have: event topics, each group's dead letters,
        each stateful group's changelog (compacted)."""
        found = [TopicNeed(self.topic(t.name), t.writer) for t in TOPICS]
        for g in GROUPS:
            if g.slot is not None:
                found += [TopicNeed(name, g.service) for name in self.inputs(g)]
                if g.slot == SLOTS[0]:  # one shadow topic, which either slot may write
                    found += [TopicNeed(name, g.service) for name in self.shadow_topics(g)]
            found += [TopicNeed(name, g.service) for name in self.dead_letter_topics(g)]
            state = self.state_topic(g)
            if state is not None:
                found.append(TopicNeed(state, g.service, compacted=True))
        return found
