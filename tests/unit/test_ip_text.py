"""IP text kernels against Python's ipaddress module."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaconwatch.decode.common.ip_text import parse_ip_many, parse_ip_text
from beaconwatch.domain.addresses import ip_to_halves


def reference(text: str) -> tuple[int, int] | None:
    """ipaddress, minus the documented differences: zone ids are rejected."""
    if "%" in text:
        return None
    try:
        return ip_to_halves(text)
    except ValueError:
        return None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", (0, 0xFFFF_0A00_0001)),
        ("0.0.0.0", (0, 0xFFFF_0000_0000)),
        ("255.255.255.255", (0, 0xFFFF_FFFF_FFFF)),
        ("::", (0, 0)),
        ("::1", (0, 1)),
        ("2001:db8::1", (0x2001_0DB8_0000_0000, 1)),
        ("::ffff:1.2.3.4", (0, 0xFFFF_0102_0304)),  # same halves as "1.2.3.4"
        ("1::", (0x0001_0000_0000_0000, 0)),
        ("1:2:3:4:5:6:7:8", (0x0001_0002_0003_0004, 0x0005_0006_0007_0008)),
        ("ABCD:EF01::", (0xABCD_EF01_0000_0000, 0)),
        ("0db8::0001", (0x0DB8_0000_0000_0000, 1)),  # leading zeros inside a hex group: fine
        ("1:2:3:4:5:6:1.2.3.4", (0x0001_0002_0003_0004, 0x0005_0006_0102_0304)),
    ],
)
def test_known_addresses(text: str, expected: tuple[int, int]) -> None:
    assert parse_ip_text(text) == expected
    assert reference(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "", "1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.04", "1.2.3.4 ", " 1.2.3.4",
        "1..2.3", "1.2.3.", "-1.2.3.4", "1.2.3.4/24", ":", ":::", "1:::2", "1::2::3", ":1::",
        "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8", "12345::", "1:2:3:4:5:6:7:", "g::",
        "fe80::1%eth0", "[::1]", "::ffff:01.2.3.4", "::1.2.3", "1.2.3.4::", "::1.2.3.4:5",
        "1:2:3:4:5:6:7:1.2.3.4", "١.٢.٣.٤", "x" * 60,
    ],
)  # fmt: skip
def test_malformed_addresses_rejected(text: str) -> None:
    assert parse_ip_text(text) is None
    assert reference(text) is None or "%" in text


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_ipv4(value: int) -> None:
    text = str(ipaddress.IPv4Address(value))
    assert parse_ip_text(text) == (0, 0xFFFF_0000_0000 | value)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**128 - 1), st.sampled_from(["compressed", "exploded", "upper"]))
def test_random_ipv6(value: int, form: str) -> None:
    addr = ipaddress.IPv6Address(value)
    text = addr.exploded if form == "exploded" else addr.compressed
    if form == "upper":
        text = text.upper()
    assert parse_ip_text(text) == (value >> 64, value & (2**64 - 1))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8),
    st.integers(0, 8),
    st.integers(0, 8),
)
def test_random_zero_runs(groups: list[int], run_start: int, run_len: int) -> None:
    """Zero runs in every position, compressed by ipaddress, and the embedded-IPv4 form."""
    for k in range(run_start, min(8, run_start + run_len)):
        groups[k] = 0
    value = int("".join(f"{g:04x}" for g in groups), 16)
    addr = ipaddress.IPv6Address(value)
    expected = (value >> 64, value & (2**64 - 1))
    assert parse_ip_text(addr.compressed) == expected
    embedded = (
        ":".join(f"{g:x}" for g in groups[:6])
        + ":"
        + str(ipaddress.IPv4Address(value & 0xFFFF_FFFF))
    )
    assert parse_ip_text(embedded) == expected


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEFg:.%/ []-x", max_size=48))
def test_random_text_agrees_with_ipaddress(text: str) -> None:
    assert parse_ip_text(text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=50))
def test_random_bytes_never_crash(raw: bytes) -> None:
    result = parse_ip_text(raw)
    if result is not None:
        assert result == reference(raw.decode("ascii"))


def test_batch_kernel_matches_single() -> None:
    texts = ["10.0.0.1", "bad", "2001:db8::1", "", "::ffff:1.2.3.4", "1.2.3.256"]
    raw = [t.encode() for t in texts]
    lengths = np.array([len(r) for r in raw], dtype=np.int64)
    ends = np.cumsum(lengths)
    ok, hi, lo = parse_ip_many(np.frombuffer(b"".join(raw), dtype=np.uint8), ends - lengths, ends)
    for k, text in enumerate(texts):
        expected = parse_ip_text(text)
        assert bool(ok[k]) == (expected is not None)
        assert (int(hi[k]), int(lo[k])) == (expected or (0, 0))
