"""The flow's name in goflow2 records (`decode.scan.goflow2_names`): the ``server_name`` field
a goflow2 mapping file adds (config/goflow2-names.yaml), as goflow2 v2.2.6 writes it: hex in
JSON, raw bytes in protobuf field 1000 (shapes seen from the real goflow2 in
tests/e2e/test_ipfix_names.py). A bad name gives no name and never rejects the flow."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder
from beaconwatch.decode.scan.goflow2_names import NAME_FIELD, name_of_hex
from beaconwatch.decode.scan.goflow2_pb_record import encode_varint
from beaconwatch.domain.names import name_hash
from tests.unit.test_decode_goflow2_pb import BASE, DECODER, body, rewrap, tag

FIXTURES = Path(__file__).parent.parent / "fixtures" / "goflow2"
JSON = [line for line in (FIXTURES / "flows.jsonl").read_bytes().splitlines() if line]
JSON_DECODER = Goflow2JsonDecoder()


def named_json(name_hex: str, record: bytes = JSON[1]) -> bytes:
    """``record`` with the key goflow2 writes last, after the default fields."""
    return record[:-1] + b',"server_name":"' + name_hex.encode() + b'"}'


def named_pb(raw: bytes, record: bytes = BASE) -> bytes:
    return rewrap(body(record) + tag(NAME_FIELD, 2) + encode_varint(len(raw)) + raw)


def names(result: DecodeResult) -> list[str | None]:
    """Each flow's name text, None where it has none, by row."""
    flows = result.flows
    return [flows.names.get(h) if h else None for h in flows.name_hash.tolist()]


def test_json_name_is_read_from_the_hex_goflow2_writes() -> None:
    records = [named_json(b"C2.Example.NET.".hex()), JSON[0], named_json(b"a.example".hex())]
    result = JSON_DECODER.decode(records)
    assert result.rejections == []
    assert names(result) == ["c2.example.net", None, "a.example"]
    assert result.flows.name_hash[0] == name_hash("c2.example.net")
    # Everything else decodes as without the name.
    plain = JSON_DECODER.decode([JSON[1], JSON[0], JSON[1]]).flows
    assert (result.flows.start_ms == plain.start_ms).all()
    assert (result.flows.dst_lo == plain.dst_lo).all()


def test_an_http_host_loses_its_port_and_the_last_key_counts() -> None:
    host = named_json(b"updates.example.com:8080".hex())
    twice = named_json(b"second.example".hex(), named_json(b"first.example".hex()))
    assert names(JSON_DECODER.decode([host, twice])) == ["updates.example.com", "second.example"]


BAD_NAMES = [
    "",  # goflow2's value for a flow without the element (or an empty one)
    "616",  # odd length
    "fffe61",  # not UTF-8
    b"23.1.2.3".hex(),  # an IP literal
    b"[2001:db8::1]:443".hex(),
    b"a b.example".hex(),  # a space
    b"x\x01.example".hex(),  # a control character
    (b"x" * 254).hex(),  # longer than a name
    "61" * 1100,  # longer than the scanner looks
    "zz",  # not hex at all
]


@pytest.mark.parametrize("value", BAD_NAMES)
def test_json_bad_names_give_no_name_and_keep_the_flow(value: str) -> None:
    result = JSON_DECODER.decode([named_json(value), JSON[0]])
    assert result.rejections == [] and len(result.flows) == 2
    assert names(result) == [None, None]


def test_json_key_inside_a_string_nested_or_of_another_type_is_no_name() -> None:
    doc = orjson.loads(JSON[1])
    doc["type"] = 'IPFIX","server_name":"6162'  # escaped inside the string
    in_string = orjson.dumps(doc)
    number = JSON[1][:-1] + b',"server_name":6162}'
    nested = JSON[1][:-1] + b',"x":{"server_name":"6162"}}'  # not the record's own key
    spaced = JSON[1][:-1] + b', "server_name" : "6364"}'  # valid JSON: read as any key
    result = JSON_DECODER.decode([in_string, number, nested, spaced])
    assert result.rejections == [] and len(result.flows) == 4
    assert names(result) == [None, None, None, "cd"]


def test_json_reference_path_rows_are_named_too() -> None:
    """A record the scanner leaves to the reference path (an escape in a string)."""
    doc = orjson.loads(JSON[1])
    doc["type"] = "IPFIX\u00e9"
    slow = orjson.dumps(doc)
    record = named_json(b"slow.example".hex(), slow)
    number = slow[:-1] + b',"server_name":6162}'
    accent = slow[:-1] + rb',"server_name":"61\u00e9"}'
    bad_hex = named_json("6", slow)
    result = JSON_DECODER.decode([record, number, accent, bad_hex, slow])
    assert result.rejections == []
    assert names(result) == ["slow.example", None, None, None, None]


def test_pb_name_is_read_from_field_1000() -> None:
    records = [named_pb(b"C2.Example.net"), BASE, named_pb(b"x.example:443")]
    result = DECODER.decode(records)
    assert result.rejections == []
    assert names(result) == ["c2.example.net", None, "x.example"]
    last = named_pb(b"second.example", named_pb(b"first.example"))
    assert names(DECODER.decode([last])) == ["second.example"]


def test_pb_reference_path_rows_are_named_too() -> None:
    """A group makes the wire scanner leave the record to the protobuf runtime."""
    group = tag(40, 3) + tag(1, 0) + b"\x01" + tag(40, 4)
    record = named_pb(b"slow.example", rewrap(body(BASE) + group))
    result = DECODER.decode([record, BASE])
    assert result.rejections == [] and names(result) == ["slow.example", None]


@pytest.mark.parametrize(
    "raw", [b"", b"\xff\xfe", b"23.1.2.3", b"a b", b"x" * 300, b"\x00", b'a"b\\c\n']
)
def test_pb_bad_names_give_no_name_and_keep_the_flow(raw: bytes) -> None:
    result = DECODER.decode([named_pb(raw), BASE])
    assert result.rejections == [] and names(result) == [None, None]


def test_pb_name_field_of_another_wire_type_is_ignored() -> None:
    record = rewrap(body(BASE) + tag(NAME_FIELD, 0) + encode_varint(7))
    result = DECODER.decode([record])
    assert result.rejections == [] and names(result) == [None]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_name_bytes_never_reject_or_raise(raw: bytes) -> None:
    json_result = JSON_DECODER.decode([named_json(raw.hex())])
    pb_result = DECODER.decode([named_pb(raw)])
    assert json_result.rejections == [] and pb_result.rejections == []
    # Both formats agree on the name, and it is the one `name_of_hex` gives.
    expected = name_of_hex(raw.hex().encode())[1]
    assert names(json_result) == names(pb_result) == [expected]
