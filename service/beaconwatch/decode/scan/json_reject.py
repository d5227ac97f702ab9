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

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import orjson

from beaconwatch.decode.common.rows import DETAIL_MAX, Problem
from beaconwatch.decode.scan.goflow2_record import field_problem, remember_problem
from beaconwatch.decode.scan.json_scan import BAD_FIELD, KEYS, MISSING, NO_TIME, SLOW, TRUNCATED
from beaconwatch.domain.dtypes import I64
from beaconwatch.domain.rejections import RejectReason

MEMO_VALUE_BYTES = 64  # longer values are answered afresh: the memo stays < 1 MiB
_MISSING = tuple(Problem(RejectReason.MISSING_FIELD, f"missing {key}") for key in KEYS)
_NO_TIME = Problem(RejectReason.MISSING_FIELD, "missing time_flow_start_ns/time_received_ns")
# orjson's message for input that ends inside the document; its position is the length.
_ENDED = "unexpected end of data: line %d column %d (char %d)"


def judged_problems(
    records: Sequence[bytes],
    starts: I64,
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
    a dict lookup instead of the field rule's exception path."""
    rows = np.flatnonzero(status > SLOW)
    if not rows.size:
        return {}
    out: dict[int, tuple[str, str]] = {}
    # Python ints, not NumPy scalars, in the per-record loop.
    columns = (
        rows.tolist(), status[rows].tolist(), field[rows].tolist(),
        (value_start[rows] - starts[rows]).tolist(), (value_end[rows] - starts[rows]).tolist(),
    )  # fmt: skip
    for row, code, k, lo, hi in zip(*columns, strict=True):
        if code == MISSING:
            out[row] = _MISSING[k]
        elif code == NO_TIME:
            out[row] = _NO_TIME
        elif code == TRUNCATED:
            record = records[row]  # all ASCII (the scanner read it all): chars == bytes
            n = len(record)
            line = record.count(b"\n") + 1
            detail = _ENDED % (line, n - record.rfind(b"\n"), n)
            out[row] = (RejectReason.INVALID_JSON, detail[:DETAIL_MAX])
        elif code == BAD_FIELD:
            raw = records[row][lo:hi]
            memo_key = (k, raw)
            if memo_key in memo:
                problem = memo[memo_key]
            else:
                problem = field_problem(KEYS[k], orjson.loads(raw), unknown_proto)
                if len(raw) <= MEMO_VALUE_BYTES:
                    remember_problem(memo, memo_key, problem)
            if problem is not None:
                out[row] = problem
    return out
