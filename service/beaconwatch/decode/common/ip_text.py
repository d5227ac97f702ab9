"""Numba kernels: IP address text (ASCII bytes) -> the (hi, lo) uint64 halves of a FlowBatch.

Parsing happens in place on a byte buffer (``buf[start:end]``), so the JSON scanner can parse
address strings without creating Python objects. IPv4 becomes the IPv4-mapped IPv6 address
``::ffff:a.b.c.d`` (``hi == 0``, ``lo == 0xFFFF_xxxx_xxxx``), exactly like
``beaconwatch.domain.addresses.ip_to_halves``.

Accepted syntax (the same as Python's ``ipaddress`` module, except for zone ids):

* IPv4: four decimal octets ``0..255``. Leading zeros are rejected (``01.2.3.4``): they are
  ambiguous (octal in some parsers) and Go's ``netip`` (what goflow2 prints with) never
  writes them. ``ipaddress`` rejects them too.
* IPv6: one to eight groups of 1-4 hex digits (either case), at most one ``::`` standing for
  at least one zero group, optionally ending in an embedded dotted IPv4 (``::ffff:1.2.3.4``).
* Zone ids (``fe80::1%eth0``), brackets, whitespace and anything non-ASCII are rejected: a
  flow's address with a zone cannot be keyed as a 128-bit number.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
from numba import njit

MAX_IP_TEXT_LEN = 45  # longest valid form: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
_MAPPED_PREFIX = 0xFFFF_0000_0000
_ZERO = np.uint64(0)
# '0' as an int64: `byte - ZERO_DIGIT` is an int64 as numba types it, in plain Python too
# (NUMBA_DISABLE_JIT=1), where NumPy keeps `uint8 - 48` a uint8 that wraps (NEP 50).
ZERO_DIGIT = np.int64(48)


@njit(cache=True, nogil=True)
def _hex_value(c: int) -> np.int64 | int:
    """Value of an ASCII hex digit, or -1."""
    if 48 <= c <= 57:
        return c - ZERO_DIGIT
    if 97 <= c <= 102:
        return c - ZERO_DIGIT - 39
    if 65 <= c <= 70:
        return c - ZERO_DIGIT - 7
    return -1


@njit(cache=True, nogil=True)
def parse_ipv4(buf: npt.NDArray[np.uint8], start: int, end: int) -> tuple[bool, int]:
    """Dotted quad in ``buf[start:end]`` -> (ok, 32-bit value)."""
    if end - start < 7 or end - start > 15:
        return False, 0
    value = 0
    octets = 0
    i = start
    while True:
        digits = 0
        octet = 0
        first = i
        while i < end and 48 <= buf[i] <= 57:
            octet = octet * 10 + (buf[i] - ZERO_DIGIT)
            digits += 1
            i += 1
        if digits == 0 or digits > 3 or octet > 255:
            return False, 0
        if digits > 1 and buf[first] == 48:  # leading zero
            return False, 0
        value = (value << 8) | octet
        octets += 1
        if i == end:
            break
        if buf[i] != 46 or octets == 4:  # '.'
            return False, 0
        i += 1
    if octets != 4:
        return False, 0
    return True, value


@njit(cache=True, nogil=True)
def _parse_ipv6(
    buf: npt.NDArray[np.uint8], start: int, end: int
) -> tuple[bool, np.uint64, np.uint64]:
    """IPv6 text in ``buf[start:end]`` -> (ok, hi, lo) without allocating."""
    # Groups before the "::" are packed into `head`, groups after it into `tail`, each as a
    # 128-bit number in (hi, lo) halves; the "::" then shifts head left over the zero groups.
    head_hi = np.uint64(0)
    head_lo = np.uint64(0)
    tail_hi = np.uint64(0)
    tail_lo = np.uint64(0)
    n_head = 0
    n_tail = 0
    gap = False  # seen "::"
    i = start
    if end - i >= 2 and buf[i] == 58:  # leading ':' must be the start of "::"
        if buf[i + 1] != 58:
            return False, _ZERO, _ZERO
        gap = True
        i += 2
        if i == end:
            return True, _ZERO, _ZERO
    while True:
        group: np.int64 | int = 0  # np.int64 in plain Python (see ZERO_DIGIT)
        digits = 0
        j = i
        while j < end:
            h = _hex_value(buf[j])
            if h < 0:
                break
            group = (group << 4) | h
            digits += 1
            j += 1
            if digits > 4:
                return False, _ZERO, _ZERO
        if j < end and buf[j] == 46:  # '.': the rest is an embedded IPv4 address
            ok, v4 = parse_ipv4(buf, i, end)
            if not ok:
                return False, _ZERO, _ZERO
            for part in ((v4 >> 16) & 0xFFFF, v4 & 0xFFFF):
                if gap:
                    tail_hi = (tail_hi << np.uint64(16)) | (tail_lo >> np.uint64(48))
                    tail_lo = (tail_lo << np.uint64(16)) | np.uint64(part)
                    n_tail += 1
                else:
                    head_hi = (head_hi << np.uint64(16)) | (head_lo >> np.uint64(48))
                    head_lo = (head_lo << np.uint64(16)) | np.uint64(part)
                    n_head += 1
            i = end
            break
        if digits == 0:
            return False, _ZERO, _ZERO
        if n_head + n_tail >= 8:
            return False, _ZERO, _ZERO
        if gap:
            tail_hi = (tail_hi << np.uint64(16)) | (tail_lo >> np.uint64(48))
            tail_lo = (tail_lo << np.uint64(16)) | np.uint64(group)
            n_tail += 1
        else:
            head_hi = (head_hi << np.uint64(16)) | (head_lo >> np.uint64(48))
            head_lo = (head_lo << np.uint64(16)) | np.uint64(group)
            n_head += 1
        i = j
        if i == end:
            break
        if buf[i] != 58:
            return False, _ZERO, _ZERO
        i += 1
        if i == end:  # trailing single ':'
            return False, _ZERO, _ZERO
        if buf[i] == 58:
            if gap:
                return False, _ZERO, _ZERO
            gap = True
            i += 1
            if i == end:
                break
    total = n_head + n_tail
    if total > 8 or (gap and total > 7) or (not gap and total != 8):
        return False, _ZERO, _ZERO
    # Shift head left by 16 bits per zero group the "::" stands for, then OR in the tail.
    shift = 16 * (8 - n_head) if gap else 0
    if shift >= 128:
        head_hi = np.uint64(0)
        head_lo = np.uint64(0)
    elif shift >= 64:
        head_hi = head_lo << np.uint64(shift - 64)
        head_lo = np.uint64(0)
    elif shift > 0:
        head_hi = (head_hi << np.uint64(shift)) | (head_lo >> np.uint64(64 - shift))
        head_lo = head_lo << np.uint64(shift)
    return True, head_hi | tail_hi, head_lo | tail_lo


@njit(cache=True, nogil=True)
def parse_ip(buf: npt.NDArray[np.uint8], start: int, end: int) -> tuple[bool, np.uint64, np.uint64]:
    """IPv4 or IPv6 text in ``buf[start:end]`` -> (ok, hi, lo); IPv4 as IPv4-mapped."""
    if end - start < 2 or end - start > MAX_IP_TEXT_LEN:
        return False, _ZERO, _ZERO
    for i in range(start, end):
        if buf[i] == 58:  # any ':' means IPv6
            return _parse_ipv6(buf, start, end)
    ok, v4 = parse_ipv4(buf, start, end)
    if not ok:
        return False, _ZERO, _ZERO
    return True, _ZERO, np.uint64(_MAPPED_PREFIX | v4)


@njit(cache=True, nogil=True)
def parse_ip_many(
    buf: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Parse many addresses laid out in one buffer; rows that fail have ok == False, hi/lo 0."""
    n = starts.shape[0]
    ok = np.zeros(n, dtype=np.bool_)
    hi = np.zeros(n, dtype=np.uint64)
    lo = np.zeros(n, dtype=np.uint64)
    for k in range(n):
        good, h, low = parse_ip(buf, starts[k], ends[k])
        if good:
            ok[k] = True
            hi[k] = h
            lo[k] = low
    return ok, hi, lo


def parse_ip_text(text: str | bytes) -> tuple[int, int] | None:
    """One address (the slow path and tests): ``(hi, lo)`` or None when not accepted."""
    if isinstance(text, str):
        if not text.isascii():
            return None
        text = text.encode("ascii")
    if len(text) > MAX_IP_TEXT_LEN or len(text) < 2:
        return None
    return _parse_ip_cached(bytes(text))


@functools.lru_cache(maxsize=4096)
def _parse_ip_cached(text: bytes) -> tuple[int, int] | None:
    # A kernel call from Python costs microseconds; the slow path meets the same few
    # addresses over and over (a storm of bad records from one exporter).
    ok, hi, lo = parse_ip(np.frombuffer(text, dtype=np.uint8), 0, len(text))
    return (int(hi), int(lo)) if ok else None
