"""Rejections of goflow2 JSON records straight from the scanner's status (``json_scan``).

The scanner says which plain records are certainly bad and why: cut short, a required field
missing, no flow time, or the first needed field whose value it cannot accept (with the value's
offsets). Each gets the reference path's (``goflow2_record``) exact reason and detail without
the reference's whole-record parse: constants for the first three, and the field's own rule
applied to the value alone for the last (a few bytes for orjson). A value the rule accepts
after all (``-0``, a protocol name only the reference knows) leaves the record undecided, for
the reference path.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from itertools import compress, repeat
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import orjson
from numba import njit

from beaconwatch.decode.base import RejectReason
from beaconwatch.decode.goflow2_record import Problem, field_problem, remember_problem
from beaconwatch.decode.json_scan import BAD_FIELD, KEYS, MISSING, NO_TIME, TRUNCATED

I64 = npt.NDArray[np.int64]
_DETAIL_MAX = 120
MEMO_VALUE_BYTES = 64  # longer values are answered afresh: the memo stays < 1 MiB
_MISSING = tuple(Problem(RejectReason.MISSING_FIELD, f"missing {key}") for key in KEYS)
_NO_TIME = Problem(RejectReason.MISSING_FIELD, "missing time_flow_start_ns/time_received_ns")
# orjson's message for input that ends inside the document; its position is the length.
_ENDED = "unexpected end of data: line %d column %d (char %d)"
_slice_of = cast(Callable[[bytes, slice], bytes], operator.getitem)  # record[lo:hi]
_UNSEEN = object()  # a memo miss (None is an answer: the value passes its field rule)


def judged_problems(
    records: Sequence[bytes],
    buf: npt.NDArray[np.uint8],
    starts: I64,
    ends: I64,
    status: npt.NDArray[np.int8],
    field: npt.NDArray[np.int8],
    value_start: I64,
    value_end: I64,
    unknown_proto: int | None,
    memo: dict[tuple[int, bytes], tuple[str, str] | None],
) -> dict[int, tuple[str, str]]:
    """{row: the reference path's (reason, detail)} for the rows the scanner judged bad.

    ``memo``: the caller's answers for (field, value text) seen before, a pure function of
    them; a storm from a misconfigured exporter repeats the same bad values, and a hit costs
    a dict lookup instead of the field rule's exception path. The rows of each status are
    answered by C loops over columns (``map``/``zip``), not one Python iteration each."""
    out: dict[int, tuple[str, str]] = {}
    missing = np.flatnonzero(status == MISSING)
    out.update(
        zip(missing.tolist(), map(_MISSING.__getitem__, field[missing].tolist()), strict=True)
    )
    out.update(zip(np.flatnonzero(status == NO_TIME).tolist(), repeat(_NO_TIME), strict=False))
    cut = np.flatnonzero(status == TRUNCATED)
    if cut.size:
        # All ASCII (the scanner read it all): chars == bytes. At most 3 x 19 digits, so the
        # detail is always shorter than _DETAIL_MAX.
        lines, columns = cut_positions(buf, starts, ends, cut)
        lengths = (ends[cut] - starts[cut]).tolist()
        positions = zip(lines.tolist(), columns.tolist(), lengths, strict=True)
        details = map(_ENDED.__mod__, positions)
        reasons = repeat(RejectReason.INVALID_JSON)
        out.update(zip(cut.tolist(), zip(reasons, details, strict=False), strict=True))
    bad = np.flatnonzero(status == BAD_FIELD)
    if bad.size:
        rows = bad.tolist()
        values: Iterator[bytes] = map(
            _slice_of,
            map(records.__getitem__, rows),
            map(slice, (value_start[bad] - starts[bad]).tolist(),
                (value_end[bad] - starts[bad]).tolist()),
        )  # fmt: skip
        keys: list[tuple[int, bytes]] = list(zip(field[bad].tolist(), values, strict=True))
        lookup: Callable[..., Any] = memo.get
        problems: list[Any] = list(map(lookup, keys, repeat(_UNSEEN)))
        if _UNSEEN in problems:  # the first batches of a storm, and long values
            for i, (k, raw) in enumerate(keys):
                if problems[i] is _UNSEEN:
                    problem = field_problem(KEYS[k], orjson.loads(raw), unknown_proto)
                    problems[i] = problem
                    if len(raw) <= MEMO_VALUE_BYTES:
                        remember_problem(memo, (k, raw), problem)
        # A value the field rule accepts after all (None) leaves its record undecided.
        judged: Iterator[tuple[int, tuple[str, str]]] = compress(
            zip(rows, problems, strict=True), problems
        )
        out.update(judged)
    return out


@njit(cache=True, nogil=True)
def cut_positions(buf: npt.NDArray[np.uint8], starts: I64, ends: I64, rows: I64) -> tuple[I64, I64]:
    """orjson's (line, column) of the end of each record ``rows``: lines counted by newlines,
    the column one past the last newline (or the length + 1 without one)."""
    lines = np.ones(rows.shape[0], dtype=np.int64)
    columns = np.empty(rows.shape[0], dtype=np.int64)
    for k in range(rows.shape[0]):
        start, end = starts[rows[k]], ends[rows[k]]
        last = -1
        for i in range(start, end):
            if buf[i] == 10:
                lines[k] += 1
                last = i - start
        columns[k] = end - start - last
    return lines, columns
