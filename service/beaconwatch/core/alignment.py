"""Event-time alignment of the input partitions the repartition stage merges.

The detector judges lateness per internal partition, and each internal partition is a merge
of every input partition. A consumer catching up on a backlog reads input partitions unevenly
(a poll may hold an hour of one partition and nothing of another), so written as read, the
slower partitions' flows would reach the detector older than its watermark allows and be
rejected as too late. Like Kafka Streams (which picks the partition with the lowest
timestamp) and Flink (watermark alignment), flows are held back until every input partition
that still has records to read has reached their time: a flow is released once its start is
at most ``slack_ms`` after the lowest frontier (newest start read) of those partitions.
Partitions that are caught up (nothing more to read) hold nothing back, so at steady state
every flow is released at once.

Input offsets: a partition's records are committed only up to its earliest record with a
held flow (a crash re-reads from there; the detector merges the flows it already saw as
duplicates). Held flows are bounded by ``max_held_flows``; past it everything is released
(some may then be too late, and are counted and dead-lettered by the detector).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from beaconwatch.domain.flows import FlowBatch

_NO_TIME = int(np.iinfo(np.int64).min)
K = TypeVar("K", bound=Hashable)  # a partition


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Flows of one read, with what the release decision needs without touching them."""

    flows: FlowBatch
    offsets: npt.NDArray[np.int64]  # each flow's record offset
    min_start_ms: int
    max_start_ms: int
    min_offset: int

    @classmethod
    def of(cls, flows: FlowBatch, offsets: npt.NDArray[np.int64]) -> _Chunk:
        return cls(flows, offsets, int(flows.start_ms.min()), int(flows.start_ms.max()),
                   int(offsets.min()))  # fmt: skip


@dataclass(slots=True)
class _Held:
    chunks: list[_Chunk] = field(default_factory=list)
    frontier_ms: int = _NO_TIME  # newest flow start read from this partition
    next_offset: int | None = None  # after the last record read

    def count(self) -> int:
        return sum(len(c.flows) for c in self.chunks)


@dataclass(frozen=True, slots=True)
class Released(Generic[K]):
    flows: FlowBatch  # every partition's released flows, partition after partition
    commit_offsets: dict[K, int]  # next offset safe to commit, per partition
    forced: bool  # released past the time rule because too much was held


class EventTimeAligner(Generic[K]):
    def __init__(self, *, slack_ms: int, max_held_flows: int) -> None:
        self.slack_ms = slack_ms
        self.max_held_flows = max_held_flows
        self._held: dict[K, _Held] = {}
        self.held_flows = 0

    def add(
        self,
        partition: K,
        flows: FlowBatch,
        offsets: npt.NDArray[np.int64],
        next_offset: int,
    ) -> None:
        """Flows read from ``partition`` (``offsets``: each flow's record offset), whose
        records end before ``next_offset``."""
        held = self._held.setdefault(partition, _Held())
        if len(flows):
            held.chunks.append(_Chunk.of(flows, offsets))
            held.frontier_ms = max(held.frontier_ms, int(flows.start_ms.max()))
            self.held_flows += len(flows)
        held.next_offset = next_offset

    def release(self, lagging: Collection[K]) -> Released[K]:
        """The flows every ``lagging`` partition (one with records still to read) has caught
        up with; ``lagging`` partitions not read yet hold back everything."""
        forced = self.held_flows > self.max_held_flows
        limit_ms: int | None = None  # release everything
        if not forced and lagging:
            if any(p not in self._held for p in lagging):
                limit_ms = _NO_TIME  # a partition not read yet: its records may be oldest
            else:
                # A partition read but with no flow time yet (only bad or out-of-scope
                # records) tells nothing about time: it holds nothing back.
                frontiers = [f for p in lagging if (f := self._held[p].frontier_ms) != _NO_TIME]
                if frontiers:
                    limit_ms = min(frontiers) + self.slack_ms
        out: list[FlowBatch] = []
        commits: dict[K, int] = {}
        for partition, held in self._held.items():
            kept: list[_Chunk] = []
            for chunk in held.chunks:
                # Most chunks go or stay whole (a partition is read in time order, roughly):
                # only a chunk straddling the limit is split, so a large backlog held back is
                # not copied again at every poll.
                if limit_ms is None or chunk.max_start_ms <= limit_ms:
                    out.append(chunk.flows)
                    self.held_flows -= len(chunk.flows)
                elif limit_ms == _NO_TIME or chunk.min_start_ms > limit_ms:
                    kept.append(chunk)
                else:
                    go = chunk.flows.start_ms <= limit_ms
                    out.append(chunk.flows.take(go))
                    self.held_flows -= int(np.count_nonzero(go))
                    keep = ~go
                    kept.append(_Chunk.of(chunk.flows.take(keep), chunk.offsets[keep]))
            held.chunks = kept
            if kept:
                commits[partition] = min(c.min_offset for c in kept)
            elif held.next_offset is not None:
                commits[partition] = held.next_offset
        return Released(FlowBatch.concat(out), commits, forced)

    def forget(self, partitions: Collection[K]) -> None:
        """Revoked: their held flows are dropped; their next owner reads them again from the
        offset committed for them (never past a held flow's record)."""
        for partition in partitions:
            held = self._held.pop(partition, None)
            if held is not None:
                self.held_flows -= held.count()
