"""Records written by real collectors (softflowd 1.1.0 -> goflow2 v2.2.6 / nfacctd 1.7.7, see
tests/fixtures/softflowd/SOURCE.md) decode without rejects and carry the pcap's flows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from beaconwatch.decode.registry import get_decoder
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.flows import FLOW_COLUMNS, FlowBatch

FIXTURES = Path(__file__).parent.parent / "fixtures" / "softflowd"
PCAP_START_MS = 1_764_547_200_000  # tests/e2e/pcap_traffic.py DEFAULT_START_EPOCH, seed 1
RECORDS = 40

FILES = {
    "goflow2-v9.bin": "goflow2-pb",
    "goflow2-ipfix.bin": "goflow2-pb",
    "goflow2-v9.jsonl": "goflow2-json",
    "goflow2-ipfix.jsonl": "goflow2-json",
    "pmacct-v9.jsonl": "pmacct-json",
    "pmacct-ipfix.jsonl": "pmacct-json",
}


def _split_delimited(data: bytes) -> list[bytes]:
    """goflow2 -format=bin records back to back: each a varint length and a message."""
    records, i = [], 0
    while i < len(data):
        length, shift, j = 0, 0, i
        while True:
            byte = data[j]
            length |= (byte & 0x7F) << shift
            j, shift = j + 1, shift + 7
            if byte < 0x80:
                break
        records.append(data[i : j + length])
        i = j + length
    return records


def _records(name: str) -> list[bytes]:
    raw = (FIXTURES / name).read_bytes()
    return _split_delimited(raw) if name.endswith(".bin") else raw.splitlines()


def _decode(name: str) -> FlowBatch:
    result = get_decoder(FILES[name]).decode(_records(name))
    assert result.rejections == []
    return result.flows


@pytest.fixture(scope="module")
def flows() -> dict[str, FlowBatch]:
    return {name: _decode(name) for name in FILES}


@pytest.mark.parametrize("name", FILES)
def test_every_record_decodes_to_one_flow(name: str, flows: dict[str, FlowBatch]) -> None:
    assert len(_records(name)) == RECORDS
    batch = flows[name]
    assert len(batch) == RECORDS
    assert set(np.unique(batch.proto).tolist()) == {6, 17}
    # The first flows of the capture: within its first 20 s, ends after starts.
    assert (batch.start_ms >= PCAP_START_MS - 1000).all()
    assert (batch.start_ms < PCAP_START_MS + 20_000).all()
    assert (batch.end_ms >= batch.start_ms).all()
    assert (batch.sampling_rate == 1).all()


@pytest.mark.parametrize("name", FILES)
def test_a_planted_beacon_check_in_and_its_reply_are_two_records(
    name: str, flows: dict[str, FlowBatch]
) -> None:
    """softflowd exports each direction of a connection as its own record, both with the
    connection's start (the client's SYN): 10.20.1.12:34632 -> 203.0.113.45:8443, 5 packets
    and 610 bytes out, 3 packets and 526 bytes back."""
    batch = flows[name]
    client, server = ip_to_halves("10.20.1.12"), ip_to_halves("203.0.113.45")
    to_server = (batch.src_lo == client[1]) & (batch.dst_lo == server[1])
    to_client = (batch.src_lo == server[1]) & (batch.dst_lo == client[1])
    assert np.count_nonzero(to_server) == np.count_nonzero(to_client) == 2  # two check-ins
    out = np.flatnonzero(to_server & (batch.src_port == 34632))
    back = np.flatnonzero(to_client & (batch.dst_port == 34632))
    assert len(out) == len(back) == 1
    o, b = int(out[0]), int(back[0])
    assert (batch.src_port[o], batch.dst_port[o], batch.proto[o]) == (34632, 8443, 6)
    assert (batch.src_port[b], batch.dst_port[b]) == (8443, 34632)
    assert (batch.packets[o], batch.bytes[o], batch.packets[b], batch.bytes[b]) == (5, 610, 3, 526)
    assert batch.start_ms[o] == batch.start_ms[b]


def test_ipfix_times_are_the_pcap_times_to_the_millisecond(flows: dict[str, FlowBatch]) -> None:
    """softflowd -A milli: flowStartMilliseconds. The check-in's SYN is at +0.508 s in the pcap
    (its first packet at 00:00:00.508xxx); goflow2 and nfacctd give the same ms."""
    for name in ("goflow2-ipfix.bin", "goflow2-ipfix.jsonl", "pmacct-ipfix.jsonl"):
        assert flows[name].start_ms[0] == PCAP_START_MS + 508
        assert np.count_nonzero(flows[name].start_ms % 1000) > RECORDS // 2
    np.testing.assert_array_equal(
        flows["pmacct-ipfix.jsonl"].start_ms, flows["goflow2-ipfix.jsonl"].start_ms
    )
    np.testing.assert_array_equal(
        flows["pmacct-ipfix.jsonl"].end_ms, flows["goflow2-ipfix.jsonl"].end_ms
    )


def test_v9_times_via_goflow2_are_milliseconds_39_to_40_ms_early(
    flows: dict[str, FlowBatch],
) -> None:
    """NetFlow v9 (softflowd -a): uptime-relative times rebuilt by goflow2 from the header's
    unix_secs and sysUptime: millisecond resolution, a constant offset of -39/-40 ms here."""
    offset = flows["goflow2-v9.jsonl"].start_ms - flows["goflow2-ipfix.jsonl"].start_ms
    assert set(np.unique(offset).tolist()) <= {-40, -39}


def test_v9_times_via_nfacctd_are_whole_seconds(flows: dict[str, FlowBatch]) -> None:
    """nfacctd writes v9 flow times in whole seconds ("…​.000000"), up to 1 s off."""
    pm = flows["pmacct-v9.jsonl"].start_ms
    assert (pm % 1000 == 0).all()
    assert (np.abs(pm - flows["goflow2-ipfix.jsonl"].start_ms) < 1000).all()


@pytest.mark.parametrize("version", ["v9", "ipfix"])
def test_protobuf_and_json_give_identical_flows(version: str, flows: dict[str, FlowBatch]) -> None:
    """Two goflow2 runs (bin, json) over the same softflowd export of the same pcap."""
    pb, js = flows[f"goflow2-{version}.bin"], flows[f"goflow2-{version}.jsonl"]
    for column in FLOW_COLUMNS:
        np.testing.assert_array_equal(getattr(pb, column), getattr(js, column), err_msg=column)


def test_all_paths_carry_the_same_flows(flows: dict[str, FlowBatch]) -> None:
    reference = flows["goflow2-ipfix.jsonl"]
    for name, batch in flows.items():
        for column in ("src_hi", "src_lo", "dst_hi", "dst_lo", "src_port", "dst_port", "proto",
                       "bytes", "packets"):  # fmt: skip
            np.testing.assert_array_equal(
                getattr(batch, column), getattr(reference, column), err_msg=f"{name} {column}"
            )
