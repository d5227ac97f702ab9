"""Event time for the core.

The core never reads the wall clock: "now" is the event-time watermark, the latest flow start
seen so far, so a replay of last week's data or an accelerated demo behaves exactly like live
traffic. The watermark only moves forward: a late record must not rewind the eviction and
rescoring timers, or pairs could be evicted and re-created in a loop.
"""

from __future__ import annotations


class EventClock:
    """Monotonic event-time watermark in milliseconds. Tests advance it by hand."""

    __slots__ = ("_now_ms",)

    def __init__(self, start_ms: int | None = None) -> None:
        self._now_ms: int | None = start_ms

    @property
    def started(self) -> bool:
        return self._now_ms is not None

    def now_ms(self) -> int:
        """The watermark; 0 before any flow was seen."""
        return self._now_ms if self._now_ms is not None else 0

    def advance_to(self, t_ms: int) -> int:
        """Move the watermark to ``t_ms`` if that is later; return the (new) watermark."""
        if self._now_ms is None or t_ms > self._now_ms:
            self._now_ms = int(t_ms)
        return self._now_ms
