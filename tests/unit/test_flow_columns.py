"""The internal topic's record format: many flows per record, read back exactly, damage caught."""

from __future__ import annotations

import dataclasses
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
from beaconwatch.domain.names import name_hash
from beaconwatch.domain.rejections import RejectReason


def random_flows(n: int, seed: int = 0) -> FlowBatch:
    rng = np.random.default_rng(seed)
    columns = {}
    for name, dtype in FLOW_COLUMNS.items():
        info = np.iinfo(dtype)
        columns[name] = rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)
    columns["name_hash"] = np.zeros(n, dtype=np.uint64)  # no names: `named_flows` has them
    columns["annotation"] = np.zeros(n, dtype=np.uint8)
    return FlowBatch(**columns)


NAMES = ["c2.example.com", "cdn.example.net", "xn--bcher-kva.example", "bücher.example"]


def named_flows(n: int, seed: int = 0) -> FlowBatch:
    """``random_flows`` where most flows have one of `NAMES` (and some none)."""
    flows = random_flows(n, seed)
    rng = np.random.default_rng(seed)
    hashes = [0] + [name_hash(name) for name in NAMES]
    picked = rng.integers(0, len(hashes), size=n)
    column = np.array(hashes, dtype=np.uint64)[picked]
    names = dict(zip(hashes[1:], NAMES, strict=True))
    # Some named rows are annotations (Zeek ssl/http records), not connections.
    annotation = ((picked > 0) & (rng.random(n) < 0.2)).astype(np.uint8)
    return dataclasses.replace(flows, name_hash=column, names=names, annotation=annotation)


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


def test_names_round_trip_with_their_texts() -> None:
    a, b = named_flows(500, seed=5), random_flows(4, seed=6)
    records = [encode_flows(a), encode_flows(b)]
    # Unnamed flows are written as before (older readers read them); named ones carry the
    # hash column and each text once.
    assert len(records[1]) == HEADER_BYTES + 4 * BYTES_PER_FLOW
    assert len(records[0]) > HEADER_BYTES + 500 * (BYTES_PER_FLOW + 8)
    result = FlowColumnsDecoder().decode(records)
    assert result.rejections == []
    assert_same_flows(result.flows, FlowBatch.concat([a, b]))
    used = set(a.name_hash.tolist()) - {0}
    assert {h: result.flows.names[h] for h in used} == {h: a.names[h] for h in used}
    assert len(used) == len(NAMES)


def _set_annotation(record: bytes, n: int, value: int) -> bytes:
    """The record of ``n`` flows with its first annotation flag set to ``value``."""
    at = HEADER_BYTES + n * (BYTES_PER_FLOW + 8)  # behind the columns and the hash column
    return record[:at] + bytes([value]) + record[at + 1 :]


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (lambda r: r[:-1], "cut short"),
        (lambda r: r + b"\0", "after the names section"),
        (lambda r: r.replace(b"c2.example.com", b"C2.example.com"), "not normalised"),
        (lambda r: r.replace("bücher".encode(), b"b\xff\xfecher"), "not UTF-8"),
        (lambda r: r[:8] + b"\2\0\0\0" + r[12:], "flags"),  # names without the initiator
        (lambda r: _set_annotation(r, 60, 7), "annotation"),  # a flag other than 0/1
    ],
)
def test_a_damaged_names_section_is_rejected(damage, detail) -> None:  # type: ignore[no-untyped-def]
    def resealed(record: bytes) -> bytes:  # a valid checksum, so the section check decides
        body = record[HEADER_BYTES:]
        return record[:12] + zlib.crc32(body).to_bytes(4, "little") + body

    good = named_flows(60, seed=7)  # every name of NAMES
    records = [encode_flows(good), resealed(damage(encode_flows(good)))]
    result = FlowColumnsDecoder().decode(records)
    assert [(r.record_index, r.reason) for r in result.rejections] == [
        (1, RejectReason.INVALID_FLOW_BATCH)
    ]
    assert detail in result.rejections[0].detail, result.rejections[0].detail


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
