"""goflow2 protobuf decoder, property tests: random valid messages, hostile wire data, and the
numba varint reader against its plain-Python twin."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beaconwatch.decode.common.rows import FlowRow
from beaconwatch.decode.scan.goflow2_pb import delimited
from beaconwatch.decode.scan.goflow2_pb_record import decode_record, encode_varint, read_varint
from beaconwatch.decode.scan.goflow2_pb_schema import FIELDS
from beaconwatch.decode.scan.pb_wire import OK
from beaconwatch.decode.scan.pb_wire import read_varint as fast_read_varint

from .test_decode_goflow2_pb import (
    BASE,
    DECODER,
    RECORDS,
    FlowMessage,
    check_against_reference,
    fast_status,
    rows,
)

U64 = st.one_of(
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**20),
    st.sampled_from([0, 1, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63]),
)
U32 = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 6, 17, 255, 256, 65535, 65536]))
TIMES_NS = st.one_of(
    st.just(0), st.integers(1_700_000_000 * 10**9, 1_800_000_000 * 10**9), U64
)  # realistic, far past/future, and beyond int64
ADDRESS = st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16),
                    st.binary(max_size=20))  # fmt: skip
TIME_FIELDS = {"time_received_ns", "time_flow_start_ns", "time_flow_end_ns"}


def _value_strategy(kind: str, name: str) -> st.SearchStrategy[Any]:
    if name in TIME_FIELDS:
        return TIMES_NS
    if name in ("src_addr", "dst_addr"):
        return ADDRESS
    if name == "proto":  # TCP often, so that tcp_flags decide the initiator
        return st.one_of(st.sampled_from([6, 17]), U32)
    if name == "tcp_flags":
        return st.one_of(st.integers(0, 0x3F), U32)
    if kind == "bytes":
        return st.binary(max_size=20)
    if kind == "uint64":
        return U64
    if kind.startswith("enum:"):
        return st.integers(0, 20)
    return U32


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in FIELDS:
        if not draw(st.integers(0, 9)):  # most fields set, some left out
            continue
        strategy = _value_strategy(field.type, field.name)
        values[field.name] = draw(st.lists(strategy, max_size=3) if field.repeated else strategy)
    return values


def expected_row(values: dict[str, Any]) -> FlowRow | None:
    """The flow goflow2's field rules give for the message, written out independently."""
    get = values.get
    start, end, received = (
        get(f"time_{name}_ns", 0) for name in ("flow_start", "flow_end", "received")
    )
    src, dst = get("src_addr", b""), get("dst_addr", b"")
    if max(start, end, received) >= 2**63 or len(src) not in (4, 16) or len(dst) not in (4, 16):
        return None
    numbers = [get(n, 0) for n in ("proto", "src_port", "dst_port", "bytes", "packets")]
    proto, src_port, dst_port, nbytes, packets = numbers
    rate = get("sampling_rate", 0)
    if proto > 255 or src_port > 65535 or dst_port > 65535 or rate >= 2**32:
        return None
    if nbytes >= 2**63 or packets >= 2**63 or (start or received) == 0:
        return None

    def halves(raw: bytes) -> tuple[int, int]:
        value = int.from_bytes(raw, "big") | (0xFFFF_0000_0000 if len(raw) == 4 else 0)
        return value >> 64, value & (2**64 - 1)

    start_ms = (start or received) // 10**6
    end_ms = max(end // 10**6, start_ms) if end else start_ms
    syn_only = proto == 6 and get("tcp_flags", 0) & 0x12 == 0x02  # SYN (0x02) without ACK (0x10)
    return FlowRow(start_ms, end_ms, *halves(src), *halves(dst), src_port, dst_port, proto,
                   nbytes, packets, rate, 1 if syn_only else 0)  # fmt: skip


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages(), min_size=1, max_size=4))
def test_random_valid_messages(batch: list[dict[str, Any]]) -> None:
    records = [delimited(FlowMessage(**values).SerializeToString()) for values in batch]
    check_against_reference(records)
    got = rows(DECODER.decode(records))
    status = fast_status(records)
    for index, values in enumerate(batch):
        expected = expected_row(values)
        assert got.get(index) == expected
        # Canonical encodings the rules accept never need the slow path.
        assert (status[index] == OK) == (expected is not None)


WIRE_TAILS = st.one_of(
    st.binary(max_size=12),
    st.tuples(st.integers(0, 2**32), st.integers(0, 7), st.binary(max_size=10)).map(
        lambda t: encode_varint(t[0] << 3 | t[1]) + t[2]
    ),
    st.tuples(st.sampled_from([f.number for f in FIELDS] + [0, 2, 5, 127, 128, 19000, 2**29 - 1]),
              st.integers(0, 5), st.integers(0, 2**64 - 1)).map(
        lambda t: encode_varint(t[0] << 3 | t[1]) + encode_varint(t[2])
    ),
)  # fmt: skip


@st.composite
def hostile_records(draw: st.DrawFn) -> bytes:
    record = draw(st.sampled_from([*RECORDS, BASE]))
    for _ in range(draw(st.integers(1, 3))):
        prefix = read_varint(record, 0)
        message = record[prefix[1] :] if prefix else record
        kind = draw(st.integers(0, 5))
        if kind == 0:  # append fields (known and unknown numbers, any wire type), re-prefix
            record = delimited(message + draw(WIRE_TAILS))
        elif kind == 1:  # insert fields in the middle, re-prefix
            at = draw(st.integers(0, len(message)))
            record = delimited(message[:at] + draw(WIRE_TAILS) + message[at:])
        elif kind == 2:  # truncate (keeps the old prefix)
            record = record[: draw(st.integers(0, len(record)))]
        elif kind == 3 and record:  # flip a byte, maybe re-prefix
            at = draw(st.integers(0, len(record) - 1))
            record = record[:at] + bytes([draw(st.integers(0, 255))]) + record[at + 1 :]
            if draw(st.booleans()) and (prefix := read_varint(record, 0)):
                record = delimited(record[prefix[1] :])
        elif kind == 4:  # a wrong length prefix
            record = encode_varint(draw(st.integers(0, 2**64 - 1))) + message
        else:  # random bytes as the message
            record = delimited(draw(st.binary(max_size=40)))
    return record


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_records(), min_size=1, max_size=5))
def test_hostile_wire_data_agrees_with_reference(records: list[bytes]) -> None:
    check_against_reference(records)


def test_reference_is_total_on_deep_groups() -> None:
    deep = delimited(encode_varint(40 << 3 | 3) * 200_000)
    assert isinstance(decode_record(deep, 10**7, FlowMessage).reason, str)  # type: ignore[union-attr]
    check_against_reference([deep, delimited(b"\x08" * 1000)])


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=14), st.integers(0, 14))
def test_numba_varint_reader_matches_python_twin(data: bytes, cut: int) -> None:
    """``pb_wire.read_varint`` vs the plain reference reader (which masks to 64 bits): same
    value where the numba one accepts; it refuses only what the reference refuses or what
    carries bits beyond 64 in a 10th byte (left to the protobuf runtime)."""
    end = min(cut, len(data))
    value, next_pos = fast_read_varint(np.frombuffer(data, dtype=np.uint8), 0, end)
    reference = read_varint(data[:end], 0)
    if next_pos >= 0:
        assert reference == (int(value), next_pos)
    else:
        assert reference is None or (reference[1] == 10 and data[9] > 1)
