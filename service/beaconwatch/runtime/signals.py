"""SIGTERM/SIGINT -> set the stop event, so the service finishes its batch and commits."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_signal_handlers(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event
) -> Callable[[], None]:
    """Make SIGTERM and SIGINT set ``stop``; returns a function that restores the defaults."""
    for sig in SHUTDOWN_SIGNALS:
        loop.add_signal_handler(sig, stop.set)

    def remove() -> None:
        for sig in SHUTDOWN_SIGNALS:
            loop.remove_signal_handler(sig)

    return remove
