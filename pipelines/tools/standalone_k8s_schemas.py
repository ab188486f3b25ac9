"""Vendor standalone Kubernetes JSON schemas for kubeconform from kubernetes-validate's bundle.

kubernetes-validate (a pinned dev dependency) ships strict schemas whose $refs point into a shared
/api/_definitions.json; kubeconform wants one self-contained file per kind. This copies each kind
we deploy with the definitions it reaches inlined under $defs.

    uv run --frozen --no-sync python pipelines/tools/standalone_k8s_schemas.py 1.33.0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate

KINDS = ("configmap-v1", "namespace-v1", "deployment-apps-v1", "secret-v1", "service-v1")
PREFIX = "/api/_definitions.json#/$defs/"
OUT = Path(__file__).resolve().parents[2] / "infra" / "k8s" / "schemas" / "kubernetes"


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        found = {ref.removeprefix(PREFIX).removeprefix("#/$defs/")} if ref else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def standalone(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    needed: set[str] = set()
    todo = _refs(schema)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo |= _refs(definitions[name])
    text = json.dumps({**schema, "$defs": {n: definitions[n] for n in sorted(needed)}})
    return dict(json.loads(text.replace(f'"{PREFIX}', '"#/$defs/')))


def main(version: str) -> None:
    bundle = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    source = bundle / f"v{version}-local-strict"
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    target = OUT / f"v{version}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        schema = json.loads((source / f"{kind}.json").read_text())
        (target / f"{kind}.json").write_text(json.dumps(standalone(schema, definitions), indent=1))
        print(f"wrote {target / kind}.json")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "1.33.0")
