"""What each service may do on Kafka, derived from the topology: the ACLs `golive acls apply`
grants (golive_platform.acls turns these into the broker's bindings).

A service may write only the topics it owns (the event topics it writes, its groups' dead
letters and changelogs), read what its groups read (and its changelogs, to restore them), use
only its groups and its processors' transactional ids. Plain data: no Kafka client here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from golive_contracts.topology import GROUPS, TOPICS, Kind, Names


class Resource(StrEnum):
    TOPIC = "topic"
    GROUP = "group"
    TRANSACTIONAL_ID = "transactional_id"


class Pattern(StrEnum):
    LITERAL = "literal"
    PREFIXED = "prefixed"


class Operation(StrEnum):
    READ = "read"
    WRITE = "write"
    DESCRIBE = "describe"
    DESCRIBE_CONFIGS = "describe_configs"


@dataclass(frozen=True, order=True)
class Grant:
    """ALLOW `principal` to `operation` on a resource (WRITE and READ imply DESCRIBE)."""

    principal: str
    resource: Resource
    name: str
    operation: Operation
    pattern: Pattern = Pattern.LITERAL

    def __str__(self) -> str:
        star = "*" if self.pattern is Pattern.PREFIXED else ""
        return f"{self.principal}: {self.operation} {self.resource} {self.name}{star}"


def services() -> tuple[str, ...]:
    """Every service of the topology: each one logs in as itself."""
    return tuple(sorted({t.writer for t in TOPICS} | {g.service for g in GROUPS}))


def logging_in_as(granted: Iterable[Grant], principals: Mapping[str, str]) -> list[Grant]:
    """`granted`, each service's grants given to the principal it logs in as where it is not
    named after the service (Confluent Cloud's service accounts, `sa-...`); a service not in
    `principals` keeps its own name."""
    unknown = sorted(set(principals) - set(services()))
    if unknown:
        raise ValueError(f"no service {', '.join(unknown)}: one of {', '.join(services())}")
    return sorted(replace(g, principal=principals.get(g.principal, g.principal)) for g in granted)


def grants(names: Names) -> list[Grant]:
    """Every grant of every service in the environment `names`, sorted."""
    found: set[Grant] = set()
    for t in TOPICS:
        found.add(Grant(t.writer, Resource.TOPIC, names.topic(t.name), Operation.WRITE))
    for g in GROUPS:
        own = g.service
        found.add(Grant(own, Resource.GROUP, names.group_id(g.name), Operation.READ))
        found |= {Grant(own, Resource.TOPIC, t, Operation.READ) for t in names.inputs(g)}
        if g.kind is Kind.ROUTER:  # it hands each slot its inputs
            found |= {
                Grant(own, Resource.TOPIC, t, Operation.WRITE)
                for topics in names.slot_inputs(g).values()
                for t in topics
            }
        found |= {Grant(own, Resource.TOPIC, t, Operation.WRITE) for t in names.shadow_topics(g)}
        found |= {
            Grant(own, Resource.TOPIC, dlq, Operation.WRITE) for dlq in names.dead_letter_topics(g)
        }
        state = names.state_topic(g)
        if state is not None:
            found |= {
                Grant(own, Resource.TOPIC, state, Operation.WRITE),
                Grant(own, Resource.TOPIC, state, Operation.READ),
                Grant(own, Resource.GROUP, names.restore_group_id(g.name), Operation.READ),
            }
        if g.kind in (Kind.PROCESSOR, Kind.ROUTER):
            found.add(
                Grant(
                    own,
                    Resource.TRANSACTIONAL_ID,
                    names.transactional_id(g.name, ""),
                    Operation.WRITE,
                    Pattern.PREFIXED,
                )
            )
        if g.kind is Kind.RECORDER:  # the black box: every dead letter of the environment too
            found |= {
                Grant(own, Resource.TOPIC, dlq, Operation.READ)
                for other in GROUPS
                for dlq in names.dead_letter_topics(other)
            }
            # and every group's lag, watched from outside: its offsets, its inputs' ends
            for other in GROUPS:
                found.add(
                    Grant(own, Resource.GROUP, names.group_id(other.name), Operation.DESCRIBE)
                )
                found |= {
                    Grant(own, Resource.TOPIC, t, Operation.DESCRIBE) for t in names.inputs(other)
                }
    return sorted(found)


def scope(granted: Iterable[Grant]) -> set[tuple[Resource, str, Pattern]]:
    """The resources these grants are on."""
    return {(g.resource, g.name, g.pattern) for g in granted}


def resources(names: Names) -> set[tuple[Resource, str, Pattern]]:
    """The resources the environment `names` owns: `golive acls apply` manages grants on these
    and leaves every other environment's alone."""
    return scope(grants(names))
