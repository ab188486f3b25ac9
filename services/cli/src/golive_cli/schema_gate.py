"""The schema gate: the schemas this working tree writes against every version already out there.

FULL_TRANSITIVE: a new schema must read every earlier version's records (new readers on old
data: replays, upcasting) and every earlier reader must read its records (rollbacks, shadow
runs). Apache Avro's own resolution rules decide (`avro.compatibility`, the port of Java's
SchemaCompatibility); this module walks the records beside it only to name the field and the
rule in words.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
)
from golive_contracts.avro import (
    SCHEMA_DIR,
    UnclassifiedFieldError,
    avro_schema,
    committed_versions,
    subject_for,
)
from golive_contracts.events import EVENT_TYPES, Event
from golive_contracts.fields import PII_KEY

Schema = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One reason the gate fails: which subject, which field, which rule, and what to do."""

    subject: str
    field: str
    rule: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.subject}, field {self.field}" if self.field else self.subject
        return f"{where}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class Earlier:
    """A version already out there: where it was found (e.g. "v1 at main") and its schema."""

    label: str
    schema: Schema


# -- the rules ---------------------------------------------------------------------------------


def compare(subject: str, current: Schema, earlier: Sequence[Earlier]) -> list[Problem]:
    """Why `current` is not FULL compatible with each earlier version (empty: it is).

    A problem found against several versions is reported once, at the oldest, naming the others.
    """
    found: dict[tuple[str, str], tuple[Problem, list[str]]] = {}
    new = avro.schema.parse(json.dumps(current))
    for version in earlier:
        old = avro.schema.parse(json.dumps(version.schema))
        problems = _record_diff(subject, new, old, "", version.label)
        if not problems and not (_compatible(new, old) and _compatible(old, new)):
            problems = [
                Problem(
                    subject,
                    "",
                    "incompatible",
                    f"with {version.label}: "
                    + "; ".join(_messages(new, old) + _messages(old, new)),
                )
            ]
        for problem in problems:
            first, also = found.setdefault((problem.field, problem.rule), (problem, []))
            if first is not problem:
                also.append(version.label)
    return [
        Problem(
            p.subject,
            p.field,
            p.rule,
            p.detail + (f"; also against {', '.join(also)}" if also else ""),
        )
        for p, also in found.values()
    ]


def unclassified(subject: str, schema: Any, path: str = "") -> list[Problem]:
    """Fields whose schema does not say whether they hold personal data."""
    if isinstance(schema, list):
        return [p for member in schema for p in unclassified(subject, member, path)]
    if not isinstance(schema, dict):
        return []
    if schema.get("type") == "array":
        return unclassified(subject, schema["items"], path)
    problems = []
    for field in schema.get("fields", []) if schema.get("type") == "record" else []:
        name = _join(path, field["name"])
        if not isinstance(field.get(PII_KEY), bool):
            problems.append(
                Problem(
                    subject,
                    name,
                    "unclassified field",
                    "declare it with personal() or public(): every field says "
                    "whether it holds personal data",
                )
            )
        problems += unclassified(subject, field["type"], name)
    return problems


def _verdict(reader: avro.schema.Schema, writer: avro.schema.Schema) -> SchemaCompatibilityResult:
    """Apache Avro's answer: can `reader` read what `writer` wrote?"""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    return checker.get_compatibility(reader, writer)


def _compatible(reader: avro.schema.Schema, writer: avro.schema.Schema) -> bool:
    return _verdict(reader, writer).compatibility is SchemaCompatibilityType.compatible


def _messages(reader: avro.schema.Schema, writer: avro.schema.Schema) -> list[str]:
    return sorted(str(m) for m in _verdict(reader, writer).messages)


def _record_diff(
    subject: str, new: avro.schema.Schema, old: avro.schema.Schema, path: str, label: str
) -> list[Problem]:
    if not isinstance(new, avro.schema.RecordSchema) or not isinstance(
        old, avro.schema.RecordSchema
    ):
        return []
    if new.fullname != old.fullname:
        return [
            Problem(
                subject,
                path,
                "record renamed",
                f"{old.fullname} in {label} is {new.fullname} now: readers resolve records by name",
            )
        ]
    new_fields = {f.name: f for f in new.fields}
    old_fields = {f.name: f for f in old.fields}
    removed = [f for name, f in old_fields.items() if name not in new_fields and not f.has_default]
    added = [f for name, f in new_fields.items() if name not in old_fields and not f.has_default]
    problems: list[Problem] = []
    if len(removed) == 1 and len(added) == 1:
        was, now = removed[0], added[0]
        problems.append(
            Problem(
                subject,
                _join(path, was.name),
                "field renamed",
                f"{was.name} in {label} is {now.name} now: Avro matches fields by "
                f"name, so readers of {label} lose {was.name} and new readers find "
                f"no {now.name} in old records; keep the name, or add {now.name} "
                f"with a default beside it",
            )
        )
    else:
        problems += [
            Problem(
                subject,
                _join(path, f.name),
                "field removed without a default",
                f"readers of {label} need {f.name} and it had no default there; "
                "keep the field (it may be deprecated in its doc)",
            )
            for f in removed
        ]
        problems += [
            Problem(
                subject,
                _join(path, f.name),
                "field added without a default",
                f"records written with {label} have no {f.name}; give it a default",
            )
            for f in added
        ]
    for name in (n for n in new_fields if n in old_fields):
        problems += _field_diff(
            subject, new_fields[name].type, old_fields[name].type, _join(path, name), label
        )
    return problems


def _field_diff(
    subject: str, new: avro.schema.Schema, old: avro.schema.Schema, path: str, label: str
) -> list[Problem]:
    if isinstance(new, avro.schema.RecordSchema) and isinstance(old, avro.schema.RecordSchema):
        return _record_diff(subject, new, old, path, label)
    if isinstance(new, avro.schema.ArraySchema) and isinstance(old, avro.schema.ArraySchema):
        return _field_diff(subject, new.items, old.items, path + "[]", label)
    reads_old, old_reads = _compatible(new, old), _compatible(old, new)
    if reads_old and old_reads:
        return []
    who = (
        "neither reads the other's records"
        if not (reads_old or old_reads)
        else f"readers of {label} cannot read it"
        if reads_old
        else f"it cannot read records written with {label}"
    )
    return [
        Problem(
            subject,
            path,
            "type changed",
            f"{_describe(old)} in {label} is {_describe(new)} now: {who}",
        )
    ]


def _describe(schema: avro.schema.Schema) -> str:
    if isinstance(schema, avro.schema.UnionSchema):
        return " | ".join(_describe(s) for s in schema.schemas)
    if isinstance(schema, avro.schema.ArraySchema):
        return f"array<{_describe(schema.items)}>"
    if isinstance(schema, avro.schema.NamedSchema):
        return str(schema.fullname)
    logical = schema.props.get("logicalType")
    return f"{schema.type} ({logical})" if logical else str(schema.type)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# -- what the working tree writes --------------------------------------------------------------


@dataclass(frozen=True)
class Current:
    event: type[Event]
    subject: str  # under the logical topic, as the repo keeps it
    schema: Schema | None  # None: the model cannot become a schema (see problems)


def current_schemas(
    events: Sequence[type[Event]] = EVENT_TYPES,
) -> tuple[list[Current], list[Problem]]:
    """Each event's schema as generated from the pydantic models, and what stops one."""
    found, problems = [], []
    for event in events:
        subject = subject_for(event.topic, event)
        try:
            schema = avro_schema(event)
        except UnclassifiedFieldError as exc:
            found.append(Current(event, subject, None))
            problems.append(Problem(subject, "", "unclassified field", str(exc)))
            continue
        found.append(Current(event, subject, schema))
        problems += unclassified(subject, schema)
    return found, problems


def uncommitted(current: Iterable[Current]) -> list[Problem]:
    """A model whose schema is not the latest committed version: nothing would register it."""
    problems = []
    for item in current:
        versions = committed_versions(item.event.topic, item.event)
        if item.schema is None or (
            versions and json.loads(versions[-1].read_text()) == item.schema
        ):
            continue
        latest = versions[-1].name if versions else "none"
        problems.append(
            Problem(
                item.subject,
                "",
                "schema not committed",
                f"the model's schema is not the latest committed version "
                f"({latest}); run `golive schemas write` and commit the new file",
            )
        )
    return problems


def working_tree_versions(item: Current) -> list[Earlier]:
    return [
        Earlier(f"{p.stem} (working tree)", json.loads(p.read_text()))
        for p in committed_versions(item.event.topic, item.event)
    ]


# -- the versions at a git ref -----------------------------------------------------------------


class GateError(RuntimeError):
    """The gate could not run (not a problem with the schemas): a bad ref, no registry."""


def versions_at_ref(ref: str, repo: Path | None = None) -> dict[str, dict[str, Schema]]:
    """Every committed schema version at `ref`: subject -> {"v1": schema, ...}."""
    root = repo or _git_root()
    folder = SCHEMA_DIR.relative_to(root).as_posix()
    listing = _git(root, "ls-tree", "-r", "--name-only", ref, "--", folder)
    found: dict[str, dict[str, Schema]] = {}
    for path in listing.splitlines():
        parts = Path(path).relative_to(folder).parts
        if len(parts) != 2 or not parts[1].endswith(".avsc"):
            continue
        found.setdefault(parts[0], {})[Path(parts[1]).stem] = json.loads(
            _git(root, "show", f"{ref}:{path}")
        )
    return found


def immutable(at_ref: Mapping[str, Mapping[str, Schema]], ref: str) -> list[Problem]:
    """Versions committed at `ref` that the working tree deleted or rewrote."""
    problems = []
    for subject, versions in sorted(at_ref.items()):
        for version, schema in sorted(versions.items()):
            path = SCHEMA_DIR / subject / f"{version}.avsc"
            if not path.exists():
                problems.append(
                    Problem(
                        subject,
                        "",
                        "version deleted",
                        f"{version} exists at {ref}: registered versions stay in "
                        "the repo, events written with them are on the topics",
                    )
                )
            elif json.loads(path.read_text()) != schema:
                problems.append(
                    Problem(
                        subject,
                        "",
                        "version rewritten",
                        f"{version} differs from {ref}: a registered version never "
                        "changes; add the change as a new version",
                    )
                )
    return problems


def check_against_ref(
    ref: str, repo: Path | None = None, events: Sequence[type[Event]] = EVENT_TYPES
) -> tuple[list[str], list[Problem]]:
    """The gate without a registry: the working tree against every version committed at `ref`
    and in the working tree. Returns the subjects checked and the problems."""
    at_ref = versions_at_ref(ref, repo)
    current, problems = current_schemas(events)
    problems += immutable(at_ref, ref)
    problems += uncommitted(current)
    for item in current:
        if item.schema is None:
            continue
        earlier = [
            Earlier(f"{v} at {ref}", s) for v, s in sorted(at_ref.get(item.subject, {}).items())
        ]
        earlier += working_tree_versions(item)
        problems += compare(item.subject, item.schema, _distinct(earlier))
    return [c.subject for c in current], problems


def _distinct(earlier: Iterable[Earlier]) -> list[Earlier]:
    seen, kept = set(), []
    for item in earlier:
        key = json.dumps(item.schema, sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def _git_root() -> Path:
    return Path(_git(SCHEMA_DIR, "rev-parse", "--show-toplevel").strip())


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GateError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout
