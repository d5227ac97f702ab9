"""The monitoring suite's external programs (Debian's prometheus and promtool, podman-compose)
and the repository files it checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "rules" / "beaconwatch.yml"
RULE_TESTS = Path(__file__).with_name("rules.test.yml")
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "beaconwatch.json"
COMPOSE = REPO / "docker-compose.yml"
RUNBOOK = REPO / "docs" / "operations.md"


def tool(name: str) -> str:
    """The path of a required program; a missing one fails (never skips) the test. Python
    tools (podman-compose, a dev extra) come from this interpreter's environment."""
    venv_bin = str(Path(sys.executable).parent)
    path = shutil.which(name, path=venv_bin) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run `make monitoring-tools` first")
    return path


def run(*args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False
    )
