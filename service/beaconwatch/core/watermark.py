"""A partition's event-time watermark that a minority of wrong clocks cannot move.

The watermark is "now" in event time: lateness is judged against it, idle pairs are swept and
ring times re-based by it, checkpoints carry it. Taken as the newest time seen (as Flink's
bounded out-of-orderness does per split), one record stamped 50 min ahead, or an exporter whose
clock runs 15 min fast on 1 % of the flows, pulled it ahead of everybody else, and the good
traffic was rejected as too late. Here:

* each flow is timed by when it could have been exported, its end (its start when the format
  has none): Zeek writes a connection when it ends, routers send long flows at their active
  timeout, so a flow starting hours ago can arrive now;
* *newest* is the newest such time, but never beyond the wall clock plus `clock_tolerance_ms`:
  a flow further ahead comes from an exporter whose clock is fast; it is kept, counted as
  *ahead* and named in a warning, and does not move event time (live traffic only: a file of
  last year's flows is far behind the wall clock);
* the watermark is *newest*, but never beyond the median of the batch's flows plus half the
  allowed lateness: whatever a minority of a batch (under half) claims, the batch's flows as
  old as its median minus half the lateness are never late. This also holds for files, where
  the wall clock says nothing. A batch of fewer than `MIN_BATCH_FLOWS` is too small to say
  what is typical (a quiet partition, one flow per poll): its newest flow counts.

A jump that the majority of a batch makes (last month's file scanned before today's, a replayed
backlog) moves the median, and the watermark follows. A batch spanning much more than the
lateness (a sorted file) leaves the watermark near its middle until the next batch: that only
makes lateness more lenient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from beaconwatch.domain.clock import EventClock
from beaconwatch.domain.dtypes import I64

# The median is taken over at most this many flows, spread over the batch.
SAMPLE_FLOWS = 256
# A median of fewer flows says little: the newest of a smaller batch counts.
MIN_BATCH_FLOWS = 16


@dataclass(frozen=True, slots=True)
class Observation:
    """What one batch did to the watermark."""

    watermark_ms: int | None  # after the batch
    ahead: npt.NDArray[np.bool_]  # per flow given: beyond the wall clock + tolerance


class Watermark:
    """Monotonic, robust event-time watermark of one partition (milliseconds)."""

    __slots__ = ("_half_lateness_ms", "_newest", "_now", "_tolerance_ms")

    def __init__(self, lateness_ms: int, clock_tolerance_ms: int) -> None:
        self._half_lateness_ms = lateness_ms // 2
        self._tolerance_ms = clock_tolerance_ms
        self._newest = EventClock()
        self._now = EventClock()

    @property
    def now_ms(self) -> int | None:
        return self._now.now_ms() if self._now.started else None

    @property
    def newest_ms(self) -> int | None:
        """The newest export time seen (not beyond the wall clock + tolerance)."""
        return self._newest.now_ms() if self._newest.started else None

    def start_at(self, watermark_ms: int) -> None:
        """Set the watermark: the first batch's estimate, or a restored checkpoint's."""
        self._newest.advance_to(watermark_ms)
        self._now.advance_to(watermark_ms)

    def observe(self, export_ms: I64, wall_ms: int) -> Observation:
        """Take the export times of a batch's timely flows, in arrival order."""
        ahead = export_ms > wall_ms + self._tolerance_ms
        believable = export_ms[~ahead]
        n = believable.shape[0]
        if n == 0:
            return Observation(self.now_ms, ahead)
        self._newest.advance_to(int(believable.max()))
        now = self._newest.now_ms()
        if n >= MIN_BATCH_FLOWS:
            # Spread over the batch: one exporter's run of flows (an export packet holds
            # dozens) weighs as much as its share of the batch, wherever it sits.
            sample = believable[:: -(-n // SAMPLE_FLOWS)]
            middle = sample.shape[0] // 2
            typical = int(np.partition(sample, middle)[middle])
            now = min(now, typical + self._half_lateness_ms)
        self._now.advance_to(now)
        return Observation(self.now_ms, ahead)
