"""``auto``: per-record format sniffing, dispatch to the registered decoders, merged results."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from beaconwatch.decode.auto import UNKNOWN_FORMAT, AutoDecoder, sniff_file
from beaconwatch.decode.base import Decoder, DecodeResult
from beaconwatch.decode.registry import FORMAT_NAMES, get_decoder, sniff_record
from beaconwatch.domain.flows import FLOW_COLUMNS
from beaconwatch.domain.rejections import RejectReason

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _pb_records(path: Path) -> list[bytes]:
    """Split a file of varint-length-delimited messages into one record per message."""
    data, out, i = path.read_bytes(), [], 0
    while i < len(data):
        length, shift, start = 0, 0, i
        while True:
            byte = data[i]
            length |= (byte & 0x7F) << shift
            shift += 7
            i += 1
            if byte < 0x80:
                break
        out.append(data[start : i + length])
        i += length
    return out


def _lines(rel: str) -> list[bytes]:
    return [x for x in (FIXTURES / rel).read_bytes().splitlines() if x.strip()]


SAMPLES: dict[str, list[bytes]] = {
    "goflow2-json": _lines("goflow2/flows.jsonl")[:4],
    "goflow2-pb": _pb_records(FIXTURES / "goflow2" / "flows.bin")[:4],
    "zeek-json": _lines("zeek/conn.json"),
    "zeek-tsv": [b"\t".join(x.split(b"\t")[:21]) for x in _lines("zeek/conn.log")[8:12]],
    "pmacct-json": _lines("pmacct/same_flows.jsonl")[:4],
    "ecs-json": _lines("ecs/same_flows.jsonl")[:4],
}


def test_every_format_is_registered_and_samples_are_sniffed_right() -> None:
    assert set(SAMPLES) | {"auto"} <= set(FORMAT_NAMES)
    for name, records in SAMPLES.items():
        assert records, name
        assert {sniff_record(r) for r in records} == {name}, name


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (b'{"id":{"orig_h":"10.0.0.1"},"ts":1}', "zeek-json"),
        (b'{"conn":{"id.orig_h":"10.0.0.1"}}', "zeek-json"),
        (b'  {"source":{"ip":"10.0.0.1"}}', "ecs-json"),
        (b'{"@timestamp":"x","event":{"original":"{\\"id.orig_h\\":1}"}}', "ecs-json"),
        (b'{"a":1}', "json"),
        (b"[1,2]", "json"),
        (b"hello world", "unknown"),
        (b"", "unknown"),
        (b"\x05\x08\x01\x10\x02\x18", "goflow2-pb"),  # length 5, then 5 bytes from a tag
        (b"\x07\x08\x01\x10\x02\x18", "unknown"),  # length 7 but only 5 bytes follow
        (b"\x05\x07\x01\x10\x02\x18", "unknown"),  # wire type 7 does not exist
        (b"1540469303.5\tCx\t10.0.0.1", "zeek-tsv"),
        # 50 bytes that are also a protobuf frame ("1" = length 49, "5" = a fixed32 tag):
        # the registry's order puts zeek-tsv first.
        (b"1500000000.000000\t".ljust(50, b"x"), "zeek-tsv"),
        (b"#separator \\x09", "unknown"),
    ],
)
def test_sniff_record(record: bytes, expected: str) -> None:
    assert sniff_record(record) == expected


def test_sniff_file() -> None:
    assert sniff_file(b"#separator \\x09") == "zeek-tsv"
    assert sniff_file(b"ts,uid,id.orig_h,id.orig_p,id.resp_h,id.resp_p,proto") == "zeek-tsv"
    assert sniff_file(b"ts\tuid\tid.orig_h\tid.orig_p") == "zeek-tsv"
    assert sniff_file(SAMPLES["zeek-json"][0]) is None
    assert sniff_file(SAMPLES["goflow2-json"][0]) is None


def _rows(result: DecodeResult) -> dict[int, tuple[int, ...]]:
    f = result.flows
    cols = [c for c in FLOW_COLUMNS if c != "record_index"]
    return {
        int(f.record_index[k]): tuple(int(getattr(f, c)[k]) for c in cols) for k in range(len(f))
    }


AUTO = get_decoder("auto")
DIRECT: dict[str, Decoder] = {name: get_decoder(name) for name in SAMPLES}


def _expected(
    records: Sequence[tuple[str, bytes]],
) -> tuple[dict[int, tuple[int, ...]], dict[int, str]]:
    """What each format's own decoder says about each record, indexed by position."""
    rows: dict[int, tuple[int, ...]] = {}
    reasons: dict[int, str] = {}
    for name in SAMPLES:
        positions = [i for i, (n, _) in enumerate(records) if n == name]
        if not positions:
            continue
        result = DIRECT[name].decode([records[i][1] for i in positions])
        rows.update({positions[k]: row for k, row in _rows(result).items()})
        reasons.update({positions[r.record_index]: r.reason for r in result.rejections})
    return rows, reasons


def test_mixed_batch_equals_each_decoder_on_its_own_records() -> None:
    rng = random.Random(3)
    records = [(name, r) for name, rs in SAMPLES.items() for r in rs]
    records += [("garbage", b"hello"), ("garbage", b"{nope"), ("garbage", b'{"a":1}')]
    rng.shuffle(records)
    result = AUTO.decode([r for _, r in records])
    rows, reasons = _expected(records)
    assert _rows(result) == rows
    assert list(result.flows.record_index) == sorted(rows)  # input order
    got = {r.record_index: r.reason for r in result.rejections}
    garbage = {i: r for i, (n, r) in enumerate(records) if n == "garbage"}
    assert {i: got[i] for i in garbage} == {
        i: {b"hello": UNKNOWN_FORMAT, b"{nope": RejectReason.INVALID_JSON,
            b'{"a":1}': UNKNOWN_FORMAT}[r]
        for i, r in garbage.items()
    }  # fmt: skip
    assert {i: reason for i, reason in got.items() if i not in garbage} == reasons
    assert [r.record_index for r in result.rejections] == sorted(got)


def test_formats_without_a_decoder_are_rejected_as_unknown() -> None:
    only_zeek = AutoDecoder(sniff_record, get_decoder, ["zeek-json"])
    records = [SAMPLES["goflow2-json"][0], SAMPLES["zeek-json"][0], b"[1]", b"\xff\xfe"]
    result = only_zeek.decode(records)
    assert list(result.flows.record_index) == [1]
    assert [(r.record_index, r.reason) for r in result.rejections] == [
        (0, UNKNOWN_FORMAT), (2, RejectReason.NOT_AN_OBJECT), (3, UNKNOWN_FORMAT),
    ]  # fmt: skip
    assert "goflow2-json" in result.rejections[0].detail
    assert AUTO.decode([]).flows.record_index.size == 0
