"""Checks of the manifests that a JSON schema cannot make: each returns the problems it found.

Sizing figures come from docs/operations.md (Sizing, Checkpoints) and the README's
performance tables; a change there that the manifests do not follow should fail here.
"""

from __future__ import annotations

import argparse
import base64
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from beaconwatch.cli import build_parser
from beaconwatch.config import Config, load_config
from tests.deploy.manifests import Doc, Manifests

UID = 10001  # the image's user (Dockerfile)
MIB = 2**20
# docs/operations.md, Sizing: 379 bytes per tracked pair, peak RSS 648 MiB holding 1M pairs
# (so ~287 MiB of interpreter, numba and table growth), a checkpoint of 1M pairs is 335 MB,
# up to ~100 MB of flows held for alignment while a backlog is read.
RSS_PER_PAIR_B = 379
BASE_RSS_MIB = 648 - 1_000_000 * RSS_PER_PAIR_B / MIB
CHECKPOINT_PER_PAIR_B = 335
ALIGNMENT_MB = 100
SUPERVISOR_MIB = 100  # the --workers supervisor: an interpreter and an HTTP server
# README, performance: a checkpoint of 1M pairs took 1.8 s, a restore 4.4 s, with the broker
# on the same two cores. A pod must outlast ten times that: a loaded production broker.
CHECKPOINT_S_PER_M_PAIRS = 1.8
RESTORE_S_PER_M_PAIRS = 4.4
MARGIN = 10


@dataclass
class StartUp:
    """What `beaconwatch` in the container starts with: its argv and its validated config."""

    args: argparse.Namespace
    config: Config
    workers: int


def pod_templates(m: Manifests) -> list[tuple[str, Doc]]:
    return [(d["metadata"]["name"], d["spec"]["template"]) for d in m.all("Deployment")]


def containers(pod: Doc) -> list[Doc]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def the_container(m: Manifests) -> Doc:
    """The beaconwatch container of the Deployment."""
    [(_, pod)] = pod_templates(m)
    [container] = [c for c in pod["spec"]["containers"] if c["name"] == "beaconwatch"]
    return container


def _setting(pod: Doc, container: Doc, *path: str) -> Any:
    """A securityContext setting: the container's, else the pod's (Kubernetes' precedence)."""
    for context in (container.get("securityContext", {}), pod["spec"].get("securityContext", {})):
        value: Any = context
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def security_problems(m: Manifests) -> list[str]:
    problems = []
    for name, pod in pod_templates(m):
        if pod["spec"].get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token it never uses")
        for c in containers(pod):
            where = f"{name}/{c['name']}"
            context = c.get("securityContext", {})
            if _setting(pod, c, "runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if _setting(pod, c, "runAsUser") != UID:
                problems.append(f"{where}: runAsUser is not {UID}")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root file system is writable")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if context.get("privileged"):
                problems.append(f"{where}: privileged")
            caps = context.get("capabilities", {})
            if "ALL" not in caps.get("drop", []) or caps.get("add"):
                problems.append(f"{where}: capabilities are not all dropped")
            if _setting(pod, c, "seccompProfile", "type") != "RuntimeDefault":
                problems.append(f"{where}: seccomp profile is not RuntimeDefault")
    return problems


def _volume(pod: Doc, name: str) -> Doc:
    [volume] = [v for v in pod["spec"].get("volumes", []) if v["name"] == name]
    return volume


def writable_problems(m: Manifests) -> list[str]:
    """/tmp is an emptyDir (numba's cache, temporary files); every other mount is read-only."""
    problems = []
    for name, pod in pod_templates(m):
        for c in containers(pod):
            where = f"{name}/{c['name']}"
            mounts = {mount["mountPath"]: mount for mount in c.get("volumeMounts", [])}
            tmp = mounts.pop("/tmp", None)
            if tmp is None or "emptyDir" not in _volume(pod, tmp["name"]):
                problems.append(f"{where}: no emptyDir on /tmp")
            problems += [
                f"{where}: {p} is writable" for p, v in mounts.items() if not v.get("readOnly")
            ]
            for env in c.get("env", []):
                if env["name"] == "NUMBA_CACHE_DIR" and not env.get("value", "").startswith(
                    "/tmp/"
                ):
                    problems.append(f"{where}: NUMBA_CACHE_DIR is not under /tmp")
    return problems


def _port_number(container: Doc, port: int | str) -> int | None:
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    return named[0] if named else None


def probe_problems(m: Manifests, start: StartUp) -> list[str]:
    """Startup and liveness on /healthz, readiness on /readyz, all on metrics.port."""
    container = the_container(m)
    port = start.config.metrics.port
    problems = []
    expected = {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for kind, path in expected.items():
        probe = container.get(kind)
        if probe is None:
            problems.append(f"no {kind}")
            continue
        get = probe.get("httpGet", {})
        if get.get("path") != path:
            problems.append(f"{kind} is not on {path}")
        if _port_number(container, get.get("port", "")) != port:
            problems.append(f"{kind} is not on metrics.port {port}")
        if probe.get("timeoutSeconds", 1) >= probe.get("periodSeconds", 10):
            problems.append(f"{kind}: timeout not below its period")
    budget = {k: _budget_s(container.get(k, {})) for k in expected}
    pairs_m = start.workers * start.config.state.max_pairs / 1e6
    if budget["startupProbe"] < max(120.0, MARGIN * RESTORE_S_PER_M_PAIRS * pairs_m):
        problems.append(f"startupProbe gives {budget['startupProbe']} s: too little for restores")
    if budget["livenessProbe"] < 30:
        problems.append("livenessProbe restarts after less than 30 s of failures")
    if container.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/readyz":
        problems.append("livenessProbe on /readyz restarts idle pods")
    return problems


def _budget_s(probe: Doc) -> float:
    """How long a probe may fail before it acts, in seconds."""
    return float(probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3))


def memory_needed_mib(start: StartUp) -> float:
    """Peak memory of the pod's processes holding state.max_pairs each, while checkpointing."""
    per_pair_b = RSS_PER_PAIR_B + CHECKPOINT_PER_PAIR_B
    worker = (
        BASE_RSS_MIB + start.config.state.max_pairs * per_pair_b / MIB + ALIGNMENT_MB * 1e6 / MIB
    )
    return start.workers * worker + (SUPERVISOR_MIB if start.workers > 1 else 0)


def resource_problems(m: Manifests, start: StartUp) -> list[str]:
    problems = []
    for name, pod in pod_templates(m):
        for c in containers(pod):
            resources = c.get("resources", {})
            for bound in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    if what not in resources.get(bound, {}):
                        problems.append(f"{name}/{c['name']}: no {what} {bound}")
    resources = the_container(m).get("resources", {})
    limit = resources.get("limits", {}).get("memory")
    if limit is not None and parse_quantity(limit) < memory_needed_mib(start) * MIB:
        problems.append(f"memory limit {limit} below {memory_needed_mib(start):.0f} MiB")
    cpu = resources.get("requests", {}).get("cpu")
    if cpu is not None and parse_quantity(cpu) < start.workers:
        problems.append(f"cpu request {cpu} below one core per worker ({start.workers})")
    return problems


_SUFFIXES = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def parse_quantity(value: str | int | float) -> float:
    """A Kubernetes quantity ("2", "500m", "2560Mi") as a number (cores, bytes)."""
    text = str(value)
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIXES[suffix]
    return float(text)


def shutdown_problems(m: Manifests, start: StartUp) -> list[str]:
    [(name, pod)] = pod_templates(m)
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    pairs_m = start.workers * start.config.state.max_pairs / 1e6
    needed = MARGIN * CHECKPOINT_S_PER_M_PAIRS * pairs_m
    return [] if grace >= needed else [f"{name}: {grace} s to stop, checkpoints need {needed} s"]


def scale_problems(m: Manifests, start: StartUp) -> list[str]:
    """replicas x workers within the internal topic's partitions (docs/operations.md)."""
    replicas = m.one("Deployment")["spec"].get("replicas", 1)
    partitions = start.config.kafka.internal_topic_partitions
    if replicas * start.workers > partitions:
        return [f"{replicas} replicas x {start.workers} workers > {partitions} partitions"]
    return []


def _secret_value(m: Manifests, name: str, key: str) -> str:
    secret = m.one("Secret", name)
    if key in secret.get("stringData", {}):
        return str(secret["stringData"][key])
    return base64.b64decode(secret["data"][key]).decode()


def container_env(m: Manifests, container: Doc) -> dict[str, str]:
    """The container's environment, Secret references read from the example Secrets."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = _secret_value(m, ref["name"], ref["key"])
        elif "configMapKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["configMapKeyRef"]
            env[var["name"]] = m.one("ConfigMap", ref["name"])["data"][ref["key"]]
        else:
            raise AssertionError(f"env {var['name']}: no value the test can resolve")
    return env


def config_file_text(m: Manifests, container: Doc, path: str) -> str:
    """The text of ``path`` in the container: a key of a ConfigMap volume mounted above it."""
    [(_, pod)] = pod_templates(m)
    file = PurePosixPath(path)
    for mount in container.get("volumeMounts", []):
        directory = PurePosixPath(mount["mountPath"])
        if directory in file.parents and "configMap" in (volume := _volume(pod, mount["name"])):
            data = m.one("ConfigMap", volume["configMap"]["name"])["data"]
            key = str(file.relative_to(directory))
            assert key in data, f"{path}: ConfigMap has no key {key}"
            return str(data[key])
    raise AssertionError(f"{path} is on no ConfigMap volume")


def start_up(m: Manifests) -> StartUp:
    """Parse the container's argv with beaconwatch's own parser and load its config file with
    its environment through the loader `beaconwatch run` uses: a ConfigError is a failed start."""
    container = the_container(m)
    args = build_parser().parse_args(container["args"])
    assert args.command == "run", "the container does not run the service"
    text = config_file_text(m, container, args.config)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "beaconwatch.toml"
        path.write_text(text)
        config = load_config(path, env=container_env(m, container))
    assert args.workers != "auto", "--workers auto counts the node's cores, not the pod's"
    return StartUp(args, config, int(args.workers))


def _selects(selector: Doc, labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels", selector)
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def reference_problems(m: Manifests) -> list[str]:
    """Names, labels and ports that must agree across the resources."""
    deployment = m.one("Deployment")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = the_container(m)
    problems = []
    if not _selects(deployment["spec"]["selector"], labels):
        problems.append("the Deployment's selector misses its own pods")
    for kind in ("Service", "PodDisruptionBudget", "PodMonitor"):
        for doc in m.all(kind):
            if not _selects(doc["spec"]["selector"], labels):
                problems.append(f"{kind} {doc['metadata']['name']} selects no beaconwatch pod")
    for service in m.all("Service"):
        for port in service["spec"]["ports"]:
            if _port_number(container, port.get("targetPort", port["port"])) is None:
                problems.append(f"Service port {port['name']} targets no container port")
    for monitor in m.all("PodMonitor"):
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            if _port_number(container, endpoint["port"]) is None:
                problems.append(f"PodMonitor port {endpoint['port']} is no container port")
    accounts = {d["metadata"]["name"] for d in m.all("ServiceAccount")}
    if pod["spec"].get("serviceAccountName") not in accounts:
        problems.append("the pods' service account is not deployed")
    namespaces = {d["metadata"].get("namespace") for d in m.docs if d["kind"] != "Namespace"}
    if len(namespaces) != 1:
        problems.append(f"resources in several namespaces: {namespaces}")
    return problems
