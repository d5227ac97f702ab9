"""Event-time alignment of input partitions in the repartition stage: flows wait for the
slowest partition that still has records, offsets are committed only up to held flows."""

from __future__ import annotations

import numpy as np

from beaconwatch.core.alignment import EventTimeAligner
from tests.unit.flowgen import T0_MS, make_flows

MIN_MS = 60_000


def flows_at(minutes: list[int]) -> tuple:  # type: ignore[type-arg]
    flows = make_flows(
        [(T0_MS + m * MIN_MS, "10.0.0.1", "203.0.113.1", 443, 6, 1) for m in minutes]
    )
    return flows, np.arange(100, 100 + len(minutes), dtype=np.int64)


def test_a_partition_ahead_waits_for_the_lagging_one() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner(slack_ms=5 * MIN_MS, max_held_flows=1000)
    fast, fast_offsets = flows_at(list(range(0, 60)))  # an hour of partition "a"
    aligner.add("a", fast, fast_offsets, 160)
    # "b" has records but none read yet: nothing may go.
    out = aligner.release(lagging={"a", "b"})
    assert len(out.flows) == 0 and out.commit_offsets == {"a": 100}
    # "b" read up to minute 10: flows up to minute 15 (slack) go; "a" commits to its first held.
    slow, slow_offsets = flows_at(list(range(0, 11)))
    aligner.add("b", slow, slow_offsets, 111)
    out = aligner.release(lagging={"b"})
    starts = (out.flows.start_ms - T0_MS) // MIN_MS
    assert sorted(starts.tolist()) == sorted(list(range(0, 16)) + list(range(0, 11)))
    assert out.commit_offsets == {"a": 116, "b": 111}
    assert aligner.held_flows == 60 - 16
    # Every partition caught up: the rest goes, everything is committed.
    out = aligner.release(lagging=set())
    assert len(out.flows) == 44 and out.commit_offsets == {"a": 160, "b": 111}
    assert aligner.held_flows == 0


def test_a_partition_without_flow_times_holds_nothing_back() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner(slack_ms=0, max_held_flows=1000)
    flows, offsets = flows_at([1, 2, 3])
    aligner.add("a", flows, offsets, 103)
    aligner.add("b", flows.take(np.zeros(0, dtype=np.intp)), offsets[:0], 50)  # all garbage
    out = aligner.release(lagging={"a", "b"})
    assert len(out.flows) == 3 and out.commit_offsets == {"a": 103, "b": 50}


def test_too_many_held_flows_are_released_unaligned() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner(slack_ms=0, max_held_flows=10)
    flows, offsets = flows_at(list(range(20)))
    aligner.add("a", flows, offsets, 120)
    out = aligner.release(lagging={"a", "never-read"})
    assert out.forced and len(out.flows) == 20 and out.commit_offsets == {"a": 120}


def test_a_revoked_partition_drops_what_it_held() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner(slack_ms=0, max_held_flows=100)
    flows, offsets = flows_at([5, 6, 7])
    aligner.add("a", flows, offsets, 103)
    assert len(aligner.release(lagging={"a", "b"}).flows) == 0
    aligner.forget(["a"])
    assert aligner.held_flows == 0
    out = aligner.release(lagging=set())
    assert len(out.flows) == 0 and out.commit_offsets == {}
