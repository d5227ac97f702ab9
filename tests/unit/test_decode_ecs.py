"""ECS (Filebeat / Elastic Agent NetFlow) decoder: shapes, rejections, batch == reference."""

# ruff: noqa: E501  (rejection tables read best one case per line)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.rows import FlowRow, Problem
from beaconwatch.decode.parsed.ecs_json import EcsJsonDecoder, decode_record
from beaconwatch.decode.registry import get_decoder
from beaconwatch.decode.scan.batch_scan import ROW_COLUMNS
from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder
from beaconwatch.domain.flows import FLOW_COLUMNS
from beaconwatch.domain.rejections import RejectReason

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAME = (FIXTURES / "ecs" / "same_flows.jsonl").read_bytes().splitlines()
GOFLOW2 = (FIXTURES / "goflow2" / "flows.jsonl").read_bytes().splitlines()[:6]
DECODER = EcsJsonDecoder()


def rows(result: DecodeResult) -> dict[int, FlowRow]:
    flows = result.flows
    return {
        int(flows.record_index[k]): FlowRow(*(int(getattr(flows, c)[k]) for c in ROW_COLUMNS))
        for k in range(len(flows))
    }


def check_against_reference(records: list[bytes], decoder: EcsJsonDecoder = DECODER) -> None:
    result = decoder.decode(records)
    got = rows(result)
    rejected = {r.record_index: r for r in result.rejections}
    assert not set(got) & set(rejected)
    assert set(got) | set(rejected) == set(range(len(records)))
    for index, record in enumerate(records):
        expected = decode_record(record, decoder.max_record_bytes)
        if isinstance(expected, Problem):
            assert (rejected[index].reason, rejected[index].detail) == tuple(expected), record
            assert len(rejected[index].detail) <= 120
        else:
            assert got.get(index) == expected, record


def test_registry_builds_this_decoder() -> None:
    assert isinstance(get_decoder("ecs-json"), EcsJsonDecoder)


def test_same_flows_as_goflow2_give_identical_columns() -> None:
    ecs = DECODER.decode(SAME)  # nested (0-3) and dotted (4-5) documents
    goflow2 = Goflow2JsonDecoder(warm_up=False).decode(GOFLOW2)
    assert ecs.rejections == [] and len(ecs.flows) == 6
    for name, dtype in FLOW_COLUMNS.items():
        assert getattr(ecs.flows, name).dtype == np.dtype(dtype)
        assert np.array_equal(getattr(ecs.flows, name), getattr(goflow2.flows, name)), name
    check_against_reference(SAME)


def edit(record: bytes, **changes: Any) -> bytes:
    """Set or delete (DELETE) dotted paths in nested documents."""
    obj = orjson.loads(record)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = obj
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return orjson.dumps(obj)


DELETE = object()
BASE = SAME[2]  # NetFlow v9, event.start/end, TCP 10.1.2.3:49152 -> 203.0.113.7:443
T2 = 1767324721_000


@pytest.mark.parametrize(
    ("record", "reason", "detail_part"),
    [
        (b"\xff" + BASE[1:], RejectReason.INVALID_UTF8, "UTF-8"),
        (BASE[:-1], RejectReason.INVALID_JSON, ""),
        (b"", RejectReason.INVALID_JSON, ""),
        (b'"x"', RejectReason.NOT_AN_OBJECT, "str"),
        (edit(BASE, source__ip=DELETE), RejectReason.MISSING_FIELD, "source.ip"),
        (edit(BASE, destination__ip=None), RejectReason.MISSING_FIELD, "destination.ip"),
        (edit(BASE, network=DELETE, netflow__protocol_identifier=DELETE), RejectReason.MISSING_FIELD, "iana"),
        (edit(BASE, source__bytes=DELETE, network__bytes=DELETE), RejectReason.MISSING_FIELD, "bytes"),
        (edit(BASE, event=DELETE, **{"@timestamp": DELETE}), RejectReason.MISSING_FIELD, "start"),
        (edit(BASE, source__bytes="1500"), RejectReason.INVALID_FIELD, "source.bytes"),
        (edit(BASE, source__bytes=-1), RejectReason.INVALID_FIELD, "source.bytes"),
        (BASE.replace(b'"packets":3,"port"', b'"packets":NaN,"port"'), RejectReason.INVALID_FIELD, "NaN"),
        (edit(BASE, destination__port=70000), RejectReason.INVALID_FIELD, "destination.port"),
        (edit(BASE, network__iana_number="tcp"), RejectReason.INVALID_FIELD, "iana_number"),
        (edit(BASE, network__iana_number=300), RejectReason.INVALID_FIELD, "iana_number"),
        (edit(BASE, network__iana_number=DELETE, netflow__protocol_identifier=DELETE, network__transport="bogus"), RejectReason.INVALID_FIELD, "transport"),
        (edit(BASE, source__ip="10.1.2"), RejectReason.INVALID_ADDRESS, "source.ip"),
        (edit(BASE, destination__ip="2001:db8::1::2"), RejectReason.INVALID_ADDRESS, "destination.ip"),
        (edit(BASE, event__start="02/01/2026 03:32"), RejectReason.INVALID_FIELD, "event.start"),
        (edit(BASE, event__end=1.5), RejectReason.INVALID_FIELD, "event.end"),
    ],
)  # fmt: skip
def test_rejections(record: bytes, reason: str, detail_part: str) -> None:
    result = DECODER.decode([SAME[0], record])
    assert rows(result).keys() == {0}
    [rejection] = result.rejections
    assert (rejection.record_index, rejection.reason) == (1, reason)
    assert detail_part in rejection.detail and len(rejection.detail) <= 120
    check_against_reference([SAME[0], record])


@pytest.mark.parametrize(
    ("record", "field", "value"),
    [
        (edit(BASE, network__iana_number="6"), "proto", 6),  # ECS keyword
        (edit(BASE, network__iana_number=DELETE), "proto", 6),  # netflow.protocol_identifier
        (edit(BASE, network__iana_number=DELETE, netflow__protocol_identifier=DELETE), "proto", 6),
        (
            edit(
                BASE,
                network__iana_number=None,
                netflow__protocol_identifier=DELETE,
                network__transport="unknown (47)",
            ),
            "proto",
            47,
        ),
        (
            edit(
                BASE,
                network__iana_number=DELETE,
                netflow__protocol_identifier=DELETE,
                network__transport="IPv6-ICMP",
            ),
            "proto",
            58,
        ),
        (edit(BASE, source__bytes=DELETE, network__bytes=9000), "bytes", 9000),  # biflow sum
        (edit(BASE, source__bytes=1500, network__bytes=9000), "bytes", 1500),
        (edit(BASE, source__packets=DELETE, network__packets=DELETE), "packets", 1),
        (edit(BASE, netflow__sampling_interval=DELETE), "sampling_rate", 1),
        (
            edit(BASE, netflow__sampling_interval=DELETE, netflow__sampling_packet_interval=10),
            "sampling_rate",
            10,
        ),
        (edit(BASE, destination__port=DELETE), "dst_port", 0),
        (edit(BASE, event__start="2026-01-02T04:32:01.999999999+01:00"), "start_ms", T2 + 999),
        (edit(BASE, event__start=T2 + 5), "start_ms", T2 + 5),  # epoch_millis
        (edit(BASE, event=DELETE), "start_ms", 1767324721_500),  # @timestamp
        (edit(BASE, event__end=DELETE), "end_ms", T2),
        (edit(BASE, event__end="2026-01-02T03:00:00Z"), "end_ms", T2),  # clamped
        (edit(BASE, event__start="1970-01-01T00:00:00Z"), "start_ms", 0),  # passed on
        (edit(BASE, source={"ip": "10.9.9.9"}, **{"source.bytes": 77}), "bytes", 77),  # mixed
        (json.dumps(orjson.loads(BASE), indent=2).encode(), "dst_port", 443),
    ],
)
def test_accepted_variants(record: bytes, field: str, value: int) -> None:
    result = DECODER.decode([record])
    assert result.rejections == []
    assert int(getattr(result.flows, field)[0]) == value
    check_against_reference([record])


def test_oversized_and_empty() -> None:
    decoder = EcsJsonDecoder(max_record_bytes=len(BASE) - 1)
    result = decoder.decode([SAME[0], BASE])
    assert [(r.record_index, r.reason) for r in result.rejections] == [(1, RejectReason.OVERSIZED)]
    assert len(DECODER.decode([]).flows) == 0


VALUES = st.one_of(
    st.integers(-(2**70), 2**70), st.integers(0, 70000), st.floats(), st.booleans(), st.none(),
    st.text(max_size=12), st.dictionaries(st.sampled_from(["ip", "port", "bytes"]), st.integers(0, 9)),
    st.sampled_from(["tcp", "6", "unknown (17)", "::1", "1.2.3.4", "2026-01-02T03:31:56Z",
                     "2026-01-02T03:31:56.5+05:30", "2026-01-02 03:31:56"]),
)  # fmt: skip
PATHS = ["source.ip", "destination.ip", "source.port", "destination.port", "source.bytes",
         "network.bytes", "network.iana_number", "network.transport", "event.start", "event.end",
         "@timestamp", "netflow.flow_start_milliseconds", "netflow.sampling_interval", "source"]  # fmt: skip


@st.composite
def mutated_records(draw: st.DrawFn) -> bytes:
    record = draw(st.sampled_from(SAME))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.integers(0, 4))
        path = draw(st.sampled_from(PATHS))
        try:
            obj = orjson.loads(record)
        except orjson.JSONDecodeError:
            obj = None
        if kind == 0 and isinstance(obj, dict):
            obj[path] = draw(VALUES)  # a dotted key (maybe next to the nested one)
            record = json.dumps(obj).encode()
        elif kind == 1 and isinstance(obj, dict):
            head, _, leaf = path.partition(".")
            node = obj.get(head)
            if isinstance(node, dict) and leaf:
                node[leaf] = draw(VALUES)
            else:
                obj.pop(path, None)
            record = json.dumps(obj).encode()
        elif kind == 2:
            record = record[: draw(st.integers(0, len(record)))]
        elif kind == 3 and record:
            at = draw(st.integers(0, len(record) - 1))
            record = record[:at] + bytes([draw(st.integers(0, 255))]) + record[at + 1 :]
        else:
            at = draw(st.integers(0, len(record)))
            record = record[:at] + draw(st.binary(max_size=4)) + record[at:]
    return record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_records(), min_size=1, max_size=5))
def test_batch_agrees_with_reference_on_mutations(records: list[bytes]) -> None:
    check_against_reference(records)
