"""Smoke test of `beaconwatch demo`: the planted beacons are alerted, nothing else."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import pytest

pytestmark = pytest.mark.integration


async def test_demo_alerts_on_the_planted_beacons_only() -> None:
    # The demo starts its own embedded broker; 15 wall seconds at 800x = 3.3 h of traffic.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beaconwatch", "demo",
        "--duration", "15", "--acceleration", "800", "--metrics-port", "0", "--seed", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    out_bytes, _ = await asyncio.wait_for(proc.communicate(), 240)
    out = out_bytes.decode()
    assert proc.returncode == 0, out
    assert re.search(r"metrics http://127\.0\.0\.1:\d+/metrics", out), out
    summary = re.search(
        r"planted beacons caught (\d+)/(\d+); alerts on non-planted pairs: (\d+)", out
    )
    assert summary is not None, out
    caught, planted, unexpected = map(int, summary.groups())
    assert (caught, planted, unexpected) == (4, 4, 0), out
    assert "MISSED" not in out and "UNEXPECTED" not in out
    # The live table printed at least one row per planted beacon.
    rows = [
        line for line in out.splitlines() if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ", line)
    ]
    assert len(rows) >= 4, out
