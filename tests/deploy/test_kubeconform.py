"""deploy/kubernetes against the Kubernetes API schemas (the real kubeconform and kustomize)
and the Pod Security Standards its Namespace enforces (psa-check, on the API server's own
PodSecurity code), built by `tests/harness/k8s-tools.sh install` and run exactly as CI runs
them: `tests/harness/k8s-tools.sh validate DIR`. Each breakage below must fail it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.manifests import K8S_TOOLS, MANIFESTS, base_files, load


def validate(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(K8S_TOOLS), "validate", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def summaries(output: str) -> list[dict[str, int]]:
    """The -summary lines of kubeconform and psa-check, as counts."""
    return [
        {key.lower(): int(n) for key, n in re.findall(r"(\w+): (\d+)", line.split(" - ", 1)[1])}
        | {"found": int(line.split()[1])}
        for line in output.splitlines()
        if line.startswith("Summary: ")
    ]


def test_the_manifests_and_the_kustomize_build_are_valid() -> None:
    result = validate(MANIFESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    files, built, psa_files, psa_built = summaries(result.stdout)
    # Every resource in the directory was checked; only kustomization.yaml was skipped.
    every = [doc for path in MANIFESTS.rglob("*.yaml") for doc in load(path)]
    assert files == {
        "found": len(every),
        "valid": len(every) - 1,
        "invalid": 0,
        "errors": 0,
        "skipped": 1,
    }
    deployed = [doc for path in base_files() for doc in load(path)]
    assert built == {
        "found": len(deployed),
        "valid": len(deployed),
        "invalid": 0,
        "errors": 0,
        "skipped": 0,
    }

    # One pod template, allowed by the level its Namespace enforces (restricted).
    assert psa_files == psa_built == {"found": 1, "allowed": 1, "forbidden": 0}
    assert result.stdout.count("allowed by restricted:latest") == 2


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "kubernetes"
    shutil.copytree(MANIFESTS, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


BREAKAGES = [
    # (file, text, replacement, what kubeconform says)
    (
        "deployment.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFileSystem: true",
        "additional properties 'readOnlyRootFileSystem' not allowed",
    ),
    ("deployment.yaml", "periodSeconds: 10", 'periodSeconds: "10"', "got string, want"),
    ("deployment.yaml", "apiVersion: apps/v1", "apiVersion: apps/v1beta9", "could not find schema"),
    ("service.yaml", "targetPort: metrics", "targetPort: [metrics]", "/spec/ports/0/targetPort"),
    ("service.yaml", "port: 9108", "prot: 9108", "missing property 'port'"),
    # Valid for the schema, forbidden by the namespace's Pod Security level (psa-check).
    (
        "deployment.yaml",
        "allowPrivilegeEscalation: false",
        "allowPrivilegeEscalation: true",
        "forbidden by restricted:latest: allowPrivilegeEscalation != false",
    ),
    (
        "deployment.yaml",
        'drop: ["ALL"]',
        'drop: ["ALL"]\n              add: ["NET_ADMIN"]',
        'forbidden by restricted:latest: unrestricted capabilities (container "beaconwatch"',
    ),
    (
        "deployment.yaml",
        "runAsUser: 10001\n        runAsGroup",
        "runAsUser: 0\n        runAsGroup",
        "forbidden by restricted:latest: runAsUser=0",
    ),
    (
        "monitoring/podmonitor.yaml",
        "podMetricsEndpoints:",
        "podMetricEndpoints:",
        "additional properties 'podMetricEndpoints' not allowed",
    ),
]


@pytest.mark.parametrize(
    ("file", "old", "new", "message"), BREAKAGES, ids=[b[2] for b in BREAKAGES]
)
def test_a_broken_manifest_fails(copy: Path, file: str, old: str, new: str, message: str) -> None:
    edit(copy / file, old, new)
    result = validate(copy)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout + result.stderr


def test_a_breakage_only_the_kustomize_build_has_fails(copy: Path) -> None:
    """A kustomize patch is checked where it lands: in the built output."""
    with (copy / "kustomization.yaml").open("a") as out:
        out.write(
            "patches:\n"
            "  - target: {kind: Deployment, name: beaconwatch}\n"
            "    patch: |-\n"
            "      - op: add\n"
            "        path: /spec/template/spec/hostNetwrk\n"
            "        value: true\n"
        )
    result = validate(copy)
    assert result.returncode != 0
    files, built = summaries(result.stdout)  # it stops at the first failing step
    assert files["invalid"] == 0
    assert built["invalid"] == 1
    assert "additional properties 'hostNetwrk' not allowed" in result.stdout
