"""Rejections of goflow2 protobuf records straight from the wire scanner's status (``pb_wire``).

A well-formed message that breaks a goflow2 field rule needs no protobuf runtime parse: the
scanner names the first failing field in the reference's order and what the reference sees
there, and that field's own rule (``goflow2_record.field_problem``) gives the reference path's
exact reason and detail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import compress, repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from beaconwatch.decode.base import RejectReason
from beaconwatch.decode.goflow2_pb_record import address_text
from beaconwatch.decode.goflow2_record import (
    RULE_ORDER,
    Problem,
    field_problem,
    remember_problem,
)
from beaconwatch.decode.pb_wire import BAD_FIELD, MISSING, NO_TIME

_MISSING = tuple(Problem(RejectReason.MISSING_FIELD, f"missing {key}") for key in RULE_ORDER)
_NO_TIME = Problem(RejectReason.MISSING_FIELD, "missing time_flow_start_ns/time_received_ns")
_ADDRESSES = frozenset(("src_addr", "dst_addr"))
_UNSEEN = object()  # a memo miss (None is an answer: the value passes its field rule)


def judged_problems(
    status: npt.NDArray[np.uint8],
    field: npt.NDArray[np.int8],
    value: npt.NDArray[np.uint64],
    memo: dict[tuple[int, int], tuple[str, str] | None],
) -> dict[int, tuple[str, str]]:
    """{row: the reference path's (reason, detail)} for the rows the scanner judged bad.

    ``memo``: the caller's answers for (field, value) seen before, a pure function of them (a
    storm from a misconfigured exporter repeats the same bad values)."""
    out: dict[int, tuple[str, str]] = {}
    missing = np.flatnonzero(status == MISSING)
    out.update(
        zip(missing.tolist(), map(_MISSING.__getitem__, field[missing].tolist()), strict=True)
    )
    out.update(zip(np.flatnonzero(status == NO_TIME).tolist(), repeat(_NO_TIME), strict=False))
    bad = np.flatnonzero(status == BAD_FIELD)
    if bad.size:
        rows = bad.tolist()
        keys = list(zip(field[bad].tolist(), value[bad].tolist(), strict=True))
        lookup: Callable[..., Any] = memo.get
        problems: list[Any] = list(map(lookup, keys, repeat(_UNSEEN)))
        if _UNSEEN in problems:  # the first batches of a storm
            for i, (k, seen) in enumerate(keys):
                if problems[i] is _UNSEEN:
                    key = RULE_ORDER[k]
                    # An address the reference shows by its length alone (not 4 or 16 bytes).
                    shown = address_text(bytes(seen)) if key in _ADDRESSES else seen
                    problem = field_problem(key, shown)
                    problems[i] = problem
                    remember_problem(memo, (k, seen), problem)
        # A value the field rule accepts after all (None) leaves its record undecided.
        judged: Iterator[tuple[int, tuple[str, str]]] = compress(
            zip(rows, problems, strict=True), problems
        )
        out.update(judged)
    return out
