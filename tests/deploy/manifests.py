"""The Kubernetes manifests in deploy/kubernetes, as the tests read them."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
K8S_TOOLS = REPO / "tests" / "harness" / "k8s-tools.sh"

Doc = dict[str, Any]


def load(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@dataclass
class Manifests:
    """Every resource of the deployment, by kind; tests change copies, never the files."""

    docs: list[Doc]

    @classmethod
    def from_files(cls, paths: list[Path]) -> Manifests:
        return cls([doc for path in paths for doc in load(path)])

    def one(self, kind: str, name: str | None = None) -> Doc:
        found = [
            d
            for d in self.docs
            if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
        ]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def all(self, kind: str) -> list[Doc]:
        return [d for d in self.docs if d["kind"] == kind]

    def copy(self) -> Manifests:
        return Manifests(copy.deepcopy(self.docs))


def base_files() -> list[Path]:
    """The files kustomization.yaml deploys."""
    kustomization = load(MANIFESTS / "kustomization.yaml")[0]
    return [MANIFESTS / name for name in kustomization["resources"]]


def deployed() -> Manifests:
    """What `kubectl apply -k deploy/kubernetes` creates, plus the example Secrets (for the
    references into them) and the optional PodMonitor."""
    extra = [MANIFESTS / "secret.example.yaml", MANIFESTS / "monitoring" / "podmonitor.yaml"]
    return Manifests.from_files([*base_files(), *extra])
