"""`beaconwatch simulate --topic` + the service on a real broker == `beaconwatch scan` offline."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from beaconwatch.cli import main
from beaconwatch.cli.report import beacon_pair
from beaconwatch.simulate import read_truth

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

SIM_ARGS = ["--seed", "9", "--hosts", "150", "--beacons", "4", "--start-ms", "1700000000000"]
DURATION_S = "7200"


async def _cli(*args: str) -> tuple[int, str]:
    """Run the real console entry point in a subprocess (it runs its own event loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beaconwatch", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return int(proc.returncode or 0), out.decode()


def _event_ids(lines: list[bytes]) -> set[str]:
    return {orjson.loads(line)["event"]["id"] for line in lines}


async def test_simulate_topic_plus_service_equals_scan(kit: KafkaTestKit, tmp_path: Path) -> None:
    names, broker = kit.names, kit.broker
    # Three partitions, produced as a backlog before the service starts: the service reads them
    # one after another, and per-partition watermarks keep the slower ones from reading as late.
    await kit.make_input_topic(3)
    truth = tmp_path / "truth.json"
    code, out = await _cli(
        "simulate", "--topic", names.input, "--bootstrap-servers", broker.bootstrap_servers,
        "--duration-s", DURATION_S, "--truth", str(truth), *SIM_ARGS,
    )  # fmt: skip
    assert code == 0, out
    produced = int(out.split("produced ")[1].split()[0])

    # The same flows, offline.
    flows, scanned = tmp_path / "flows.jsonl", tmp_path / "alerts.jsonl"
    assert main(["simulate", "--output", str(flows), "--duration-s", DURATION_S, *SIM_ARGS]) == 0
    assert len(flows.read_bytes().splitlines()) == produced
    assert main(["scan", "--quiet", "--output", str(scanned), str(flows)]) == 0
    scan_ids = _event_ids(scanned.read_bytes().splitlines())

    async with kit.running(kit.config()) as run:
        await kit.wait_until(lambda: run.consumed() >= produced, timeout_s=60, what="consumed")
        await kit.drained(run)
        published = await kit.read_topic(names.alerts, expected=len(scan_ids))
        rejected = kit.metric(run.service.registry, "beaconwatch_dead_letter_records_total")
    service_ids = _event_ids([r.value for r in published if r.value is not None])
    assert rejected == 0

    assert service_ids == scan_ids
    assert {a.event_id for a in run.alerts} == scan_ids
    planted = {beacon_pair(b) for b in read_truth(truth)}
    alerted = {(a.src_ip, a.dst_ip, a.dst_port, a.proto) for a in run.alerts}
    assert alerted == planted
