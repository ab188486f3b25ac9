"""Datadog as code: the dashboard, monitors and SLOs under infra/datadog/, checked offline and
pushed by `golive datadog apply`.

The check (`golive datadog check`, in CI's schema-gate stage):
- each file is JSON (an error names its line) and each object loads into the
  datadog-api-client model the API takes (Dashboard, Monitor, ServiceLevelObjectiveRequest),
  with no field the model does not know and no value it cannot parse;
- every metric a query names is one the services emit (golive_contracts.metrics), and every tag
  a query filters or groups by is one that metric carries.

`apply` matches what is declared with what Datadog has by title (dashboards) or name (monitors,
SLOs, among those tagged managed-by:golive), creates what is missing and updates what differs:
run twice, the second run changes nothing. Without DD_API_KEY and DD_APP_KEY it is a dry run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datadog_api_client import ApiClient, Configuration
from datadog_api_client.model_utils import OpenApiModel
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.api.service_level_objectives_api import ServiceLevelObjectivesApi
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest
from datadog_api_client.v1.model.service_level_objective import ServiceLevelObjective
from datadog_api_client.v1.model.service_level_objective_request import (
    ServiceLevelObjectiveRequest,
)
from datadog_api_client.v1.model.widget import Widget
from golive_contracts.metrics import METRICS, UNIFIED_TAGS

MANAGED = "managed-by:golive"
FILES: dict[str, type[OpenApiModel]] = {
    "dashboard.json": Dashboard,
    "monitors.json": Monitor,
    "slos.json": ServiceLevelObjectiveRequest,
}
# An aggregation and a metric, then its scope: `p99:golive.order.journey.duration{env:x}`.
_METRIC = re.compile(
    r"(?:^|[\s(,/*+:-])(?:[a-z]+\d*):([a-z][a-z0-9_.]*)\{([^}]*)\}(?:\s*by\s*\{([^}]*)\})?"
)
_QUERY_KEYS = ("q", "query", "numerator", "denominator")


@dataclass(frozen=True)
class Definitions:
    dashboards: list[dict[str, Any]]
    monitors: list[dict[str, Any]]
    slos: list[dict[str, Any]]


class DefinitionError(ValueError):
    """A definition file that cannot be read as JSON."""


def load(folder: Path) -> Definitions:
    found: dict[str, list[dict[str, Any]]] = {}
    for name in FILES:
        path = folder / name
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DefinitionError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
        found[name] = data if isinstance(data, list) else [data]
    return Definitions(found["dashboard.json"], found["monitors.json"], found["slos.json"])


def _model(data: Mapping[str, Any], model: type[OpenApiModel]) -> OpenApiModel:
    client = ApiClient(Configuration())
    loaded: OpenApiModel = client.deserialize(json.dumps(data), (model,), True)
    return loaded


def _unknown(node: Any, at: str, seen: frozenset[int] = frozenset()) -> Iterator[str]:
    """What the models could not take: values they cannot parse, fields they do not know."""
    if id(node) in seen:
        return
    seen = seen | {id(node)}
    if isinstance(node, OpenApiModel):
        inside: list[str] = []
        known = getattr(type(node), "attribute_map", {})
        store: dict[str, Any] = getattr(node, "_data_store", {})
        for key, value in store.items():
            if known and key not in known:
                inside.append(f"{at}.{key}: no such field of {type(node).__name__}")
            else:
                inside += _unknown(value, f"{at}.{key}", seen)
        for inner in getattr(node, "_composed_instances", []) or []:
            inside += _unknown(inner, at, seen)
        yield from inside
        if not inside and getattr(node, "_unparsed", False):
            value = f" {node.value!r}" if hasattr(node, "value") else ""
            yield f"{at or 'it'}:{value} not a valid {type(node).__name__}"
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _unknown(item, f"{at}[{i}]", seen)


def _refused(item: Mapping[str, Any], exc: Exception) -> str:
    """Why a model refused a definition, where it can be told: the widget it cannot read (the
    client recurses for ever on a widget type it does not know)."""
    for i, widget in enumerate(item.get("widgets", []) or []):
        try:
            readable = not list(_unknown(_model(widget, Widget), ""))
        except Exception:
            readable = False
        if not readable:
            kind = (widget.get("definition") or {}).get("type")
            return f".widgets[{i}]: not a widget the API knows (type {kind!r})"
    return str(exc)


def _queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _QUERY_KEYS and isinstance(value, str):
                yield value
            else:
                yield from _queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _queries(item)


def _tag_keys(scope: str) -> set[str]:
    keys = set()
    for raw in scope.split(","):
        part = raw.strip().lstrip("!")
        if part and part != "*" and not part.startswith("$"):
            keys.add(part.split(":", 1)[0])
    return keys


def metric_problems(query: str) -> list[str]:
    """Pure: the metrics `query` names that no service emits, and tags they do not carry."""
    declared = {m.name: {*m.tags, *UNIFIED_TAGS} for m in METRICS}
    found = []
    for name, scope, by in _METRIC.findall(query):
        if name not in declared:
            found.append(f"metric {name} is not one the services emit (golive_contracts.metrics)")
            continue
        used = _tag_keys(scope) | {t.strip() for t in by.split(",") if t.strip()}
        for tag in sorted(used - declared[name]):
            found.append(f"{name} has no tag {tag!r} (it has {', '.join(sorted(declared[name]))})")
    return found


def problems(definitions: Definitions) -> list[str]:
    """Everything wrong with the definitions, each naming where; empty: they may be applied."""
    found: list[str] = []
    for label, items, model in (
        ("dashboard.json", definitions.dashboards, Dashboard),
        ("monitors.json", definitions.monitors, Monitor),
        ("slos.json", definitions.slos, ServiceLevelObjectiveRequest),
    ):
        for i, item in enumerate(items):
            name = item.get("title") or item.get("name") or f"#{i}"
            at = f"{label} {name!r}"
            try:
                found += [f"{at}: {p}" for p in _unknown(_model(item, model), "")]
            except Exception as exc:  # the model refused it outright
                found.append(f"{at}: {_refused(item, exc)}")
            found += [f"{at}: {p}" for q in _queries(item) for p in metric_problems(q)]
            if label != "dashboard.json" and MANAGED not in item.get("tags", []):
                found.append(f"{at}: not tagged {MANAGED} (apply finds what it manages by it)")
    return found


@dataclass
class Applied:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _same(declared: Mapping[str, Any], existing: Mapping[str, Any]) -> bool:
    """Whether Datadog's copy already says everything declared (it adds ids, dates, defaults)."""
    for key, value in declared.items():
        if key not in existing:
            return False
        have = existing[key]
        if isinstance(value, dict) and isinstance(have, dict):
            if not _same(value, have):
                return False
        elif isinstance(value, list) and isinstance(have, list):
            if len(value) != len(have) or not all(
                _same(v, h) if isinstance(v, dict) and isinstance(h, dict) else v == h
                for v, h in zip(value, have, strict=True)
            ):
                return False
        elif value != have:
            return False
    return True


def _plain(model: Any) -> dict[str, Any]:
    plain: dict[str, Any] = json.loads(json.dumps(model.to_dict(), default=str))
    return plain


def configuration(api_key: str, app_key: str, site: str | None, host: str | None) -> Configuration:
    """The client's configuration: DD_SITE (datadoghq.com by default), or a host for a test."""
    config = Configuration(host=host) if host else Configuration()
    if site and not host:
        config.server_variables["site"] = site
    config.api_key["apiKeyAuth"] = api_key
    config.api_key["appKeyAuth"] = app_key
    return config


def apply(definitions: Definitions, config: Configuration) -> Applied:
    """Push the definitions: create what is missing, update what differs, by title or name."""
    done = Applied()
    with ApiClient(config) as client:
        dashboards = DashboardsApi(client)
        listed = dashboards.list_dashboards().to_dict().get("dashboards", [])
        by_title = {d["title"]: d["id"] for d in listed}
        for declared in definitions.dashboards:
            body = _model(declared, Dashboard)
            existing_id = by_title.get(declared["title"])
            _upsert(
                done,
                f"dashboard {declared['title']!r}",
                declared,
                existing=(_plain(dashboards.get_dashboard(existing_id)) if existing_id else None),
                create=lambda b=body: dashboards.create_dashboard(b),  # type: ignore[misc]
                update=lambda b=body, i=existing_id: dashboards.update_dashboard(i, b),  # type: ignore[misc]
            )
        monitors = MonitorsApi(client)
        have = {m.name: m for m in monitors.list_monitors(monitor_tags=MANAGED)}
        for declared in definitions.monitors:
            existing = have.get(declared["name"])
            body = _model(declared, Monitor)
            change = _model(declared, MonitorUpdateRequest)
            _upsert(
                done,
                f"monitor {declared['name']!r}",
                declared,
                existing=_plain(existing) if existing is not None else None,
                create=lambda b=body: monitors.create_monitor(b),  # type: ignore[misc]
                update=lambda c=change, m=existing: monitors.update_monitor(m.id, c),  # type: ignore[misc]
            )
        slos = ServiceLevelObjectivesApi(client)
        listed_slos = slos.list_slos(tags_query=MANAGED).to_dict().get("data", []) or []
        have_slos = {s["name"]: s for s in listed_slos}
        for declared in definitions.slos:
            existing_slo = have_slos.get(declared["name"])
            body = _model(declared, ServiceLevelObjectiveRequest)
            whole = _model({**declared}, ServiceLevelObjective)
            _upsert(
                done,
                f"SLO {declared['name']!r}",
                declared,
                existing=existing_slo,
                create=lambda b=body: slos.create_slo(b),  # type: ignore[misc]
                update=lambda w=whole, s=existing_slo: slos.update_slo(s["id"], w),  # type: ignore[misc]
            )
    return done


def _upsert(
    done: Applied,
    label: str,
    declared: Mapping[str, Any],
    *,
    existing: Mapping[str, Any] | None,
    create: Callable[[], Any],
    update: Callable[[], Any],
) -> None:
    if existing is None:
        create()
        done.created.append(label)
    elif _same(declared, existing):
        done.unchanged.append(label)
    else:
        update()
        done.updated.append(label)
