"""Bulk rejection (`decode.fast_reject`) and the truncated-JSON shortcut decide exactly what
the one-record reference paths decide."""

from __future__ import annotations

import json

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from beaconwatch.decode.common.ip_text import parse_ip, parse_ip_text
from beaconwatch.decode.common.rows import Problem, ended_early
from beaconwatch.decode.scan.fast_reject import frame_problems, utf8_errors, utf8_problems
from beaconwatch.decode.scan.goflow2_pb_record import decode_record as pb_decode_record
from beaconwatch.decode.scan.goflow2_pb_schema import flow_message_class
from beaconwatch.decode.scan.goflow2_record import _explain_invalid_json
from beaconwatch.decode.scan.goflow2_record import decode_record as json_decode_record
from beaconwatch.domain.rejections import RejectReason
from beaconwatch.simulate import encoders
from beaconwatch.simulate.model import SimFlow

FLOW = SimFlow(1_767_324_720_123, 1_767_324_721_000, "10.1.2.3", "2001:db8::7", 5, 443, "TCP",
               1_500, 3)  # fmt: skip
JSON_RECORD = encoders.goflow2_json([FLOW])[0]
PB_RECORD = encoders.Goflow2PbEncoder().encode([FLOW])[0]
MESSAGE_CLASS = flow_message_class()
FRAMING = ("empty record", "malformed varint", "length prefix")


def joined(records: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.array([len(r) for r in records], dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.frombuffer(b"".join(records), dtype=np.uint8), ends - lengths, ends


def cpython_utf8_error(record: bytes) -> int:
    try:
        record.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return -1


# Valid text with a few bytes overwritten, cut or inserted: every kind of ill-formed sequence
# (stray continuations, overlongs, surrogates, > U+10FFFF, truncated sequences).
_utf8_like = st.builds(
    lambda text, edits: _edit(text.encode("utf-8"), edits),
    st.text(max_size=40),
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 255), st.sampled_from("rid")),
             max_size=3),
)  # fmt: skip


def _edit(data: bytes, edits: list[tuple[int, int, str]]) -> bytes:
    out = bytearray(data)
    for pos, byte, op in edits:
        pos = min(pos, len(out))
        if op == "r" and pos < len(out):
            out[pos] = byte
        elif op == "i":
            out.insert(pos, byte)
        else:
            del out[pos:]
    return bytes(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=40), _utf8_like), min_size=1, max_size=20))
def test_utf8_error_positions_are_cpythons(records: list[bytes]) -> None:
    buf, starts, ends = joined(records)
    got = utf8_errors(buf, starts, ends, np.arange(len(records), dtype=np.int64))
    assert got.tolist() == [cpython_utf8_error(r) for r in records]
    problems = utf8_problems(records, buf, starts, ends, list(range(len(records))))
    for k, record in enumerate(records):
        expected = json_decode_record(record, 1 << 20)
        if cpython_utf8_error(record) >= 0:
            assert problems[k] == expected
        else:
            assert k not in problems


def test_every_utf8_lead_byte_and_continuation() -> None:
    seconds = (0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0)
    records = [
        bytes([a, b, c, d])
        for a in range(0x80, 0x100)
        for b in seconds
        for c in (0x41, 0x80, 0xBF)
        for d in (0x80, 0xC3)
    ]
    records += [r[:n] for r in records[::7] for n in (1, 2, 3)]
    buf, starts, ends = joined(records)
    got = utf8_errors(buf, starts, ends, np.arange(len(records), dtype=np.int64))
    assert got.tolist() == [cpython_utf8_error(r) for r in records]


def _pb_like() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=30),
        st.builds(lambda n, tail: PB_RECORD[:n] + tail, st.integers(0, len(PB_RECORD)),
                  st.binary(max_size=3)),
        st.builds(lambda n: b"\xff" * n + b"\x01", st.integers(8, 12)),
        st.just(PB_RECORD),
        st.just(b""),
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(_pb_like(), min_size=1, max_size=20))
def test_frame_problems_are_the_reference_paths(records: list[bytes]) -> None:
    buf, starts, ends = joined(records)
    problems = frame_problems(buf, starts, ends, list(range(len(records))))
    for k, record in enumerate(records):
        expected = pb_decode_record(record, 1 << 20, MESSAGE_CLASS)
        framing = isinstance(expected, Problem) and expected.detail.startswith(FRAMING)
        if framing:
            assert problems[k] == expected
        else:
            assert k not in problems


@settings(max_examples=200, deadline=None)
@given(st.integers(1, len(JSON_RECORD) - 1), st.sampled_from([b"", b"NaN", b"1e400", b'"\\ud8']))
def test_truncated_json_shortcut_changes_no_answer(cut: int, tail: bytes) -> None:
    record = JSON_RECORD[:cut] + tail
    got = json_decode_record(record, 1 << 20)
    try:
        orjson.loads(record)
    except orjson.JSONDecodeError as exc:
        # What the reference path said before the shortcut: always the lenient re-parse.
        assert got == _explain_invalid_json(record.decode("utf-8"), str(exc), None)
        assert ended_early(exc) or tail  # a plain cut is recognised (orjson's message)
        if ended_early(exc):
            assert got.reason == RejectReason.INVALID_JSON
            try:
                json.loads(record)
            except ValueError:
                pass
            else:
                raise AssertionError("a lenient parser read a truncated record")


def test_lenient_fields_still_explained() -> None:
    """Not truncated, so the lenient re-parse still names the bad field."""
    record = JSON_RECORD.replace(b'"bytes":1500', b'"bytes":NaN')
    assert json_decode_record(record, 1 << 20) == Problem(RejectReason.INVALID_FIELD, "bytes: NaN")


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=45), st.sampled_from(["10.0.0.1", "::1", "1.2.3.256", "::"])))
def test_cached_address_parse_equals_the_kernel(text: str) -> None:
    for _ in range(2):  # the second answer comes from the cache
        got = parse_ip_text(text)
        raw = text.encode("utf-8")
        if not text.isascii() or not 2 <= len(raw) <= 45:
            assert got is None
            continue
        ok, hi, lo = parse_ip(np.frombuffer(raw, dtype=np.uint8), 0, len(raw))
        assert got == ((int(hi), int(lo)) if ok else None)


def test_ascii_runs_skipped_a_word_at_a_time_hide_no_error() -> None:
    """ASCII is skipped 8 bytes at a time: a bad or multi-byte sequence at any offset of an
    ASCII run, near its end or cut by it, is still found where CPython finds it."""
    sequences = (b"\x80", b"\xff", b"\xc3\xa9", b"\xc3", b"\xe2\x82\xac", b"\xe2\x82", b"\xf0\x9f")
    records = [
        b"a" * before + sequence + b"b" * after
        for before in range(18)
        for sequence in sequences
        for after in (0, 1, 7, 8, 9)
    ]
    buf, starts, ends = joined(records)
    got = utf8_errors(buf, starts, ends, np.arange(len(records), dtype=np.int64))
    assert got.tolist() == [cpython_utf8_error(r) for r in records]
