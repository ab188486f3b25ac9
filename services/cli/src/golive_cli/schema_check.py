"""`golive schemas check`: the gate against a registry (Confluent-compatible API) or a git ref, and
its report. Against a registry: every version it holds, its level, and its own verdict beside ours."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
from golive_contracts.avro import subject_for
from golive_contracts.events import EVENT_TYPES, Event
from golive_contracts.topology import Names
from golive_eventing import clients
from golive_eventing.clients import Connection

from golive_cli.schema_gate import (
    Earlier,
    GateError,
    Problem,
    check_against_ref,
    compare,
    current_schemas,
    uncommitted,
)

LEVEL = "FULL_TRANSITIVE"


def run_check(
    echo: Callable[[str], Any],
    *,
    against_ref: str | None,
    registry_url: str | None,
    topics: Mapping[str, str] | None = None,
) -> int:
    """Run the gate against what was given; print what was checked or every problem. Exit code."""
    if against_ref is None and registry_url is None:
        raise GateError(
            "nothing to check against: give --against-ref REF and/or --registry-url URL"
        )
    problems: list[Problem] = []
    checked: list[str] = []
    if against_ref is not None:
        subjects, found = check_against_ref(against_ref)
        checked.append(f"the versions committed at {against_ref} and in the working tree")
        problems += found
    if registry_url is not None:
        registry = Connection(schema_registry_url=registry_url)  # its credentials: environment
        subjects, found = check_against_registry(registry, topics or dict(Names().topics))
        checked.append(f"the registry at {registry_url}")
        problems += [p for p in found if p not in problems]
    if problems:
        echo(f"schema gate FAILED: {len(problems)} problem(s) (FULL_TRANSITIVE):")
        for problem in problems:
            echo(f"  {problem}")
        return 1
    echo(
        f"schema gate passed: {len(subjects)} subjects FULL_TRANSITIVE compatible with "
        + " and ".join(checked)
    )
    return 0


_JSON = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def check_against_registry(
    registry: Connection,
    topics: Mapping[str, str],
    events: Sequence[type[Event]] = EVENT_TYPES,
    timeout_s: float = 10.0,
) -> tuple[list[str], list[Problem]]:
    """The working tree's schemas against every version registered under each subject.

    `topics` maps logical topics (orders, payments) to their names in this environment. A subject
    the registry does not know yet passes: its first version has nothing to be compatible with.
    """
    current, problems = current_schemas(events)
    problems += uncommitted(current)
    subjects = []
    with clients.registry_http(registry, timeout_s) as client:
        for item in current:
            subject = subject_for(topics[item.event.topic], item.event)
            subjects.append(subject)
            versions = _get(client, f"/subjects/{quote(subject)}/versions")
            if item.schema is None or versions is None:
                continue
            earlier = [
                Earlier(f"registry version {v}", json.loads(_raw_schema(client, subject, v)))
                for v in versions
            ]
            found = compare(subject, item.schema, earlier)
            if not found and not _registry_accepts(client, subject, item.schema):
                found = [
                    Problem(
                        subject,
                        "",
                        "registry rejects",
                        f"the registry at {registry.schema_registry_url} finds it incompatible with a registered "
                        "version; our rules found nothing: report it",
                    )
                ]
            level = (_get(client, f"/config/{quote(subject)}") or {}).get("compatibilityLevel")
            if level != LEVEL:
                found.append(
                    Problem(
                        subject,
                        "",
                        "compatibility level",
                        f"the registry enforces {level or 'its global default'} on this "
                        f"subject, not {LEVEL}: run `golive schemas register`",
                    )
                )
            problems += found
    return subjects, problems


def _registry_accepts(client: httpx.Client, subject: str, schema: dict[str, Any]) -> bool:
    """The registry's verdict on registering `schema` now (under the subject's own level)."""
    answer = _call(
        client,
        "POST",
        f"/compatibility/subjects/{quote(subject)}/versions",
        json={"schema": json.dumps(schema)},
    )
    return bool(answer.json().get("is_compatible"))


def _raw_schema(client: httpx.Client, subject: str, version: int) -> str:
    return _call(client, "GET", f"/subjects/{quote(subject)}/versions/{version}/schema").text


def _get(client: httpx.Client, path: str) -> Any:
    """GET a JSON resource; None if the registry has no such subject."""
    answer = _call(client, "GET", path, missing_ok=True)
    return None if answer.status_code == 404 else answer.json()


def _call(
    client: httpx.Client, method: str, path: str, *, json: Any = None, missing_ok: bool = False
) -> httpx.Response:
    try:
        answer = client.request(method, path, json=json, headers=_JSON)
    except httpx.HTTPError as exc:
        raise GateError(
            f"the registry at {client.base_url} does not answer ({exc}); without one, "
            "`golive schemas check --against-ref REF` checks against a git ref"
        ) from exc
    if answer.status_code == 404 and missing_ok:
        return answer
    if answer.is_error:
        raise GateError(
            f"the registry at {client.base_url} answered {method} {path} with "
            f"{answer.status_code}: {answer.text[:300]}"
        )
    return answer
