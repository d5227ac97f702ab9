"""``beaconwatch scan`` writes OCSF findings with --alert-format ocsf or alerting.format = "ocsf":
the same alerts as its ECS lines, each a valid OCSF 1.8.0 Detection Finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from beaconwatch.alerting.ocsf import OCSF_VERSION
from beaconwatch.cli import main
from tests.unit.ocsf_schema import ocsf_errors

SIM_ARGS = ["--seed", "9", "--hosts", "40", "--beacons", "3", "--start-ms", "1700000000000"]


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "flows.jsonl"
    assert main(["simulate", "--output", str(path), "--duration-s", "3600", *SIM_ARGS]) == 0
    return path


def scan(flows: Path, out: Path, *args: str) -> list[dict[str, Any]]:
    assert main(["scan", "--quiet", "--output", str(out), *args, str(flows)]) == 0
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_scan_writes_valid_ocsf_findings_for_the_same_alerts(flows: Path, tmp_path: Path) -> None:
    ecs = scan(flows, tmp_path / "ecs.jsonl")
    ocsf = scan(flows, tmp_path / "ocsf.jsonl", "--alert-format", "ocsf")
    assert len(ecs) >= 3  # the planted beacons at least
    for doc in ocsf:
        assert ocsf_errors(doc, OCSF_VERSION) == []
    assert [d["metadata"]["uid"] for d in ocsf] == [d["event"]["id"] for d in ecs]

    config = tmp_path / "ocsf.toml"
    config.write_text('[alerting]\nformat = "ocsf"\n', encoding="utf-8")
    from_config = scan(flows, tmp_path / "cfg.jsonl", "--config", str(config))
    assert from_config == ocsf
    # The flag wins over the config.
    assert (
        scan(flows, tmp_path / "flag.jsonl", "--config", str(config), "--alert-format", "ecs")
        == ecs
    )
