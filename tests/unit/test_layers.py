"""The layering contracts in pyproject.toml ([tool.importlinter]) hold, and can fail.

`make lint` runs them too; here they are a test, with a planted violation per contract to show
that a wrong-way import is caught (a contract that cannot fail proves nothing)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "service" / "beaconwatch"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(source_root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(source_root))
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=source_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_package_keeps_every_contract() -> None:
    result = _lint_imports(REPO / "service")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "complaint"),
    [
        # a value type that reaches up into the engine
        (
            "domain/clock.py",
            "import beaconwatch.core.detector",
            "beaconwatch.domain is not allowed to import beaconwatch.core",
        ),
        # alerting that reads the pair table instead of the alert rows the core hands it
        (
            "alerting/rules.py",
            "import beaconwatch.state.pair_table",
            "beaconwatch.alerting is not allowed to import beaconwatch.state",
        ),
        # the kernel's alert policy that takes the table instead of the scalars state hands it
        (
            "alerting/policy.py",
            "import beaconwatch.state.table_columns",
            "beaconwatch.alerting is not allowed to import beaconwatch.state",
        ),
        # the engine that starts an event loop or talks Prometheus
        ("core/detector.py", "import asyncio", "beaconwatch.core is not allowed to import asyncio"),
        (
            "scoring/kernels.py",
            "import prometheus_client",
            "beaconwatch.scoring is not allowed to import prometheus_client",
        ),
        # a source that reaches into the runtime above it
        (
            "sources/files.py",
            "import beaconwatch.runtime.service",
            "beaconwatch.sources is not allowed to import beaconwatch.runtime",
        ),
    ],
)
def test_a_planted_wrong_way_import_breaks_a_contract(
    tmp_path: Path, module: str, planted: str, complaint: str
) -> None:
    copy = tmp_path / "beaconwatch"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "1 broken" in result.stdout
    assert complaint in " ".join(result.stdout.split())
