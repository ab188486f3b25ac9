"""The go-live path: Kubernetes manifests rendered for one version, and a blue/green rollout.

Knative Services (order, payment, audit) switch traffic between revisions: the new revision comes
up at 0% under the tag `green`, answers its readiness check on its own URL, then takes 100% while
the old one stays routable as `blue` for an instant rollback. The process manager, a Deployment,
is swapped and verified; a failed verification rolls it back with `kubectl rollout undo`.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

KNATIVE_SERVICES = ("order", "payment", "audit")
DEPLOYMENTS = ("order-process-manager", "payment-slots")
# The version of payment's rules each slot runs (make run, compose, Kubernetes): blue the live
# one, green the candidate (golive_payment.domain.rules), as a release puts a new image in the
# idle slot.
SLOT_RULES = {"blue": "1", "green": "2"}
NAMESPACE = "golive"
# What the rendered services log in to Kafka with, and whose API tokens they trust, unless told.
KAFKA_SECURITY_PROTOCOL = "SASL_SSL"
KAFKA_SASL_MECHANISM = "SCRAM-SHA-512"
AUTH_ISSUER = "https://identity.example.com/"
AUTH_JWKS_URL = "https://identity.example.com/.well-known/jwks.json"
FILES = ("config.yaml", *(f"{name}.yaml" for name in (*KNATIVE_SERVICES, *DEPLOYMENTS)))


class DeployError(RuntimeError):
    """Bad input to a deploy step, or a step that failed."""


def revision_id(version: str) -> str:
    """A version as a Kubernetes name part: 1.4.0+ab12 -> 1-4-0-ab12."""
    rid = re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-")
    if not rid or len(rid) > 40:
        raise DeployError(f"version {version!r} cannot name a revision (1 to 40 of a-z 0-9 -)")
    return rid


def _traffic_block(service: str, version: str, previous: str | None) -> str:
    new = f"{service}-{revision_id(version)}"
    if previous is None:
        return f"    - revisionName: {new}\n      percent: 100\n      tag: current"
    old = f"{service}-{revision_id(previous)}"
    return (
        f"    - revisionName: {old}\n      percent: 100\n      tag: blue\n"
        f"    - revisionName: {new}\n      percent: 0\n      tag: green"
    )


def render(
    source: Path,
    out: Path,
    *,
    version: str,
    registry: str,
    previous: str | None = None,
    kafka_bootstrap: str = "kafka:9092",
    registry_url: str = "http://schema-registry:8081",
    kafka_security: tuple[str, str] = (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM),
    auth_issuer: str = AUTH_ISSUER,
    auth_jwks_url: str = AUTH_JWKS_URL,
    flags: Mapping[str, Any] | None = None,
    environment: str = "production",
) -> list[Path]:
    """Fill the templates in `source` for `version` (image tag = version) into `out`.

    With `previous`, Knative traffic stays on the previous revision (blue) and the new one comes
    up at 0% (green): the rollout promotes it. Every placeholder must be filled. Each service
    logs in to Kafka with `kafka_security` (protocol, SASL mechanism) and the login in its
    Secret golive-kafka-<service>. The API
    tokens are verified as issued by `auth_issuer` with the keys at `auth_jwks_url` (your
    identity provider's `iss` and `jwks_uri`). `flags` (flagd's format; default: the
    committed infra/flags/flags.json) goes into the golive-flags ConfigMap. `environment` is
    Datadog's `env` tag (DD_ENV) of every metric, trace and log.
    """
    if flags is None:
        flags = json.loads((source.parent / "flags" / "flags.json").read_text())
    if previous == version:
        raise DeployError("the previous version is the one being deployed")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FILES:
        template = Template((source / name).read_text())
        service = name.removesuffix(".yaml")
        try:
            text = template.substitute(
                VERSION=version,
                TAG=version,
                REVISION=revision_id(version),
                REGISTRY=registry.rstrip("/"),
                KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
                SCHEMA_REGISTRY_URL=registry_url,
                KAFKA_SECURITY_PROTOCOL=kafka_security[0],
                KAFKA_SASL_MECHANISM=kafka_security[1],
                AUTH_ISSUER=auth_issuer,
                AUTH_JWKS_URL=auth_jwks_url,
                FLAGS_JSON=json.dumps(flags, separators=(",", ":")),
                BLUE_RULES=SLOT_RULES["blue"],
                GREEN_RULES=SLOT_RULES["green"],
                ENVIRONMENT=environment,
                TRAFFIC=_traffic_block(service, version, previous)
                if service in KNATIVE_SERVICES
                else "",
            )
        except (KeyError, ValueError) as exc:
            raise DeployError(f"{source / name}: unfilled placeholder {exc}") from exc
        (out / name).write_text(text)
        written.append(out / name)
    return written


@dataclass(frozen=True)
class Step:
    """One kubectl call. A change carries its undo; a failing step rolls back every change made."""

    what: str
    argv: tuple[str, ...]
    undo: Step | None = None


def _kubectl(*args: str) -> tuple[str, ...]:
    return ("kubectl", "--namespace", NAMESPACE, *args)


def _traffic(*routes: tuple[str, int, str]) -> tuple[str, ...]:
    """kubectl patch arguments routing `percent` of requests to each (revision, percent, tag)."""
    traffic = [{"revisionName": r, "percent": p, "tag": t} for r, p, t in routes]
    return ("--type=merge", "-p", json.dumps({"spec": {"traffic": traffic}}, separators=(",", ":")))


def rollout_plan(manifests: Path, version: str, previous: str) -> list[Step]:
    """The steps of a blue/green rollout from `previous` (blue) to `version` (green)."""
    new, old = revision_id(version), revision_id(previous)
    if new == old:
        raise DeployError("the previous version is the one being deployed")
    steps = [Step("apply config", _kubectl("apply", "-f", str(manifests / "config.yaml")))]
    for service in KNATIVE_SERVICES:
        green, blue = f"{service}-{new}", f"{service}-{old}"
        back = Step(
            f"{service}: all traffic on blue, green unrouted",
            _kubectl("patch", f"ksvc/{service}", *_traffic((blue, 100, "current"))),
        )
        steps += [
            Step(
                f"{service}: green revision at 0%",
                _kubectl("apply", "-f", str(manifests / f"{service}.yaml")),
                undo=back,
            ),
            Step(
                f"{service}: green ready",
                _kubectl("wait", "--for=condition=Ready", f"revision/{green}", "--timeout=180s"),
            ),
        ]
    for service in KNATIVE_SERVICES:
        green, blue = f"{service}-{new}", f"{service}-{old}"
        back = Step(
            f"{service}: traffic back to blue",
            _kubectl(
                "patch", f"ksvc/{service}", *_traffic((blue, 100, "current"), (green, 0, "failed"))
            ),
        )
        steps.append(
            Step(
                f"{service}: 100% to green, blue kept at 0% for rollback",
                _kubectl(
                    "patch",
                    f"ksvc/{service}",
                    *_traffic((green, 100, "current"), (blue, 0, "blue")),
                ),
                undo=back,
            ),
        )
    for deployment in DEPLOYMENTS:
        back = Step(
            f"{deployment}: previous version back",
            _kubectl("rollout", "undo", f"deployment/{deployment}"),
        )
        steps += [
            Step(
                f"{deployment}: new version",
                _kubectl("apply", "-f", str(manifests / f"{deployment}.yaml")),
                undo=back,
            ),
            Step(
                f"{deployment}: rolled out and ready",
                _kubectl("rollout", "status", f"deployment/{deployment}", "--timeout=180s"),
            ),
        ]
    steps.append(
        Step(
            "the new version answers through the cluster",
            _kubectl(
                "run",
                f"smoke-{new}",
                "--rm",
                "-i",
                "--restart=Never",
                "--image=curlimages/curl:8.11.1",
                "--",
                "curl",
                "-fsS",
                f"http://audit.{NAMESPACE}.svc.cluster.local/readyz",
            ),
        ),
    )
    return steps


Runner = Callable[[Sequence[str]], int]


def run_rollout(
    steps: Sequence[Step],
    echo: Callable[[str], object],
    *,
    run: Runner | None,
    fail_at: str | None = None,
) -> int:
    """Run the steps; at the first failure undo every change made, newest first. `run=None` is a
    dry run: print each command, and let the step titled `fail_at` fail (a rehearsal).
    Exit code: 0 rolled out, 1 rolled back, 2 the rollback itself failed."""
    done: list[Step] = []
    for number, step in enumerate(steps, 1):
        echo(f"[{number}/{len(steps)}] {step.what}\n    $ {shlex.join(step.argv)}")
        failed = step.what == fail_at if run is None else run(step.argv) != 0
        if not failed:
            done.append(step)
            continue
        echo(f"FAILED: {step.what}; rolling back")
        for change in reversed([*done, step]):
            if change.undo is None:
                continue
            echo(f"  rollback: {change.undo.what}\n    $ {shlex.join(change.undo.argv)}")
            if run is not None and run(change.undo.argv) != 0:
                echo(f"  rollback step failed: {change.undo.what}; a human must look now")
                return 2
        echo("rolled back" + (" (dry run: nothing was changed)" if run is None else ""))
        return 1
    echo("rollout complete" + (" (dry run: nothing was changed)" if run is None else ""))
    return 0


def kubectl_runner(argv: Sequence[str]) -> int:
    return subprocess.run(list(argv), check=False).returncode
