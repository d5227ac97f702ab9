"""The decoder contract, for every format in the registry (``decode/registry.py``).

A format's spec names its decoder, and (for the collectors' formats) the encoder ``simulate``
writes it with. Every registered decoder must:

* give back the flows its own encoder wrote (collector formats);
* never raise on hostile input (truncated, garbage, empty, huge, wrong types, missing fields,
  nested junk) and reject every such record exactly once, with a known reason and a short
  detail (it travels as a dead-letter header);
* leave the good records around a bad one as they decode alone.

A new format gets all of this by being registered; its own tests only add what is particular
to it (field rules, fixtures from the real collector, its fast path against its reference).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.rows import DETAIL_MAX
from beaconwatch.decode.flow_columns import encode_flows
from beaconwatch.decode.registry import FORMATS, FormatSpec, get_decoder
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.domain.rejections import RejectReason
from beaconwatch.simulate.encoders import encoder
from beaconwatch.simulate.model import SimFlow
from tests.unit.test_simulate_encoders import VARIED, assert_same_flows, simulated_flows

ENCODED = [spec for spec in FORMATS if spec.encoder is not None]
REASONS = frozenset(v for k, v in vars(RejectReason).items() if k.isupper())
# Flows every format can say: the default Zeek TSV columns have no protocol beyond TCP/UDP/ICMP.
GOOD_FLOWS = [f for f in VARIED if f.proto in ("TCP", "UDP", "ICMP")]


def _column_records(flows: Sequence[SimFlow]) -> list[bytes]:
    """``beaconwatch-flows`` has no simulator encoder: its records are columns of decoded flows."""
    decoded = get_decoder("goflow2-json").decode(encoder("goflow2-json")(flows)).flows
    return [encode_flows(decoded.take(np.arange(i, i + 1))) for i in range(len(decoded))]


def _mixed_records(flows: Sequence[SimFlow]) -> list[bytes]:
    """``auto`` reads any collector format: a flow in each, in turn."""
    return [encoder(ENCODED[i % len(ENCODED)].name)([flow])[0] for i, flow in enumerate(flows)]


GOOD: dict[str, Callable[[Sequence[SimFlow]], list[bytes]]] = {
    "auto": _mixed_records,
    "beaconwatch-flows": _column_records,
}


def good_records(spec: FormatSpec) -> list[bytes]:
    if spec.encoder is not None:
        return encoder(spec.name)(GOOD_FLOWS)
    return GOOD[spec.name](GOOD_FLOWS)


def test_every_registered_format_has_good_records_here() -> None:
    """A format without an encoder must say here how its good records are made."""
    assert {spec.name for spec in FORMATS if spec.encoder is None} == set(GOOD)


# -- round trip -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ENCODED, ids=lambda spec: spec.name)
def test_decodes_its_own_encoders_flows(spec: FormatSpec) -> None:
    flows = simulated_flows()
    assert len(flows) > 500
    assert spec.encoder is not None
    result = spec.build().decode(encoder(spec.name)(flows))
    assert result.rejections == []
    assert list(result.flows.record_index) == list(range(len(flows)))
    assert_same_flows(result.flows, flows)


# -- hostile input --------------------------------------------------------------------------------


def _leaves(value: Any, leaf: Any) -> Any:
    if isinstance(value, dict):
        return {k: _leaves(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [_leaves(v, leaf) for v in value]
    return leaf


def _shape(record: bytes) -> str:
    if record.lstrip()[:1] == b"{":
        return "json"
    try:
        return "tsv" if b"\t" in record and record.decode("ascii") else "binary"
    except UnicodeDecodeError:
        return "binary"


def _wrong_types(record: bytes) -> bytes:
    """Every value of the record of a type no field has, in the record's own syntax."""
    shape = _shape(record)
    if shape == "json":
        return orjson.dumps(_leaves(orjson.loads(record), [[True]]))
    if shape == "tsv":
        return b"\t".join(b"[]" for _ in record.split(b"\t"))
    return record[:1] + b"\xff" * (len(record) - 1)  # every varint runs on


def _missing_fields(record: bytes) -> bytes:
    shape = _shape(record)
    if shape == "json":
        return b"{}"
    if shape == "tsv":
        return record.split(b"\t")[0]
    return b"\x00"  # a length prefix of an empty message


HOSTILE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda r: r[: len(r) // 2],
    "empty": lambda r: b"",
    "garbage": lambda r: b"\x00\xff\xfe garbage \x80\x81" * 3,
    "invalid-utf8": lambda r: b"\xc3\x28" + r,
    "huge": lambda r: r + b" " * (4 << 20),
    "wrong-types": _wrong_types,
    "missing-fields": _missing_fields,
    # Below every decoder's default size limit, so that its parser meets the nesting.
    "nested-junk": lambda r: b'{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    "deep-object": lambda r: b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
}


def assert_contract(result: DecodeResult, n: int) -> tuple[set[int], set[int]]:
    """Every record is decoded or rejected (exactly once, with a known reason and a short
    detail), never both; flows come in record order."""
    decoded = set(result.flows.record_index.tolist())
    rejected = [r.record_index for r in result.rejections]
    assert len(set(rejected)) == len(rejected), "a record rejected twice"
    assert not decoded & set(rejected), "a record both decoded and rejected"
    assert decoded | set(rejected) == set(range(n)), "a record neither decoded nor rejected"
    for r in result.rejections:
        assert r.reason in REASONS, r
        assert isinstance(r.detail, str) and 0 < len(r.detail) <= DETAIL_MAX, r
    assert (np.diff(result.flows.record_index) >= 0).all()
    return decoded, set(rejected)


def flows_of(result: DecodeResult, index: int) -> FlowBatch:
    rows = np.flatnonzero(result.flows.record_index == index)
    return result.flows.take(rows)


def assert_same(a: FlowBatch, b: FlowBatch) -> None:
    for name in a.__dataclass_fields__:
        if name != "record_index":
            assert np.array_equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("spec", FORMATS, ids=lambda spec: spec.name)
def test_hostile_record_is_rejected_and_its_neighbours_survive(spec: FormatSpec, kind: str) -> None:
    decoder = spec.build()
    good = good_records(spec)
    alone = decoder.decode(good)
    assert alone.rejections == [] and len(alone.flows) >= len(good)
    bad = HOSTILE[kind](good[0])
    records = [good[0], bad, good[1], bad, good[2]]
    result = decoder.decode(records)
    _, rejected = assert_contract(result, len(records))
    assert rejected == {1, 3}, [(r.record_index, r.reason, r.detail) for r in result.rejections]
    for at, index in ((0, 0), (2, 1), (4, 2)):
        assert_same(flows_of(result, at), flows_of(alone, index))


@st.composite
def hostile_mix(draw: st.DrawFn, good: list[bytes]) -> list[bytes]:
    """Good records, some of them cut, bit-flipped or replaced by random bytes."""
    out = []
    for _ in range(draw(st.integers(1, 8))):
        record = draw(st.sampled_from(good))
        kind = draw(st.integers(0, 3))
        if kind == 1:
            record = draw(st.binary(max_size=120))
        elif kind == 2:
            record = record[: draw(st.integers(0, len(record)))]
        elif kind == 3 and record:
            at = draw(st.integers(0, len(record) - 1))
            record = record[:at] + draw(st.binary(min_size=1, max_size=4)) + record[at + 1 :]
        out.append(record)
    return out


@pytest.mark.parametrize("spec", FORMATS, ids=lambda spec: spec.name)
def test_hostile_mixes_never_raise_and_good_records_decode_as_alone(spec: FormatSpec) -> None:
    decoder = spec.build()
    good = good_records(spec)
    alone = {record: decoder.decode([record]).flows for record in good}

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(hostile_mix(good))
    def check(records: list[bytes]) -> None:
        result = decoder.decode(records)
        decoded, _ = assert_contract(result, len(records))
        for index, record in enumerate(records):
            if record in alone:
                assert index in decoded
                assert_same(flows_of(result, index), alone[record])

    check()
