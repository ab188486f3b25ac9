"""make ci, GitHub Actions and Jenkins run the same stages in the same graph."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
STAGES_MK = (ROOT / "pipelines" / "stages.mk").read_text()
WORKFLOW: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
JENKINSFILE = (ROOT / "Jenkinsfile").read_text()


def _make_list(name: str) -> list[str]:
    found = re.search(rf"^{name} := (.*)$", STAGES_MK, re.MULTILINE)
    assert found, name
    return found.group(1).split()


CHECKS, CLUSTER = _make_list("CHECK_STAGES"), _make_list("CLUSTER_STAGES")
STAGES = {*CHECKS, *CLUSTER, "deploy"}


def _job_stages(job: dict[str, Any]) -> set[str]:
    """The stages a workflow job runs: `make stage-x`, or one per matrix entry."""
    found: set[str] = set()
    for step in job["steps"]:
        run = step.get("run", "")
        found |= set(re.findall(r"make stage-([a-z0-9-]+)", run))
        if 'make "stage-${STAGE}"' in run:
            found |= set(job["strategy"]["matrix"]["stage"])
    return found


def test_the_makefile_graph_is_what_the_docs_say() -> None:
    graph = STAGES_MK[STAGES_MK.index("ifdef CI_GRAPH") :]
    assert (
        "$(addprefix stage-,$(CLUSTER_STAGES)): stage-unit stage-schema-gate ci-cluster-up" in graph
    )
    assert "stage-deploy: $(addprefix stage-,$(CHECK_STAGES) $(CLUSTER_STAGES))" in graph
    for stage in STAGES:
        assert re.search(rf"^stage-{stage}:", STAGES_MK, re.MULTILINE), stage


def test_github_actions_runs_every_stage_in_the_same_graph() -> None:
    jobs: dict[str, Any] = WORKFLOW["jobs"]
    by_stage = {stage: name for name, job in jobs.items() for stage in _job_stages(job)}
    assert set(by_stage) == STAGES
    for stage in CLUSTER:
        assert set(jobs[by_stage[stage]]["needs"]) == {"unit", "schema-gate"}, stage
    upstream = {by_stage[s] for s in STAGES - {"deploy"}}
    assert set(jobs[by_stage["deploy"]]["needs"]) == upstream


def test_every_workflow_job_is_bounded_and_actions_are_pinned_by_sha() -> None:
    assert WORKFLOW["permissions"] == {"contents": "read"}
    for name, job in WORKFLOW["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 30, name
    for path in [
        ROOT / ".github" / "workflows" / "ci.yml",
        ROOT / ".github" / "actions" / "setup" / "action.yml",
    ]:
        for use in re.findall(r"uses: (\S+)", path.read_text()):
            assert use.startswith("./") or re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use), use


def test_jenkins_runs_every_stage_in_the_same_order() -> None:
    calls = re.findall(r"sh 'make stage-([a-z0-9-]+)", JENKINSFILE)
    assert set(calls) == STAGES
    position = {stage: calls.index(stage) for stage in STAGES}
    for stage in CLUSTER:
        assert position[stage] > max(position[c] for c in CHECKS), stage
    assert calls[-1] == "deploy"
