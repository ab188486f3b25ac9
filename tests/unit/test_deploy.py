"""Manifests render for one version; a blue/green rollout undoes exactly what it changed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest
import yaml
from golive_cli.deploy import SLOT_RULES, DeployError, Step, render, rollout_plan, run_rollout
from golive_cli.system import PROCESS_SERVICE

pytestmark = pytest.mark.unit

SOURCE = Path(__file__).resolve().parents[2] / "infra" / "k8s"


def _docs(path: Path) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_render_fills_every_image_and_keeps_consumers_up(tmp_path: Path) -> None:
    written = render(SOURCE, tmp_path, version="1.4.0", registry="ghcr.io/acme/")
    assert {p.name for p in written} == {
        "config.yaml",
        "order.yaml",
        "payment.yaml",
        "audit.yaml",
        "order-process-manager.yaml",
        "payment-slots.yaml",
    }
    for path in written:
        assert "${" not in path.read_text(), path
    for service in ("order", "payment", "audit"):
        (ksvc,) = _docs(tmp_path / f"{service}.yaml")
        template = ksvc["spec"]["template"]  # type: ignore[index]
        assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "1"
        assert template["spec"]["containers"][0]["image"] == f"ghcr.io/acme/golive-{service}:1.4.0"
        assert ksvc["spec"]["traffic"] == [  # type: ignore[index]
            {"revisionName": f"{service}-1-4-0", "percent": 100, "tag": "current"}
        ]
    (manager,) = _docs(tmp_path / "order-process-manager.yaml")
    assert manager["kind"] == "Deployment"


def test_render_runs_payment_s_version_slots_beside_its_router_and_the_route(
    tmp_path: Path,
) -> None:
    render(SOURCE, tmp_path, version="1.4.0", registry="r")
    slots = {d["metadata"]["name"]: d for d in _docs(tmp_path / "payment-slots.yaml")}  # type: ignore[index]
    assert set(slots) == {"payment-blue", "payment-green"}
    for name, slot in slots.items():
        (container,) = slot["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert container["command"] == ["golive-payment-slot"]
        assert env["PAYMENT_RULES"] == SLOT_RULES[env["PAYMENT_SLOT"]]
        assert name == f"payment-{env['PAYMENT_SLOT']}"
    (router,) = _docs(tmp_path / "payment.yaml")
    mounts = router["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]  # type: ignore[index]
    assert mounts == [{"name": "flags", "mountPath": "/flags", "readOnly": True}]
    flags = next(
        d
        for d in _docs(tmp_path / "config.yaml")
        if d["metadata"]["name"] == "golive-flags"  # type: ignore[index]
    )
    route = json.loads(flags["data"]["flags.json"])["flags"]["payment-route"]  # type: ignore[index]
    assert route["defaultVariant"] == "blue"


def test_each_workload_logs_in_to_kafka_as_its_service_and_trusts_the_identity_provider(
    tmp_path: Path,
) -> None:
    render(
        SOURCE,
        tmp_path,
        version="1.4.0",
        registry="r",
        kafka_security=("SASL_SSL", "PLAIN"),
        auth_issuer="https://idp.example/",
        auth_jwks_url="https://idp.example/keys",
    )
    config = next(d for d in _docs(tmp_path / "config.yaml") if d["kind"] == "ConfigMap")
    data = cast(dict[str, str], config["data"])
    assert (data["KAFKA_SECURITY_PROTOCOL"], data["KAFKA_SASL_MECHANISM"]) == ("SASL_SSL", "PLAIN")
    assert (data["AUTH_ISSUER"], data["AUTH_JWKS_URL"]) == (
        "https://idp.example/",
        "https://idp.example/keys",
    )
    workloads = {"order": "order", "order-process-manager": "order-pm", "payment": "payment"}
    workloads["audit"] = "audit"
    for manifest, process in workloads.items():
        (doc,) = _docs(tmp_path / f"{manifest}.yaml")
        spec = doc["spec"]["template"]["spec"]  # type: ignore[index]
        sources = spec["containers"][0]["envFrom"]
        secrets = [s["secretRef"]["name"] for s in sources if "secretRef" in s]
        assert secrets == [f"golive-kafka-{PROCESS_SERVICE[process]}"], manifest


def test_render_with_a_previous_version_brings_green_up_at_zero(tmp_path: Path) -> None:
    render(SOURCE, tmp_path, version="1.4.0", registry="r", previous="1.3.2")
    (ksvc,) = _docs(tmp_path / "payment.yaml")
    assert ksvc["spec"]["traffic"] == [  # type: ignore[index]
        {"revisionName": "payment-1-3-2", "percent": 100, "tag": "blue"},
        {"revisionName": "payment-1-4-0", "percent": 0, "tag": "green"},
    ]


def test_bad_versions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="cannot name a revision"):
        render(SOURCE, tmp_path, version="+++", registry="r")
    with pytest.raises(DeployError, match="previous version is the one being deployed"):
        render(SOURCE, tmp_path, version="1.0", registry="r", previous="1.0")


def test_a_rollout_runs_every_step_in_order(tmp_path: Path) -> None:
    steps = rollout_plan(tmp_path, "1.4.0", "1.3.2")
    calls: list[tuple[str, ...]] = []

    def kubectl(argv: Sequence[str]) -> int:
        calls.append(tuple(argv))
        return 0

    code = run_rollout(steps, lambda _: None, run=kubectl)
    assert code == 0
    assert calls == [s.argv for s in steps]
    switches = [s for s in steps if "100% to green" in s.what]
    assert len(switches) == 3
    assert steps.index(switches[0]) > max(i for i, s in enumerate(steps) if "green ready" in s.what)


def test_a_failed_check_undoes_only_what_was_changed_newest_first(tmp_path: Path) -> None:
    steps = rollout_plan(tmp_path, "1.4.0", "1.3.2")
    lines: list[str] = []
    code = run_rollout(steps, lines.append, run=None, fail_at="payment: green ready")
    assert code == 1
    rolled = [line.split("\n")[0] for line in lines if line.startswith("  rollback:")]
    assert rolled == [
        "  rollback: payment: all traffic on blue, green unrouted",
        "  rollback: order: all traffic on blue, green unrouted",
    ]


def test_a_failing_rollback_says_a_human_must_look(tmp_path: Path) -> None:
    steps = [Step("change", ("true",), undo=Step("undo", ("false",))), Step("check", ("false",))]
    lines: list[str] = []
    assert run_rollout(steps, lines.append, run=lambda argv: 0 if argv == ("true",) else 1) == 2
    assert "a human must look now" in lines[-1]


def test_every_workload_sends_its_metrics_and_traces_to_the_node_s_agent(tmp_path: Path) -> None:
    render(SOURCE, tmp_path, version="1.4.0", registry="r", environment="staging")
    config = next(d for d in _docs(tmp_path / "config.yaml") if d["kind"] == "ConfigMap")
    assert cast(dict[str, str], config["data"])["DD_ENV"] == "staging"
    files = ("order", "order-process-manager", "payment", "payment-slots", "audit")
    containers = [
        container
        for name in files
        for doc in _docs(tmp_path / f"{name}.yaml")
        for container in doc["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    ]
    assert len(containers) == 6  # order, its process manager, payment, two slots, audit
    for container in containers:
        env = {e["name"]: e for e in container["env"]}
        assert env["DD_AGENT_HOST"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
        names = [e["name"] for e in container["env"]]
        # Kubernetes expands $(VAR) only from variables listed before it.
        assert names.index("DD_AGENT_HOST") < names.index("OTEL_EXPORTER_OTLP_ENDPOINT")
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://$(DD_AGENT_HOST):4318"
