"""docker-compose.yml as podman-compose reads it (`podman-compose config`: parsed, merged,
interpolated; no container is started), and the files it mounts from the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.monitoring.tools import COMPOSE, REPO, run, tool

SERVICES = {"kafka", "topic-init", "beaconwatch", "simulate", "prometheus", "grafana"}


def compose_config() -> dict[str, Any]:
    tool("podman")  # podman-compose asks it for its version first
    # --profile demo: the simulate service too (profiles leave it out of a plain `config`).
    result = run(tool("podman-compose"), "--profile", "demo", "-f", str(COMPOSE), "config")
    # podman-compose exits 0 even when it could not run: its complaints go to stderr.
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr and "CRITICAL" not in result.stderr, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_podman_compose_reads_the_stack() -> None:
    config = compose_config()
    assert set(config["services"]) == SERVICES
    prometheus = config["services"]["prometheus"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    # The rules directory sits where deploy/prometheus.yml's relative rule_files expects it.
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus.yml"
    assert mounts["/etc/prometheus/rules"] == "./deploy/rules"


def test_every_bind_mount_exists_in_the_repository() -> None:
    for name, service in compose_config()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / Path(source)).exists(), f"{name} mounts missing {source}"
