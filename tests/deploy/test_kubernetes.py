"""deploy/kubernetes: the policy a JSON schema cannot check (kubeconform checks the schema,
test_kubeconform.py). Each check is also shown to catch the breakage it is for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from beaconwatch.config import ConfigError
from tests.deploy import policy
from tests.deploy.manifests import MANIFESTS, Manifests, base_files, deployed, load


@pytest.fixture()
def m() -> Manifests:
    return deployed()


def test_the_container_starts_with_the_configmaps_config_validated_like_start_up(
    m: Manifests,
) -> None:
    start = policy.start_up(m)
    assert start.args.role == "all"
    assert start.workers == 2
    assert start.config.kafka.security_protocol == "SASL_SSL"
    # The password comes from the Secret through the environment, never from the ConfigMap.
    assert "sasl_password" not in m.one("ConfigMap")["data"]["beaconwatch.toml"]
    password = start.config.kafka.sasl_password
    assert password is not None
    assert (
        password.get_secret_value()
        == m.one("Secret", "beaconwatch-kafka")["stringData"]["sasl_password"]
    )


def test_a_configmap_the_service_would_reject_fails(m: Manifests) -> None:
    config_map = m.one("ConfigMap")
    text = config_map["data"]["beaconwatch.toml"]
    config_map["data"]["beaconwatch.toml"] = text.replace("max_pairs", "max_pair")
    with pytest.raises(ConfigError, match=r"state\.max_pair: unknown key"):
        policy.start_up(m)


def test_an_env_override_the_service_would_reject_fails(m: Manifests) -> None:
    policy.the_container(m)["env"].append(
        {"name": "BEACONWATCH_SCORING__THRESHOLD", "value": "1.5"}
    )
    with pytest.raises(ConfigError, match=r"scoring\.threshold"):
        policy.start_up(m)


def test_the_config_file_must_be_on_the_configmap_volume(m: Manifests) -> None:
    args = policy.the_container(m)["args"]
    args[args.index("--config") + 1] = "/etc/beaconwatch/beaconwatch.toml"  # the image's own
    with pytest.raises(AssertionError, match="on no ConfigMap volume"):
        policy.start_up(m)


CHECKS: dict[str, Callable[..., list[str]]] = {
    "security": policy.security_problems,
    "writable": policy.writable_problems,
    "references": policy.reference_problems,
    "probes": policy.probe_problems,
    "resources": policy.resource_problems,
    "shutdown": policy.shutdown_problems,
    "scale": policy.scale_problems,
}
NEEDS_START_UP = {"probes", "resources", "shutdown", "scale"}


def run_check(name: str, m: Manifests) -> list[str]:
    check = CHECKS[name]
    return check(m, policy.start_up(m)) if name in NEEDS_START_UP else check(m)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_manifests_pass(name: str, m: Manifests) -> None:
    assert run_check(name, m) == []


DELETE = object()
POD = ("spec", "template", "spec")
CONTAINER = (*POD, "containers", 0)
SECURITY = (*CONTAINER, "securityContext")
# (check, kind, path to a setting that exists, its new value or DELETE, the problem reported)
BREAKAGES: list[tuple[str, str, tuple[str | int, ...], object, str]] = [
    ("security", "Deployment", (*SECURITY, "readOnlyRootFilesystem"), False, "is writable"),
    ("security", "Deployment", (*SECURITY, "runAsNonRoot"), False, "runAsNonRoot is not true"),
    ("security", "Deployment", (*SECURITY, "runAsUser"), 0, "runAsUser is not 10001"),
    ("security", "Deployment", (*SECURITY, "allowPrivilegeEscalation"), True, "Escalation"),
    ("security", "Deployment", (*SECURITY, "capabilities"), {"add": ["NET_RAW"]}, "capabilities"),
    ("security", "Deployment", (*SECURITY, "seccompProfile", "type"), "Unconfined", "seccomp"),
    ("security", "Deployment", (*POD, "automountServiceAccountToken"), DELETE, "token"),
    ("writable", "Deployment", (*POD, "volumes", 2, "emptyDir"), DELETE, "no emptyDir on /tmp"),
    ("writable", "Deployment", (*CONTAINER, "volumeMounts", 0, "readOnly"), False, "writable"),
    ("writable", "Deployment", (*CONTAINER, "env", 1, "value"), "/var/cache", "NUMBA_CACHE_DIR"),
    ("probes", "Deployment", (*CONTAINER, "startupProbe"), DELETE, "no startupProbe"),
    (
        "probes",
        "Deployment",
        (*CONTAINER, "readinessProbe", "httpGet", "path"),
        "/healthz",
        "/readyz",
    ),
    ("probes", "Deployment", (*CONTAINER, "livenessProbe", "httpGet", "path"), "/readyz", "idle"),
    ("probes", "Deployment", (*CONTAINER, "ports", 0, "containerPort"), 8080, "metrics.port 9108"),
    ("probes", "Deployment", (*CONTAINER, "startupProbe", "failureThreshold"), 6, "too little"),
    ("probes", "Deployment", (*CONTAINER, "livenessProbe", "timeoutSeconds"), 10, "timeout"),
    ("resources", "Deployment", (*CONTAINER, "resources", "limits"), DELETE, "no cpu limits"),
    ("resources", "Deployment", (*CONTAINER, "resources", "limits", "memory"), "1Gi", "1Gi below"),
    ("resources", "Deployment", (*CONTAINER, "resources", "requests", "cpu"), "500m", "per worker"),
    ("shutdown", "Deployment", (*POD, "terminationGracePeriodSeconds"), 30, "checkpoints need"),
    ("scale", "Deployment", ("spec", "replicas"), 9, "9 replicas x 2 workers > 16"),
    ("references", "Service", ("spec", "ports", 0, "targetPort"), "http", "no container port"),
    ("references", "PodDisruptionBudget", ("spec", "selector"), {"app": "x"}, "selects no"),
    ("references", "PodMonitor", ("spec", "podMetricsEndpoints", 0, "port"), "web", "no container"),
]


def edit(doc: Any, path: tuple[str | int, ...], value: object) -> None:
    """Change (or delete) a setting that must exist: a test of a setting gone is no test."""
    *parents, last = path
    for key in parents:
        doc = doc[key]
    assert (last in doc) if isinstance(doc, dict) else int(last) < len(doc), f"no {path}"
    if value is DELETE:
        del doc[last]
    else:
        doc[last] = value


@pytest.mark.parametrize(("name", "kind", "path", "value", "problem"), BREAKAGES)
def test_each_check_catches_its_breakage(
    name: str, kind: str, path: tuple[str | int, ...], value: object, problem: str, m: Manifests
) -> None:
    edit(m.one(kind), path, value)
    problems = run_check(name, m)
    assert any(problem in p for p in problems), problems


def test_the_kustomization_deploys_every_manifest_but_the_examples() -> None:
    deployed_files = {p.name for p in base_files()}
    every = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    # The example Secret must never overwrite a real one on `kubectl apply -k`.
    assert deployed_files == every - {"secret.example.yaml"}


def test_the_example_secrets_are_placeholders() -> None:
    for secret in load(MANIFESTS / "secret.example.yaml"):
        assert secret["kind"] == "Secret"
        assert "data" not in secret
        assert all("REPLACE-ME" in v for v in secret["stringData"].values())
