"""The JSON token helpers' word-at-a-time string scan equals the byte-at-a-time rule."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.decode.scan.json_tokens import _STRING_CLASS, ENDED, string_end
from beaconwatch.decode.scan.raw_pointer import u8_pointer


@njit(cache=False)
def _string_end(buf: npt.NDArray[np.uint8], end: int) -> int:
    return string_end(u8_pointer(buf.ctypes.data), 0, end)  # type: ignore[no-any-return]


def reference_string_end(buf: bytes, end: int) -> int:
    """Byte by byte: past the first closing quote, -1 at any other non-plain byte."""
    for i in range(1, end):
        kind = _STRING_CLASS[buf[i]]
        if kind == 1:
            return i + 1
        if kind == 2:
            return -1
    return ENDED


def test_every_byte_at_every_lane_of_a_string() -> None:
    """One unusual byte at each offset of the first two words, with plain bytes, a closing
    quote or another unusual byte after it, and the string cut at every length."""
    for offset in range(1, 18):
        for byte in range(256):
            for tail in (b"abcdefghijklmnop", b'"xyz', b"\x00\x80", b'\\"', b"\xff" * 9):
                text = b'"' + b"k" * (offset - 1) + bytes([byte]) + tail
                buf = np.frombuffer(text + b"\x00" * 8, dtype=np.uint8)
                for end in {len(text), offset, offset + 1, offset + 3, offset + 9}:
                    if end <= len(text):
                        assert _string_end(buf, end) == reference_string_end(text, end), (
                            text, end,
                        )  # fmt: skip
