"""The Kafka client's log, summarised: one line per kind of trouble, not one per attempt.

aiokafka logs every failed attempt: with the broker down, its connection, metadata, fetch,
heartbeat and produce loops each log every retry backoff (about 170 lines a second, 10k in a
one-minute outage). An operator needs to see that the broker is gone and when it is back
(the service logs those changes, `runtime/service.py`) and the first error of each kind;
not the same lines again. This filter passes the first record of each kind, then holds its
repeats for ``interval_s`` and passes the next one with the number held back.

The kind is the logger and the message template with its digits dropped, so "node 1" and
"node 2", or a port, are one kind.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

_DIGITS = re.compile(r"\d+")
CLIENT_LOGGER = "aiokafka"


@dataclass(slots=True)
class _Kind:
    passed_at_s: float
    held: int = 0


class ClientLogThrottle(logging.Filter):
    """A handler filter: repeats of a client warning or error within ``interval_s`` of the
    last one passed are held back and counted."""

    def __init__(
        self, interval_s: float = 300.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._clock = clock
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self.held_total = 0  # lines held back since start

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not _is_client(record.name):
            return True
        key = (record.name, _DIGITS.sub("#", str(record.msg)))
        now = self._clock()
        kind = self._kinds.get(key)
        if kind is None:
            self._kinds[key] = _Kind(now)
            return True
        if now - kind.passed_at_s < self._interval_s:
            kind.held += 1
            self.held_total += 1
            return False
        if kind.held:
            # Formatted now, so the handler prints the count with the message.
            record.msg = (
                f"{record.getMessage()} [{kind.held} more like this in the last "
                f"{now - kind.passed_at_s:.0f} s held back]"
            )
            record.args = None
        kind.passed_at_s, kind.held = now, 0
        return True


def _is_client(name: str) -> bool:
    return name == CLIENT_LOGGER or name.startswith(CLIENT_LOGGER + ".")


def throttle_client_log(interval_s: float = 300.0) -> ClientLogThrottle:
    """Install one throttle on every handler of the root logger (call after basicConfig)."""
    throttle = ClientLogThrottle(interval_s)
    for handler in logging.getLogger().handlers:
        handler.addFilter(throttle)
    return throttle
