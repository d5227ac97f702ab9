"""A stop that ends: a stage stuck waiting for acknowledgements (broker gone) does not keep
the process alive past kafka.shutdown_timeout_s."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from beaconwatch.runtime.shutdown import EXIT_STOP_TIMED_OUT

STUCK = """
import asyncio
from beaconwatch.runtime.shutdown import stop_within

async def main(hang: bool) -> None:
    stop = asyncio.Event()
    async def run() -> None:
        await stop.wait()
        if hang:
            await asyncio.Event().wait()  # outputs never acknowledged
    task = asyncio.create_task(run())
    asyncio.get_running_loop().call_later(0.1, stop.set)
    await stop_within(task, stop, 0.5)

asyncio.run(main({hang}))
"""


@pytest.mark.parametrize("hang", [True, False])
def test_a_stop_ends_within_the_grace_whatever_the_stages_wait_for(hang: bool) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", STUCK.format(hang=hang)], capture_output=True, text=True, timeout=30
    )
    elapsed_s = time.monotonic() - started
    if hang:
        assert done.returncode == EXIT_STOP_TIMED_OUT
        assert "kafka.shutdown_timeout_s" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
    assert elapsed_s < 10
