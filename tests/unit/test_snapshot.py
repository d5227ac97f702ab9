"""A partition's state snapshotted and restored as a unit: same alerts as if never stopped."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from beaconwatch.alerting.alert import Alert
from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.state import snapshot
from beaconwatch.state.snapshot import SnapshotError
from tests.unit.flowgen import T0_MS, WALL_MS, beacon_rows, make_flows, poisson_rows
from tests.unit.test_pair_table import (
    assert_index_consistent,
    assert_prevalence_is_the_sum_of_the_partitions,
)


def detector(config: Config | None = None) -> Detector:
    return Detector(config or Config(), wall_clock_ms=lambda: WALL_MS)


def traffic_batches(batches: int = 12) -> list[FlowBatch]:
    """Six beacons (some alert before the cut, some straddle it) and 200 browsing hosts."""
    rows = []
    for b, period in enumerate((30, 60, 90, 120, 300, 45)):
        rows += beacon_rows(f"10.0.9.{b}", f"203.0.113.{b}", period_s=period, count=60,
                            jitter=0.15, seed=b)  # fmt: skip
    for h in range(200):
        rows += poisson_rows(f"10.0.1.{h}", [f"198.51.100.{h % 7}", "192.0.2.80"],
                             mean_gap_s=120, count=40, seed=100 + h)  # fmt: skip
    rows.sort()
    size = -(-len(rows) // batches)
    return [make_flows(rows[i : i + size]) for i in range(0, len(rows), size)]


def run(det: Detector, batches: list[FlowBatch], key: object = 0) -> list[Alert]:
    alerts: list[Alert] = []
    for batch in batches:
        alerts += det.process(batch, partition=key).alerts
    return alerts


@pytest.mark.parametrize("cut", [3, 6, 9])
def test_a_restored_partition_alerts_exactly_as_one_never_stopped(cut: int) -> None:
    batches = traffic_batches()
    through = detector()
    expected = run(through, batches)
    assert len({(a.src_ip, a.dst_ip) for a in expected}) == 6

    before = detector()
    first = run(before, batches[:cut])
    data = before.snapshot_partition(0, input_offset=1234)
    after = detector()
    assert after.restore_partition(0, data) == {"input_offset": 1234}
    assert after.partitions[0].watermark_ms == before.partitions[0].watermark_ms
    assert after.table.epoch_ms == before.table.epoch_ms
    assert after.table.tracked_pairs == before.table.tracked_pairs
    assert_index_consistent(after.table)
    rest = run(after, batches[cut:])
    # Same alerts, same ids, same figures: a beacon alerted before the cut goes on as an
    # update of its series; none is raised again as new or waits for fresh check-ins.
    assert [repr(a) for a in first + rest] == [repr(a) for a in expected]


def test_restore_joins_a_process_with_other_partitions_and_replaces_its_own() -> None:
    batches = traffic_batches()
    source = detector()
    run(source, batches[:5], key=("flows", 3))
    data = source.snapshot_partition(("flows", 3))
    target = detector(with_overrides(Config(), state={"max_pairs": 100_000}))
    run(target, batches[5:7], key=("flows", 0))
    run(target, batches[:2], key=("flows", 3))  # replaced by the snapshot
    target.restore_partition(("flows", 3), data)
    assert target.partitions["flows", 3].table.tracked_pairs == source.tracked_pairs
    assert_prevalence_is_the_sum_of_the_partitions(target)
    assert target.budget.granted == sum(p.table.capacity for p in target.partitions.values())


def test_an_empty_partition_round_trips() -> None:
    det = detector()
    data = det.snapshot_partition("idle")
    other = detector()
    assert other.restore_partition("idle", data) == {}
    assert other.partitions["idle"].watermark_ms is None
    assert other.tracked_pairs == 0


def damaged(data: bytes) -> dict[str, bytes]:
    mid = len(data) // 2
    return {
        "a flipped bit": data[:mid] + bytes([data[mid] ^ 1]) + data[mid + 1 :],
        "truncated": data[:-100],
        "empty": b"",
        "not a snapshot": b"PK\x03\x04" + data[4:],
    }


def test_damaged_snapshots_are_corrupt_and_change_nothing() -> None:
    batches = traffic_batches()
    det = detector()
    run(det, batches[:4])
    data = det.snapshot_partition(0)
    target = detector()
    run(target, batches[:2])
    pairs_before = target.tracked_pairs
    for what, bad in damaged(data).items():
        with pytest.raises(SnapshotError) as err:
            target.restore_partition(0, bad)
        assert err.value.reason == "corrupt", what
    assert target.tracked_pairs == pairs_before
    assert target.budget.granted == target.table.capacity
    assert_prevalence_is_the_sum_of_the_partitions(target)


def with_version(data: bytes, version: int) -> bytes:
    """The snapshot as another format version would write it (with a valid checksum)."""
    body = bytearray(data[:-4])
    struct.pack_into("<H", body, 8, version)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def test_another_format_or_ring_length_is_incompatible() -> None:
    det = detector()
    run(det, traffic_batches()[:3])
    data = det.snapshot_partition(0)
    with pytest.raises(SnapshotError) as err:
        detector().restore_partition(0, with_version(data, snapshot.NAMES_VERSION + 1))
    assert err.value.reason == "incompatible"
    longer = detector(with_overrides(Config(), state={"history_events": 64}))
    with pytest.raises(SnapshotError) as err:
        longer.restore_partition(0, data)
    assert err.value.reason == "incompatible" and "history_events" in str(err.value)
    assert longer.tracked_pairs == 0


def test_snapshot_holds_only_tracked_rows() -> None:
    det = detector()
    run(det, traffic_batches()[:6])
    data = det.snapshot_partition(0)
    per_row = sum(
        getattr(det.table, name)[:1].nbytes for name in snapshot.ROW_COLUMNS
    )  # bytes of one row over all columns
    assert len(data) < det.table.tracked_pairs * per_row + 4096
    assert np.count_nonzero(det.table.used) == det.table.tracked_pairs
    assert (det.partitions[0].watermark_ms or 0) > T0_MS


def test_a_snapshot_without_a_later_column_restores_with_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Written before `direction_inferred` existed: an upgrade keeps every partition's state.
    det = detector()
    run(det, traffic_batches()[:6])
    assert det.table.direction_inferred[det.table.used].all()  # flowgen's flows: ports only
    older = tuple(n for n in snapshot.ROW_COLUMNS if n not in snapshot.LATER_COLUMNS)
    monkeypatch.setattr(snapshot, "ROW_COLUMNS", older)
    data = det.snapshot_partition(0)
    monkeypatch.undo()
    restored = detector()
    restored.restore_partition(0, data)
    assert restored.table.tracked_pairs == det.table.tracked_pairs
    assert not restored.table.direction_inferred.any()
    assert_index_consistent(restored.table)
