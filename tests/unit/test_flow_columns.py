"""The internal topic's record format: many flows per record, read back exactly, damage caught."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from beaconwatch.decode.flow_columns import (
    BYTES_PER_FLOW,
    HEADER_BYTES,
    FlowColumnsDecoder,
    encode_flows,
)
from beaconwatch.decode.registry import get_decoder
from beaconwatch.domain.flows import FLOW_COLUMNS, FlowBatch
from beaconwatch.domain.rejections import RejectReason


def random_flows(n: int, seed: int = 0) -> FlowBatch:
    rng = np.random.default_rng(seed)
    columns = {}
    for name, dtype in FLOW_COLUMNS.items():
        info = np.iinfo(dtype)
        columns[name] = rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)
    return FlowBatch(**columns)


def assert_same_flows(got: FlowBatch, want: FlowBatch) -> None:
    for name in FLOW_COLUMNS:
        if name != "record_index":
            assert np.array_equal(getattr(got, name), getattr(want, name)), name
            assert getattr(got, name).dtype == np.dtype(FLOW_COLUMNS[name]), name


def test_round_trip_of_extreme_values_with_record_indexes() -> None:
    a, b = random_flows(1000, seed=1), random_flows(3, seed=2)
    records = [encode_flows(a), encode_flows(FlowBatch.empty(0)), encode_flows(b)]
    assert len(records[0]) == HEADER_BYTES + 1000 * BYTES_PER_FLOW
    result = FlowColumnsDecoder().decode(records)
    assert result.rejections == []
    assert_same_flows(result.flows, FlowBatch.concat([a, b]))
    assert result.flows.record_index.tolist() == [0] * 1000 + [2] * 3


def test_records_without_the_initiator_column_are_still_read() -> None:
    # Written before the column existed (flags 0): the same columns, minus the last one.
    flows = random_flows(7, seed=4)
    record = encode_flows(flows)
    n = len(flows)
    old = record[:8] + b"\0\0\0\0" + record[12:16] + record[HEADER_BYTES : len(record) - n]
    old = old[:12] + zlib.crc32(old[HEADER_BYTES:]).to_bytes(4, "little") + old[16:]
    result = FlowColumnsDecoder().decode([old])
    assert result.rejections == []
    assert result.flows.initiator.tolist() == [0] * n
    for name in FLOW_COLUMNS:
        if name not in ("record_index", "initiator"):
            assert np.array_equal(getattr(result.flows, name), getattr(flows, name)), name


def test_the_registry_builds_it() -> None:
    assert get_decoder("beaconwatch-flows").name == "beaconwatch-flows"


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (lambda r: r[:10], "shorter than"),
        (lambda r: b"XXXX" + r[4:], "magic"),
        (lambda r: r[:8] + b"\2\0\0\0" + r[12:], "flags"),
        (lambda r: r[:8] + b"\0\0\0\0" + r[12:], "expected"),  # no initiator flag: too long
        (lambda r: r[:-1], "expected"),
        (lambda r: r + b"\0", "expected"),
        (lambda r: r[:-1] + bytes([r[-1] ^ 1]), "checksum"),
        (lambda r: b"", "shorter than"),
    ],
)
def test_a_damaged_record_is_rejected_and_the_others_kept(damage, detail) -> None:  # type: ignore[no-untyped-def]
    good = random_flows(5, seed=3)
    records = [encode_flows(good), damage(encode_flows(good)), encode_flows(good)]
    result = FlowColumnsDecoder().decode(records)
    assert [(r.record_index, r.reason) for r in result.rejections] == [
        (1, RejectReason.INVALID_FLOW_BATCH)
    ]
    assert detail in result.rejections[0].detail
    assert result.flows.record_index.tolist() == [0] * 5 + [2] * 5
