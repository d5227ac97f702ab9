"""Timestamp text kernels (RFC 3339, pmacct date-times, epoch text) against the datetime twin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaconwatch.decode.common.time_text import MAX_EPOCH_S, reference_ms, times_to_ms


def fast(text: bytes, allow_epoch: bool = True, offset: int = 0) -> int | None:
    ok, ms = times_to_ms([text], allow_epoch=allow_epoch, naive_offset_min=offset)
    return int(ms[0]) if ok[0] else None


def both(text: bytes, allow_epoch: bool = True, offset: int = 0) -> int | None:
    ref = reference_ms(text.decode("utf-8", "replace"), allow_epoch=allow_epoch,
                       naive_offset_min=offset) if text.isascii() else None  # fmt: skip
    assert fast(text, allow_epoch, offset) == ref, text
    return ref


T0 = 1767323045000  # 2026-01-02T03:04:05Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"2026-01-02T03:04:05Z", T0),
        (b"2026-01-02T03:04:05.123456789Z", T0 + 123),
        (b"2026-01-02t03:04:05.9z", T0 + 900),
        (b"2026-01-02 03:04:05.123456", T0 + 123),  # pmacct, timestamps_utc
        (b"2026-01-02 03:04:05", T0),  # pmacct, timestamps_secs
        (b"2026-01-02T05:04:05.000+02:00", T0),
        (b"2026-01-01T23:34:05-03:30", T0),
        (b"2026-01-02T05:04:05+0200", T0),
        (b"1767323045.123456", T0 + 123),  # timestamps_since_epoch
        (b"1767323045", T0),
        (b"1969-12-31T23:59:59.999Z", -1),
        (b"2024-02-29T00:00:00Z", 1709164800000),
        (b"0001-01-01T00:00:00Z", -62135596800000),
        (b"9999-12-31T23:59:59.999999999Z", MAX_EPOCH_S * 1000 + 999),
        (str(MAX_EPOCH_S).encode(), MAX_EPOCH_S * 1000),
    ],
)
def test_accepted(text: bytes, expected: int) -> None:
    assert both(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        b"", b"0000-00-00 00:00:00", b"2026-02-29T00:00:00Z", b"2026-13-01T00:00:00Z",
        b"2026-01-02T24:00:00Z", b"2026-01-02T23:60:00Z", b"2026-01-02T23:59:60Z",
        b"2026-01-02T03:04:05.Z", b"2026-01-02T03:04:05.1234567891Z", b"2026-01-02T03:04:05+2:00",
        b"2026-01-02T03:04:05+24:00", b"2026-01-02T03:04:05+02:60", b"2026-01-02T03:04:05ZZ",
        b"2026-01-02T03:04:05 Z", b"2026-01-02  03:04:05", b" 2026-01-02T03:04:05Z",
        b"+2026-01-02T03:04:05Z", b"2026-1-02T03:04:05Z", b"1767323045.", b".5", b"-1",
        b"1767323045.1234567891", b"1e9", str(MAX_EPOCH_S + 1).encode(), b"9" * 13,
        "2026-01-02T03:04:05\u00a0Z".encode(), b"\xff2026-01-02T03:04:05Z",
    ],
)  # fmt: skip
def test_rejected(text: bytes) -> None:
    assert both(text) is None


def test_epoch_only_when_allowed_and_naive_offset() -> None:
    assert both(b"1767323045", allow_epoch=False) is None
    assert both(b"2026-01-02 05:04:05", offset=120) == T0  # collector in UTC+2, no zone
    assert both(b"2026-01-02T05:04:05Z", offset=120) == T0 + 7_200_000  # explicit zone wins


@settings(max_examples=600, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(0, 9),
    st.integers(-1439, 1439),
    st.sampled_from(["T", "t", " "]),
    st.sampled_from(["Z", "offset", "compact", "none"]),
    st.integers(0, 999_999_999),
)
def test_random_datetimes_match_reference_and_datetime(
    moment: datetime, digits: int, offset: int, sep: str, zone: str, nanos: int
) -> None:
    frac = f"{nanos:09d}"[:digits]
    sign = "-" if offset < 0 else "+"
    hh, mm = divmod(abs(offset), 60)
    suffix = {"Z": "Z", "offset": f"{sign}{hh:02d}:{mm:02d}", "compact": f"{sign}{hh:02d}{mm:02d}",
              "none": ""}[zone]  # fmt: skip
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{sep}" + moment.strftime(
        "%H:%M:%S"
    )
    text += ("." + frac if digits else "") + suffix
    got = both(text.encode(), offset=offset)
    tz = UTC if zone == "Z" else timezone(timedelta(minutes=offset))
    want = moment.replace(microsecond=0, tzinfo=tz) - datetime(1970, 1, 1, tzinfo=UTC)
    assert got == want // timedelta(seconds=1) * 1000 + int((frac + "000")[:3])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, MAX_EPOCH_S), st.integers(0, 9), st.integers(0, 999_999_999))
def test_random_epoch_text(seconds: int, digits: int, nanos: int) -> None:
    frac = f"{nanos:09d}"[:digits]
    text = f"{seconds}" + (f".{frac}" if digits else "")
    assert both(text.encode()) == seconds * 1000 + int((frac + "000")[:3])


@settings(max_examples=800, deadline=None)
@given(st.one_of(
    st.binary(max_size=40),
    st.text(alphabet="0123456789-:. TtZz+", max_size=36).map(str.encode),
    st.sampled_from([b"2026-01-02T03:04:05.123456789Z", b"1767323045.123456"]).flatmap(
        lambda t: st.tuples(st.integers(0, len(t) - 1), st.binary(min_size=1, max_size=2)).map(
            lambda c: t[: c[0]] + c[1] + t[c[0] + 1 :])),
))  # fmt: skip
def test_garbage_agrees_with_reference(text: bytes) -> None:
    both(text)
    both(text, allow_epoch=False)
