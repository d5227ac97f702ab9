"""A stop that ends: the service gets ``grace_s`` after the stop signal to finish its batch,
commit and checkpoint. With the broker gone it cannot (its outputs wait for acknowledgements
that do not come), so the process then exits with status 1: nothing unacknowledged was
committed, and the next start reads it again (at-least-once, as after kill -9)."""

from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger(__name__)

EXIT_STOP_TIMED_OUT = 1


async def stop_within(run: asyncio.Task[None], stop: asyncio.Event, grace_s: float) -> None:
    """Await ``run``; once ``stop`` is set, for at most ``grace_s`` more."""
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not run.done():
        done, _ = await asyncio.wait({run}, timeout=grace_s)
        if not done:
            log.error(
                "not stopped %.0f s after the stop signal (kafka.shutdown_timeout_s): outputs "
                "are still unacknowledged, is the broker reachable? Exiting; what was not "
                "committed is read again at the next start",
                grace_s,
            )
            logging.shutdown()
            os._exit(EXIT_STOP_TIMED_OUT)
    await run
