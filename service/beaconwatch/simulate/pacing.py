"""Map simulated event time onto wall time at an acceleration factor (pure arithmetic)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventPacer:
    """Event time ``event0_ms`` happens at wall time ``wall0_s``; ``acceleration`` event seconds
    pass per wall second. ``acceleration <= 0`` means as fast as possible."""

    event0_ms: int
    wall0_s: float
    acceleration: float

    def wall_due_s(self, event_ms: int) -> float:
        if self.acceleration <= 0:
            return self.wall0_s
        return self.wall0_s + (event_ms - self.event0_ms) / 1000.0 / self.acceleration

    def delay_s(self, event_ms: int, wall_now_s: float) -> float:
        """How long to wait before sending a record with event time ``event_ms``."""
        return max(0.0, self.wall_due_s(event_ms) - wall_now_s)
