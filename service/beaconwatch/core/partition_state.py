"""The detector's state of one input partition, owned, dropped and snapshotted as a unit.

Kafka Streams, Flink and quix-streams keep state per input partition: a partition moves between
instances with its state, and one partition lagging another (a replayed backlog, a slow
exporter) cannot disturb the other's windows. So does beaconwatch. A partition's state is its
pair table (rings of connection times and sizes, the alert lifecycle of every pair), its
event-time watermark, the epoch of its ring times, its idle sweep and the names its pairs were
reached under in Zeek ssl/http records (`state.name_notes`). Prevalence is the one
thing shared: the process's sketch is the sum of its partitions' pairs (`state.prevalence`).
"""

from __future__ import annotations

from collections.abc import Hashable

from beaconwatch.core.watermark import Watermark
from beaconwatch.state.name_notes import NameNotes
from beaconwatch.state.pair_table import PairTable

PartitionKey = Hashable  # (topic, partition) in the service; any label in files and tests


class PartitionState:
    """Pair table, watermark (`core.watermark`), epoch (in the table) and idle sweep."""

    __slots__ = ("last_sweep_ms", "notes", "table", "watermark")

    def __init__(self, table: PairTable, lateness_ms: int, clock_tolerance_ms: int) -> None:
        self.table = table
        # Names of (source, destination) pairs from Zeek ssl/http records (`state.name_notes`).
        self.notes = NameNotes()
        self.watermark = Watermark(lateness_ms, clock_tolerance_ms)
        self.last_sweep_ms: int | None = None

    @property
    def watermark_ms(self) -> int | None:
        """This partition's event time (None before its first flow)."""
        return self.watermark.now_ms
