"""The detector's state of one input partition, owned, dropped and snapshotted as a unit.

Kafka Streams, Flink and quix-streams keep state per input partition: a partition moves between
instances with its state, and one partition lagging another (a replayed backlog, a slow
exporter) cannot disturb the other's windows. So does beaconwatch. A partition's state is its
pair table (rings of connection times and sizes, the alert lifecycle of every pair), its
event-time watermark, the epoch of its ring times and its idle sweep. Prevalence is the one
thing shared: the process's sketch is the sum of its partitions' pairs (`state.prevalence`).
"""

from __future__ import annotations

from collections.abc import Hashable

from beaconwatch.core.clock import EventClock
from beaconwatch.state.pair_table import PairTable

PartitionKey = Hashable  # (topic, partition) in the service; any label in files and tests


class PartitionState:
    """Pair table, watermark (an `EventClock`), epoch (in the table) and idle sweep."""

    __slots__ = ("clock", "last_sweep_ms", "table")

    def __init__(self, table: PairTable) -> None:
        self.table = table
        self.clock = EventClock()
        self.last_sweep_ms: int | None = None

    @property
    def watermark_ms(self) -> int | None:
        """Newest flow start accepted from this partition (None before the first)."""
        return self.clock.now_ms() if self.clock.started else None
