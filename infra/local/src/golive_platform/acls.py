"""ACLs as code: the topology's grants (golive_contracts.access) made the broker's bindings.

`apply` is idempotent and scoped: it creates what is missing and deletes what is not declared,
but only on the resources of the environment it is given, so environments sharing a cluster
(the tests, `golive regress`) never touch each other's. What it deleted is drift, reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from golive_contracts.access import Grant, Operation, Pattern, Resource

from golive_platform.credentials import REGISTRY
from golive_platform.errors import PlatformError
from golive_platform.polling import until

_RESOURCE = {
    Resource.TOPIC: ResourceType.TOPIC,
    Resource.GROUP: ResourceType.GROUP,
    Resource.TRANSACTIONAL_ID: ResourceType.TRANSACTIONAL_ID,
}
_PATTERN = {
    Pattern.LITERAL: ResourcePatternType.LITERAL,
    Pattern.PREFIXED: ResourcePatternType.PREFIXED,
}
_OPERATION = {
    Operation.READ: AclOperation.READ,
    Operation.WRITE: AclOperation.WRITE,
    Operation.DESCRIBE: AclOperation.DESCRIBE,
    Operation.DESCRIBE_CONFIGS: AclOperation.DESCRIBE_CONFIGS,
}
Scope = set[tuple[Resource, str, Pattern]]
ENFORCED_WITHIN_S = 60.0


@dataclass
class AclReport:
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # drift: granted, not declared
    unchanged: int = 0


def binding(grant: Grant) -> AclBinding:
    return AclBinding(
        _RESOURCE[grant.resource],
        grant.name,
        _PATTERN[grant.pattern],
        f"User:{grant.principal}",
        "*",
        _OPERATION[grant.operation],
        AclPermissionType.ALLOW,
    )


_FROM_RESOURCE = {v: k for k, v in _RESOURCE.items()}
_FROM_PATTERN = {v: k for k, v in _PATTERN.items()}
_FROM_OPERATION = {v: k for k, v in _OPERATION.items()}


def _as_grant(b: AclBinding) -> Grant | None:
    """The grant a broker binding expresses; None for one no grant can (a DENY, another host,
    an operation the topology never grants): in scope, that is drift."""
    resource = _FROM_RESOURCE.get(ResourceType(b.restype))
    pattern = _FROM_PATTERN.get(ResourcePatternType(b.resource_pattern_type))
    operation = _FROM_OPERATION.get(AclOperation(b.operation))
    allowed = AclPermissionType(b.permission_type) == AclPermissionType.ALLOW
    if resource is None or pattern is None or operation is None:
        return None
    if not allowed or b.host != "*":
        return None
    return Grant(b.principal.removeprefix("User:"), resource, b.name, operation, pattern)


def _in_scope(b: AclBinding, scope: Scope) -> bool:
    resource = _FROM_RESOURCE.get(ResourceType(b.restype))
    pattern = _FROM_PATTERN.get(ResourcePatternType(b.resource_pattern_type))
    return resource is not None and pattern is not None and (resource, b.name, pattern) in scope


def _every_binding(admin: AdminClient) -> list[AclBinding]:
    # None matches any name, principal and host (the stubs say str).
    every = AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    try:
        found: list[AclBinding] = admin.describe_acls(every, request_timeout=30).result(timeout=40)
    except KafkaException as exc:
        raise PlatformError(f"could not read the broker's ACLs: {exc}") from exc
    return found


def apply(
    admin: AdminClient, grants: Iterable[Grant], scope: Scope, *, dry_run: bool = False
) -> AclReport:
    """Make the bindings on `scope`'s resources exactly `grants`."""
    wanted = set(grants)
    existing = [(b, _as_grant(b)) for b in _every_binding(admin) if _in_scope(b, scope)]
    have = {g for _, g in existing if g is not None}
    extra = [(b, g) for b, g in existing if g not in wanted]
    missing = sorted(wanted - have)
    report = AclReport(
        created=[str(g) for g in missing],
        deleted=sorted(str(g or b) for b, g in extra),
        unchanged=len(wanted & have),
    )
    if not dry_run:
        if missing:
            _wait(admin.create_acls([binding(g) for g in missing], request_timeout=30), "create")
        if extra:
            _wait(admin.delete_acls(exact([b for b, _ in extra]), request_timeout=30), "delete")
        if missing or extra:
            _until_enforced(admin, wanted, scope)
    return report


def _until_enforced(admin: AdminClient, wanted: set[Grant], scope: Scope) -> None:
    """Return once the broker's authorizer holds exactly `wanted` on `scope`. The controller
    commits an ACL at once, and the broker applies it from the metadata log after every
    record before it: seconds late while it digests thousands of partitions at start, and a
    registry that started in between was refused."""

    def enforced() -> bool:
        held = [b for b in _every_binding(admin) if _in_scope(b, scope)]
        return {_as_grant(b) for b in held} == wanted and len(held) == len(wanted)

    until(enforced, "the broker to apply the ACLs", ENFORCED_WITHIN_S)


def prune(admin: AdminClient, keep: Scope, principals: Iterable[str]) -> int:
    """Delete the bindings of `principals` on every resource outside `keep` (the grants of
    environments whose topics are gone); how many."""
    users = {f"User:{p}" for p in principals}
    gone = [b for b in _every_binding(admin) if b.principal in users and not _in_scope(b, keep)]
    for start in range(0, len(gone), 500):
        _wait(admin.delete_acls(exact(gone[start : start + 500]), request_timeout=60), "delete")
    return len(gone)


def registry_grants(journal: str, snapshots: str, events: str, group_prefix: str) -> list[Grant]:
    """Apicurio's kafkasql storage: its three topics (it checks the journal's configuration at
    start), and its consumer groups (a new one per start, under one prefix)."""
    found = [
        Grant(REGISTRY, Resource.TOPIC, topic, operation)
        for topic in (journal, snapshots, events)
        for operation in (Operation.READ, Operation.WRITE, Operation.DESCRIBE_CONFIGS)
    ]
    found.append(Grant(REGISTRY, Resource.GROUP, group_prefix, Operation.READ, Pattern.PREFIXED))
    return found


def exact(bindings: Sequence[AclBinding]) -> list[AclBindingFilter]:
    """Filters that match these bindings and nothing else."""
    return [
        AclBindingFilter(
            b.restype,
            b.name,
            b.resource_pattern_type,
            b.principal,
            b.host,
            b.operation,
            b.permission_type,
        )
        for b in bindings
    ]


def _wait(futures: Mapping[Any, Future[Any]], verb: str) -> None:
    for what, future in futures.items():
        try:
            future.result(timeout=40)
        except KafkaException as exc:
            raise PlatformError(f"could not {verb} the ACL {what}: {exc}") from exc
