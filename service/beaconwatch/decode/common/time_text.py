"""Timestamp text -> integer epoch milliseconds, in bulk, without a datetime object per value.

Two textual shapes occur in flow records:

* Calendar date-times: RFC 3339 (``2026-01-02T03:04:05.123456789Z``, ``...+02:00``) as
  Filebeat/Elastic Agent write them, and pmacct's ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (space
  separator, no zone; with ``timestamps_rfc3339: true`` it writes a ``T`` and ``Z``/``+hh:mm``).
  Accepted: ``T``, ``t`` or one space between date and time; 0..9 fraction digits after a
  ``.``; zone ``Z``/``z``, ``+hh:mm``/``-hh:mm`` or ``+hhmm``. A value without a zone is taken
  at ``naive_offset_min`` minutes east of UTC (0: UTC). Years 0001..9999, real calendar days
  (leap years), hours 0..23, minutes and seconds 0..59 (no leap second: the datetime reference
  rejects it too), zone offsets below 24 h.
* Epoch seconds as decimal text, pmacct's ``timestamps_since_epoch`` (``1700000000.123456``
  or ``1700000000``): digits, optionally ``.`` and 1..9 fraction digits, at most
  ``MAX_EPOCH_S`` (9999-12-31T23:59:59Z).

Fractions are truncated to the millisecond (never rounded up: a flow start must not move
later). ``reference_ms`` is the slow, obviously-correct twin (stdlib ``datetime``/``Decimal``)
that the numba kernel is tested against.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.decode.common.ip_text import ZERO_DIGIT

MAX_EPOCH_S = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_TIME_TEXT_LEN = 40  # longest accepted: "9999-12-31T23:59:59.999999999+23:59" is 35


@njit(cache=True, nogil=True)
def _digits(buf: npt.NDArray[np.uint8], start: int, count: int) -> int:
    """The decimal value of ``count`` ASCII digits at ``start``, or -1."""
    value = 0
    for i in range(start, start + count):
        c = buf[i]
        if c < 48 or c > 57:
            return -1
        value = value * 10 + (c - ZERO_DIGIT)
    return value


@njit(cache=True, nogil=True)
def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    mp = month - 3 if month > 2 else month + 9
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(cache=True, nogil=True)
def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
        return 29 if leap else 28
    if month == 4 or month == 6 or month == 9 or month == 11:
        return 30
    return 31


@njit(cache=True, nogil=True)
def parse_datetime_ms(
    buf: npt.NDArray[np.uint8], start: int, end: int, naive_offset_min: int
) -> tuple[bool, int]:
    """RFC 3339 / pmacct date-time text in ``buf[start:end]`` -> (ok, epoch ms)."""
    n = end - start
    if n < 19 or n > MAX_TIME_TEXT_LEN:
        return False, 0
    b = start
    if buf[b + 4] != 45 or buf[b + 7] != 45 or buf[b + 13] != 58 or buf[b + 16] != 58:
        return False, 0
    sep = buf[b + 10]
    if sep != 84 and sep != 116 and sep != 32:  # 'T', 't', ' '
        return False, 0
    year = _digits(buf, b, 4)
    month = _digits(buf, b + 5, 2)
    day = _digits(buf, b + 8, 2)
    hour = _digits(buf, b + 11, 2)
    minute = _digits(buf, b + 14, 2)
    second = _digits(buf, b + 17, 2)
    if year < 1 or month < 1 or month > 12 or day < 1 or hour < 0 or minute < 0 or second < 0:
        return False, 0
    if day > _days_in_month(year, month) or hour > 23 or minute > 59 or second > 59:
        return False, 0
    i = b + 19
    frac_ms = 0
    if i < end and buf[i] == 46:  # '.'
        i += 1
        digits = 0
        while i < end and 48 <= buf[i] <= 57:
            if digits < 3:
                frac_ms = frac_ms * 10 + (buf[i] - ZERO_DIGIT)
            digits += 1
            i += 1
        if digits == 0 or digits > 9:
            return False, 0
        for _ in range(digits, 3):
            frac_ms *= 10
    offset_min = naive_offset_min
    if i < end:
        c = buf[i]
        if (c == 90 or c == 122) and i + 1 == end:  # 'Z', 'z'
            offset_min = 0
        elif c == 43 or c == 45:  # '+', '-'
            rest = end - i - 1
            if rest == 5 and buf[i + 3] == 58:  # +hh:mm
                oh = _digits(buf, i + 1, 2)
                om = _digits(buf, i + 4, 2)
            elif rest == 4:  # +hhmm
                oh = _digits(buf, i + 1, 2)
                om = _digits(buf, i + 3, 2)
            else:
                return False, 0
            if oh < 0 or om < 0 or oh > 23 or om > 59:
                return False, 0
            offset_min = oh * 60 + om
            if c == 45:
                offset_min = -offset_min
        else:
            return False, 0
    days = _days_from_civil(year, month, day)
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_min * 60
    return True, seconds * 1000 + frac_ms


@njit(cache=True, nogil=True)
def parse_epoch_ms(buf: npt.NDArray[np.uint8], start: int, end: int) -> tuple[bool, int]:
    """Decimal epoch seconds text (``1700000000.123456``) in ``buf[start:end]`` -> (ok, ms)."""
    i = start
    seconds = 0
    int_digits = 0
    while i < end and 48 <= buf[i] <= 57:
        seconds = seconds * 10 + (buf[i] - ZERO_DIGIT)
        int_digits += 1
        i += 1
        if int_digits > 12:
            return False, 0
    if int_digits == 0 or seconds > MAX_EPOCH_S:
        return False, 0
    frac_ms = 0
    if i < end:
        if buf[i] != 46:
            return False, 0
        i += 1
        digits = 0
        while i < end and 48 <= buf[i] <= 57:
            if digits < 3:
                frac_ms = frac_ms * 10 + (buf[i] - ZERO_DIGIT)
            digits += 1
            i += 1
        if i != end or digits == 0 or digits > 9:
            return False, 0
        for _ in range(digits, 3):
            frac_ms *= 10
    return True, seconds * 1000 + frac_ms


@njit(cache=True, nogil=True)
def parse_time_many(
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    allow_epoch: bool,
    naive_offset_min: int,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Parse many values laid out in one buffer; failed rows have ok == False and ms 0.

    With ``allow_epoch``, a value made of digits and at most one ``.`` is epoch seconds."""
    n = starts.shape[0]
    ok = np.zeros(n, dtype=np.bool_)
    ms = np.zeros(n, dtype=np.int64)
    for k in range(n):
        s = starts[k]
        e = ends[k]
        epoch = False
        if allow_epoch and e > s and 48 <= buf[s] <= 57:
            epoch = True
            for i in range(s, min(e, s + 13)):  # calendar text has '-' at index 4
                if buf[i] == 45 or buf[i] == 58:
                    epoch = False
                    break
        if epoch:
            good, value = parse_epoch_ms(buf, s, e)
        else:
            good, value = parse_datetime_ms(buf, s, e, naive_offset_min)
        if good:
            ok[k] = True
            ms[k] = value
    return ok, ms


def times_to_ms(
    texts: Sequence[bytes], *, allow_epoch: bool, naive_offset_min: int = 0
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Bulk parse: each text (ASCII bytes) -> (ok, epoch ms) columns."""
    n = len(texts)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    ends = np.cumsum(lengths)
    buf = np.frombuffer(b"".join(texts) or b"\0", dtype=np.uint8)
    return parse_time_many(buf, ends - lengths, ends, allow_epoch, naive_offset_min)


# The reference: what the kernel must agree with, written with the standard library.

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)
_EPOCH = re.compile(r"(\d{1,12})(?:\.(\d{1,9}))?")


def reference_ms(text: str, *, allow_epoch: bool, naive_offset_min: int = 0) -> int | None:
    """Slow twin of ``parse_time_many`` for one value: epoch ms, or None when not accepted.
    ``naive_offset_min`` must be within -1439..1439 (what a time zone can be)."""
    if not text.isascii() or len(text) > MAX_TIME_TEXT_LEN:
        return None
    if allow_epoch and (m := _EPOCH.fullmatch(text)):
        if int(m.group(1)) > MAX_EPOCH_S:
            return None
        return int(Decimal(text) * 1000)  # int() truncates; the value is non-negative
    m = _DATETIME.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, oh, om = m.groups()
    if zulu:
        offset = 0
    elif sign:
        if (oh_i := int(oh)) > 23 or (om_i := int(om)) > 59:
            return None
        offset = (oh_i * 60 + om_i) * (-1 if sign == "-" else 1)
    else:
        offset = naive_offset_min
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            tzinfo=timezone(timedelta(minutes=offset)),
        )  # fmt: skip
        epoch = moment - datetime(1970, 1, 1, tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    seconds = epoch.days * 86400 + epoch.seconds
    frac_ms = int((fraction or "0").ljust(3, "0")[:3])
    return seconds * 1000 + frac_ms
