"""Numba helpers that validate and skip JSON tokens in a byte buffer (see ``json_scan``).

Each returns the index just past the token, or -1 when the token is invalid *or* merely
unusual (escapes, non-ASCII, floats, long integers, deep nesting): the caller then leaves the
record to the orjson-based slow path, so these never need to handle the rare cases exactly.
``ENDED`` (-2) instead says the input ran out where a plain token could still continue (a
truncated record): everything before was valid, so any JSON parser fails at the end too.
Buffers are raw pointers (see ``raw_pointer``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.decode.scan.raw_pointer import Pointer, load_u64, trailing_zeros

MAX_DEPTH = 32  # deeper nesting is legal JSON but never goflow2: slow path
MAX_INT_DIGITS = 19  # every 19-digit integer fits in uint64 (and orjson parses it exactly)
ENDED = -2  # ran out of input inside a valid prefix
_OBJ = 1
_ARR = 2

# Byte classes inside a JSON string: 0 plain, 1 closing quote, 2 anything the fast path leaves
# to the slow path (backslash escapes, control bytes, non-ASCII).
_STRING_CLASS = np.zeros(256, dtype=np.uint8)
_STRING_CLASS[34] = 1
_STRING_CLASS[92] = 2
_STRING_CLASS[:32] = 2
_STRING_CLASS[128:] = 2
# The same test on 8 bytes at once (SWAR), for `_special_lanes`.
_ONES = np.uint64(0x0101_0101_0101_0101)
_HIGH_BITS = np.uint64(0x8080_8080_8080_8080)
_QUOTES = np.uint64(0x2222_2222_2222_2222)
_BACKSLASHES = np.uint64(0x5C5C_5C5C_5C5C_5C5C)
_SPACES = np.uint64(0x2020_2020_2020_2020)


@njit(cache=True, nogil=True)
def skip_ws(buf: Pointer, i: int, end: int) -> int:
    while i < end:
        c = buf[i]
        if c == 32 or c == 10 or c == 13 or c == 9:
            i += 1
        else:
            break
    return i


@njit(cache=True, nogil=True, inline="always")
def _special_lanes(word: np.uint64) -> np.uint64:
    """High bit of each byte lane of a little-endian word that is not plain inside a string
    (a quote, a backslash, a control byte or non-ASCII). Only the lowest flagged lane is
    exact: the subtractions' borrows can flag lanes above it, never below."""
    quotes = word ^ _QUOTES
    backslashes = word ^ _BACKSLASHES
    return (
        ((quotes - _ONES) & ~quotes)  # a zero lane: was a quote
        | ((backslashes - _ONES) & ~backslashes)
        | (word - _SPACES)  # below 0x20 wraps into the high bit...
        | word  # ...and so does >= 0xA0; every byte >= 0x80 is flagged by its own high bit
    ) & _HIGH_BITS


@njit(cache=True, nogil=True)
def string_end(buf: Pointer, i: int, end: int) -> int:
    """``buf[i]`` is '"'; index just past the closing quote, or -1 for anything unusual."""
    i += 1
    # Most strings (keys, addresses) are 5-30 plain bytes: test them 8 at a time.
    while i + 8 <= end:
        lanes = _special_lanes(load_u64(buf, i))
        if lanes != 0:
            i += trailing_zeros(lanes) >> 3
            return i + 1 if buf[i] == 34 else -1
        i += 8
    while i < end:
        c = _STRING_CLASS[buf[i]]
        if c != 0:
            return i + 1 if c == 1 else -1
        i += 1
    return ENDED


@njit(cache=True, nogil=True)
def int_end(buf: Pointer, i: int, end: int) -> int:
    """A JSON integer at ``buf[i]`` (optional '-'); end index, or -1 (floats, long, bad)."""
    if i < end and buf[i] == 45:
        i += 1
    first = i
    while i < end and 48 <= buf[i] <= 57:
        i += 1
    digits = i - first
    if digits == 0 or digits > MAX_INT_DIGITS or (digits > 1 and buf[first] == 48):
        return -1
    if i < end and (buf[i] == 46 or buf[i] == 101 or buf[i] == 69):  # '.', 'e', 'E'
        return -1
    return i


@njit(cache=True, nogil=True)
def literal_end(buf: Pointer, i: int, end: int) -> int:
    c = buf[i]
    if c == 116:  # true
        ok = i + 4 <= end and buf[i + 1] == 114 and buf[i + 2] == 117 and buf[i + 3] == 101
        return i + 4 if ok else -1
    if c == 102:  # false
        ok = (
            i + 5 <= end
            and buf[i + 1] == 97
            and buf[i + 2] == 108
            and buf[i + 3] == 115
            and buf[i + 4] == 101
        )
        return i + 5 if ok else -1
    if c == 110:  # null
        ok = i + 4 <= end and buf[i + 1] == 117 and buf[i + 2] == 108 and buf[i + 3] == 108
        return i + 4 if ok else -1
    return -1


@njit(cache=True, nogil=True)
def member_key_end(buf: Pointer, i: int, end: int) -> int:
    """At a member key inside a skipped object: index just past its ':' and whitespace."""
    if i >= end:
        return ENDED
    if buf[i] != 34:
        return -1
    i = string_end(buf, i, end)
    if i < 0:
        return i
    i = skip_ws(buf, i, end)
    if i >= end:
        return ENDED
    if buf[i] != 58:
        return -1
    return skip_ws(buf, i + 1, end)


@njit(cache=True, nogil=True)
def skip_value(buf: Pointer, i: int, end: int, stack: Pointer) -> int:
    """Validate and skip one JSON value of any kind; index past it, or -1."""
    depth = 0
    while True:
        i = skip_ws(buf, i, end)
        if i >= end:
            return ENDED
        c = buf[i]
        if c == 123 or c == 91:  # '{' or '['
            close = 125 if c == 123 else 93
            j = skip_ws(buf, i + 1, end)
            if j < end and buf[j] == close:
                i = j + 1
            else:
                if depth >= MAX_DEPTH:
                    return -1
                stack[depth] = _OBJ if c == 123 else _ARR
                depth += 1
                i = member_key_end(buf, j, end) if c == 123 else j
                if i < 0:
                    return i
                continue  # now at the first member's value
        elif c == 34:
            i = string_end(buf, i, end)
        elif c == 45 or 48 <= c <= 57:
            i = int_end(buf, i, end)
        else:
            i = literal_end(buf, i, end)
        if i < 0:
            return i
        # A value is complete: close containers or move to the next member.
        while True:
            if depth == 0:
                return i
            i = skip_ws(buf, i, end)
            if i >= end:
                return ENDED
            c = buf[i]
            top = stack[depth - 1]
            if c == 44:  # ','
                i += 1
                if top == _OBJ:
                    i = member_key_end(buf, skip_ws(buf, i, end), end)
                    if i < 0:
                        return i
                break
            if (c == 125 and top == _OBJ) or (c == 93 and top == _ARR):
                depth -= 1
                i += 1
            else:
                return -1
