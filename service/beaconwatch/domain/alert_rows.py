"""The alerts one ingest kernel call raised, as named columns: what the kernel hands the core
and the core hands alerting (`alerting.rules.make_alert`), instead of vectors indexed by
hand-numbered slots.

A `typing.NamedTuple` of arrays, one row per alert (numba passes it to ``@njit`` functions
by value, the arrays by reference, and caches the kernels compiled for it). The kernel
(`state.ingest`) fills the alert's own columns; the core (`core.detector`) fills the pair's
(``src_hi`` .. ``direction_inferred``) from the table after the call, so alerting reads no
table (a name channel's name too, from the partition's name book). `score_rows` fills the
scoring columns of the same structure for every tracked pair. Here, below every layer that
reads or writes it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from beaconwatch.domain.dtypes import F64, I32, I64, U8, U16, U32, U64

KIND_BEACON = 0
KIND_LONG_CONNECTION = 1  # one connection open for long_connection_s to a rare destination
KIND_SPARSE_BEACON = 2  # three daily check-ins to a new destination (rule sparse-beacon)

LIFECYCLE_NEW = 1  # the pair's first alert (of its series)
LIFECYCLE_UPDATE = 2  # the period or the score changed materially since the last alert


class AlertRows(NamedTuple):
    # Filled by the kernel:
    row: I32  # the pair's row of the partition's table
    stats: F64  # (alerts, `Stat.SIZE`): the scored window's statistics (`score_window`)
    lifecycle: U8  # LIFECYCLE_NEW or LIFECYCLE_UPDATE
    kind: U8  # KIND_BEACON, KIND_LONG_CONNECTION or KIND_SPARSE_BEACON
    detected_ms: I64  # event time of the connection that made the pair alert
    window_start_ms: I64  # first connection of the scored window
    window_end_ms: I64  # last connection of the scored window
    first_alert_ms: I64  # the pair's first alert (its series)
    first_seen_ms: I64
    raw_score: F64  # the score before prevalence
    prevalence_sources: F64  # distinct internal sources reaching the destination
    prevalence: F64  # that count as a share of all internal sources with tracked pairs
    prevalence_factor: F64  # what prevalence multiplied the score by
    fanout: F64  # destinations the source keeps in the pair's high port block
    check_ins: F64  # connections since the pair was first seen, at the alert
    per_check_in: F64  # connections per check-in in the scored window (bursts; else 1)
    duration_s: F64  # a long connection's duration so far
    # Filled by the core, from the pair's row after the kernel call (`core.detector`):
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64  # a prefix channel's: the prefix
    dst_port_proto: U32  # dst_port << 8 | proto
    prefix: U8  # 1: a prefix channel's row (`core.channels`), 0: a pair's
    # A name channel's destination name (its row's dst_hi is the name's hash, `state.levels`);
    # "" for pairs and prefixes. Text, which the kernel never sees: empty until then.
    dst_domain: npt.NDArray[np.str_]
    sampling: U16  # highest packet-sampling rate among the pair's flows
    # The pair's direction bits (`state.pair_table`): any set reads as inferred from the ports.
    direction_inferred: U8


KERNEL_COLUMNS = AlertRows._fields[: AlertRows._fields.index("src_hi")]


def new_alert_rows(n: int, n_stats: int) -> AlertRows:
    """Room for ``n`` alerts, their statistics ``n_stats`` wide; the kernel writes every
    column of an alert's row (so not zeroed)."""
    return AlertRows(
        row=np.empty(n, dtype=np.int32),
        stats=np.empty((n, n_stats), dtype=np.float64),
        lifecycle=np.empty(n, dtype=np.uint8),
        kind=np.empty(n, dtype=np.uint8),
        detected_ms=np.empty(n, dtype=np.int64),
        window_start_ms=np.empty(n, dtype=np.int64),
        window_end_ms=np.empty(n, dtype=np.int64),
        first_alert_ms=np.empty(n, dtype=np.int64),
        first_seen_ms=np.empty(n, dtype=np.int64),
        raw_score=np.empty(n, dtype=np.float64),
        prevalence_sources=np.empty(n, dtype=np.float64),
        prevalence=np.empty(n, dtype=np.float64),
        prevalence_factor=np.empty(n, dtype=np.float64),
        fanout=np.empty(n, dtype=np.float64),
        check_ins=np.empty(n, dtype=np.float64),
        per_check_in=np.empty(n, dtype=np.float64),
        duration_s=np.empty(n, dtype=np.float64),
        # The core's columns, empty until it fills them (``_replace``).
        src_hi=np.empty(0, dtype=np.uint64),
        src_lo=np.empty(0, dtype=np.uint64),
        dst_hi=np.empty(0, dtype=np.uint64),
        dst_lo=np.empty(0, dtype=np.uint64),
        dst_port_proto=np.empty(0, dtype=np.uint32),
        prefix=np.empty(0, dtype=np.uint8),
        dst_domain=np.empty(0, dtype=np.str_),
        sampling=np.empty(0, dtype=np.uint16),
        direction_inferred=np.empty(0, dtype=np.uint8),
    )


def take(rows: AlertRows, n: int) -> AlertRows:
    """The first ``n`` alerts of the kernel's columns (views)."""
    return rows._replace(**{name: getattr(rows, name)[:n] for name in KERNEL_COLUMNS})
