"""Is the broker there? One log line when it goes, one a minute while it stays away, one when
it is back, with how long it was gone; never one per failed attempt."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Connectivity:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        remind_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._servers = bootstrap_servers
        self._remind_every_s = remind_every_s
        self._clock = clock
        self.reachable = True
        self._lost_at_s = 0.0
        self._reminded_at_s = 0.0
        self.outages = 0

    def observe(self, problem: str | None) -> None:
        """The latest probe's result: None if the broker answered, else why not."""
        now = self._clock()
        if problem is None:
            if not self.reachable:
                self.reachable = True
                log.info(
                    "Kafka at %s reachable again after %.0f s", self._servers, now - self._lost_at_s
                )
            return
        if self.reachable:
            self.reachable = False
            self.outages += 1
            self._lost_at_s = self._reminded_at_s = now
            log.warning(
                "Kafka at %s unreachable (%s): reading, sending and committing wait for it; "
                "outputs not acknowledged are sent again",
                self._servers, problem,
            )  # fmt: skip
        elif now - self._reminded_at_s >= self._remind_every_s:
            self._reminded_at_s = now
            log.warning(
                "Kafka at %s still unreachable after %.0f s (%s)",
                self._servers, now - self._lost_at_s, problem,
            )  # fmt: skip
