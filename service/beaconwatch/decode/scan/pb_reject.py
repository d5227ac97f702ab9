"""Rejections of goflow2 protobuf records straight from the wire scanner's status (``pb_wire``).

A well-formed message that breaks a goflow2 field rule needs no protobuf runtime parse: the
scanner names the first failing field in the reference's order and what the reference sees
there, and that field's own rule (``goflow2_record.field_problem``) gives the reference path's
exact reason and detail.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from beaconwatch.decode.common.rows import Problem
from beaconwatch.decode.scan.goflow2_pb_record import address_text
from beaconwatch.decode.scan.goflow2_record import RULE_ORDER, field_problem, remember_problem
from beaconwatch.decode.scan.pb_wire import MISSING, NO_TIME, SLOW
from beaconwatch.domain.rejections import RejectReason

_MISSING = tuple(Problem(RejectReason.MISSING_FIELD, f"missing {key}") for key in RULE_ORDER)
_NO_TIME = Problem(RejectReason.MISSING_FIELD, "missing time_flow_start_ns/time_received_ns")
_ADDRESSES = frozenset(("src_addr", "dst_addr"))


def judged_problems(
    status: npt.NDArray[np.uint8],
    field: npt.NDArray[np.int8],
    value: npt.NDArray[np.uint64],
    memo: dict[tuple[int, int], tuple[str, str] | None],
) -> dict[int, tuple[str, str]]:
    """{row: the reference path's (reason, detail)} for the rows the scanner judged bad.

    ``memo``: the caller's answers for (field, value) seen before, a pure function of them (a
    storm from a misconfigured exporter repeats the same bad values)."""
    rows = np.flatnonzero(status > SLOW)
    if not rows.size:
        return {}
    out: dict[int, tuple[str, str]] = {}
    columns = (rows.tolist(), status[rows].tolist(), field[rows].tolist(), value[rows].tolist())
    for row, code, k, seen in zip(*columns, strict=True):
        if code == MISSING:
            out[row] = _MISSING[k]
        elif code == NO_TIME:
            out[row] = _NO_TIME
        else:
            memo_key = (k, seen)
            if memo_key in memo:
                problem = memo[memo_key]
            else:
                key = RULE_ORDER[k]
                # An address the reference shows by its length alone (neither 4 nor 16 bytes).
                shown = address_text(bytes(seen)) if key in _ADDRESSES else seen
                problem = field_problem(key, shown)
                remember_problem(memo, memo_key, problem)
            if problem is not None:
                out[row] = problem
    return out
