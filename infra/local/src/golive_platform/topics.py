"""Topics as code: infra/topics.yaml declares every topic; apply makes Kafka match it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from golive_platform.errors import PlatformError
from golive_platform.polling import until

ADMIN_TIMEOUT_S = 15.0


class TopicSettings(BaseModel):
    """What may differ per environment: sizing and durability."""

    model_config = ConfigDict(extra="forbid")

    partitions: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)
    retention_ms: int | None = Field(default=None, ge=-1)
    cleanup_policy: Literal["delete", "compact", "compact,delete"] | None = None
    configs: dict[str, str] = Field(default_factory=dict)


class TopicDecl(TopicSettings):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    owner: str
    keyed: bool
    description: str = ""
    environments: dict[str, TopicSettings] = Field(default_factory=dict)


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: TopicSettings
    environments: dict[str, TopicSettings]
    topics: list[TopicDecl]


@dataclass(frozen=True)
class TopicSpec:
    """One topic as it must be in one environment, every setting resolved."""

    name: str
    owner: str
    keyed: bool
    partitions: int
    replication_factor: int
    configs: dict[str, str]


def load_catalogue(path: Path) -> Catalogue:
    try:
        raw = yaml.safe_load(path.read_text())
        return Catalogue.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise PlatformError(f"cannot read {path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlatformError(f"{path}: {where}: {first['msg']}") from exc


def resolve(catalogue: Catalogue, environment: str) -> list[TopicSpec]:
    """The topics of one environment: defaults < environment < topic < topic's environment."""
    if environment not in catalogue.environments:
        known = ", ".join(sorted(catalogue.environments))
        raise PlatformError(f"unknown environment {environment!r} (topics.yaml declares {known})")
    specs: list[TopicSpec] = []
    names: set[str] = set()
    for topic in catalogue.topics:
        if topic.name in names:
            raise PlatformError(f"topic {topic.name} is declared twice in topics.yaml")
        names.add(topic.name)
        layers = [
            catalogue.defaults,
            catalogue.environments[environment],
            topic,
            topic.environments.get(environment, TopicSettings()),
        ]
        merged: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for layer in layers:
            merged.update(layer.model_dump(exclude_none=True, exclude={"configs"}))
            extra.update(layer.configs)
        configs = {
            **extra,
            "retention.ms": str(merged["retention_ms"]),
            "cleanup.policy": merged["cleanup_policy"],
            "min.insync.replicas": str(merged["min_insync_replicas"]),
        }
        specs.append(
            TopicSpec(
                name=topic.name,
                owner=topic.owner,
                keyed=topic.keyed,
                partitions=merged["partitions"],
                replication_factor=merged["replication_factor"],
                configs=configs,
            )
        )
    return specs


Action = Literal["created", "altered", "partitions", "unchanged", "cannot", "refused"]


@dataclass(frozen=True)
class Change:
    topic: str
    action: Action
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.action:<10} {self.topic}" + (f": {self.detail}" if self.detail else "")


@dataclass
class ApplyReport:
    changes: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.action in ("created", "altered", "partitions")]

    @property
    def unresolved(self) -> list[Change]:
        """Drift that apply left in place: Kafka cannot change it, or it needs --force."""
        return [c for c in self.changes if c.action in ("cannot", "refused")]


def _wait(futures: dict[Any, Any]) -> dict[Any, Any]:
    return {key: future.result(timeout=ADMIN_TIMEOUT_S) for key, future in futures.items()}


def _create(admin: AdminClient, new: list[NewTopic]) -> list[str]:
    """Create the topics; return those Kafka says exist already. The metadata that called them
    missing can lag a create that just finished (a second apply straight after the first, seen
    in CI), and two processes may apply at once: either way the topic is there to reconcile."""
    existed = []
    for name, future in admin.create_topics(new, operation_timeout=ADMIN_TIMEOUT_S).items():
        try:
            future.result(timeout=ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            existed.append(name)
    return existed


def _describe(admin: AdminClient, name: str) -> Any:
    """A topic's partitions and replicas. Right after a create the broker asked may not know
    the topic yet (UNKNOWN_TOPIC_OR_PART): asked again until ADMIN_TIMEOUT_S."""

    def described() -> Any:
        try:
            return admin.describe_topics(TopicCollection([name]))[name].result(ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
            return None

    return until(described, f"{name} to be known to the broker", ADMIN_TIMEOUT_S)


def _until_known(admin: AdminClient, names: list[str]) -> None:
    """Return once the broker answers for every topic just created. The controller accepts a
    create before the broker has applied it from the metadata log, and a config lookup in that
    moment fails with UNKNOWN_TOPIC_OR_PART (seen in CI, straight after an apply): whoever runs
    apply, a service starting or an operator's next command, may use the topics at once."""

    def known() -> bool:
        try:
            _current_configs(admin, names)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
            return False
        return True

    if names:
        until(known, ", ".join(names) + " to be known to the broker", ADMIN_TIMEOUT_S)


def _until_visible(admin: AdminClient, name: str, wanted: dict[str, str]) -> None:
    """Return once the broker reports the altered configs. It applies them from the metadata
    log a moment after the controller accepted them, and an apply run straight after this one
    (or a service starting) should see them."""

    def visible() -> bool:
        current = _current_configs(admin, [name])[name]
        return all(current.get(k) == v for k, v in wanted.items())

    until(visible, f"{name}'s altered configs to be visible", ADMIN_TIMEOUT_S)


def _current_configs(admin: AdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    if not names:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    described = _wait(admin.describe_configs(resources))
    return {
        resource.name: {key: entry.value for key, entry in entries.items()}
        for resource, entries in described.items()
    }


def apply(
    admin: AdminClient, specs: list[TopicSpec], *, force: bool = False, dry_run: bool = False
) -> ApplyReport:
    """Create what is missing, alter drifted configs, report what Kafka cannot change."""
    report = ApplyReport()
    try:
        metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_S)
        existing = {
            spec.name: metadata.topics[spec.name] for spec in specs if spec.name in metadata.topics
        }
        missing = [spec for spec in specs if spec.name not in existing]
        if missing and not dry_run:
            new = [
                NewTopic(s.name, s.partitions, s.replication_factor, config=s.configs)
                for s in missing
            ]
            existed = _create(admin, new)
            for name in existed:
                existing[name] = _describe(admin, name)
            missing = [spec for spec in missing if spec.name not in existing]
            _until_known(admin, [spec.name for spec in missing])
        for spec in missing:
            detail = f"{spec.partitions} partitions, replication {spec.replication_factor}"
            report.changes.append(Change(spec.name, "created", detail))

        current = _current_configs(admin, list(existing))
        for spec in specs:
            if spec.name in existing:
                report.changes.extend(
                    _reconcile(admin, spec, existing[spec.name], current[spec.name], force, dry_run)
                )
    except KafkaException as exc:
        raise PlatformError(f"topics apply failed: {exc.args[0]}") from exc
    return report


def grow_partitions(admin: AdminClient, spec: TopicSpec) -> bool:
    """Grow a topic to its declared partitions, and return once the broker shows them (as
    configs and created topics are awaited): an apply run straight after this one, or a
    service starting, sees the new count. False if it already had them (stale metadata)."""
    try:
        _wait(admin.create_partitions([NewPartitions(spec.name, spec.partitions)]))
    except KafkaException as exc:
        # Metadata lags a partition change for a moment: an apply that read it then sees the
        # old count. The broker then says the topic already has what we declared.
        if exc.args[0].code() != KafkaError.INVALID_PARTITIONS:
            raise
        try:
            shown = _partitions_shown(admin, spec)
        except PlatformError:
            raise exc from None  # never shown: the broker's own reason is the one to report
        if shown != spec.partitions:
            raise
        return False
    _partitions_shown(admin, spec)
    return True


def _partitions_shown(admin: AdminClient, spec: TopicSpec) -> int:
    """The topic's partition count, once the broker shows at least the declared one. Partitions
    only grow, so a smaller count is a view of before a change (seen in CI: the broker refused
    a second grow, "already has 4", while its metadata still showed 2); asked again until
    ADMIN_TIMEOUT_S."""

    def shown() -> int | None:
        count = len(_describe(admin, spec.name).partitions)
        return count if count >= spec.partitions else None

    return until(shown, f"{spec.name} to show {spec.partitions} partitions", ADMIN_TIMEOUT_S)


def _reconcile(
    admin: AdminClient,
    spec: TopicSpec,
    topic: Any,
    configs: dict[str, str],
    force: bool,
    dry_run: bool,
) -> list[Change]:
    changes: list[Change] = []
    drifted = {k: v for k, v in spec.configs.items() if configs.get(k) != v}
    if drifted:
        if not dry_run:
            entries = [
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in drifted.items()
            ]
            resource = ConfigResource(
                ConfigResource.Type.TOPIC, spec.name, incremental_configs=entries
            )
            _wait(admin.incremental_alter_configs([resource]))
            _until_visible(admin, spec.name, drifted)
        detail = ", ".join(f"{k} {configs.get(k)} -> {v}" for k, v in sorted(drifted.items()))
        changes.append(Change(spec.name, "altered", detail))

    partitions = len(topic.partitions)
    if partitions > spec.partitions:
        changes.append(
            Change(
                spec.name,
                "cannot",
                f"has {partitions} partitions, declared {spec.partitions}: "
                "Kafka cannot remove partitions (recreate the topic)",
            )
        )
    elif partitions < spec.partitions:
        if spec.keyed and not force:
            changes.append(
                Change(
                    spec.name,
                    "refused",
                    f"{partitions} -> {spec.partitions} partitions would "
                    "move keys to other partitions and break per-key order; use --force",
                )
            )
        elif dry_run or grow_partitions(admin, spec):
            changes.append(Change(spec.name, "partitions", f"{partitions} -> {spec.partitions}"))

    replicas = len(topic.partitions[0].replicas) if topic.partitions else 0
    if replicas != spec.replication_factor:
        changes.append(
            Change(
                spec.name,
                "cannot",
                f"replication factor is {replicas}, declared "
                f"{spec.replication_factor}: needs a partition reassignment",
            )
        )
    return changes or [Change(spec.name, "unchanged")]
