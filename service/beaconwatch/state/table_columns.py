"""The pair table's arrays as one argument of the kernels (`state.ingest`, `channel_index`).

A `typing.NamedTuple` of arrays: numba passes it to ``@njit`` functions by value (the arrays
by reference, so the kernels write into the table) and caches what it compiled for it. Built
afresh per kernel call by `PairTable.columns`, since growing a table replaces its arrays.
Each column's meaning and layout is in `state.pair_table`; two are renamed here, since a
tuple has methods `index` and `count`.
"""

from __future__ import annotations

from typing import NamedTuple

from beaconwatch.domain.dtypes import BOOL, F32, I32, I64, U8, U16, U32, U64


class TableColumns(NamedTuple):
    hash_slots: I32  # the table's `index`: hash slot -> row (`hash_index`)
    keys: U64
    port_proto: U32
    first_seen_ms: I64
    last_seen_ms: I64
    scored_ms: I64
    alert_ms: I64
    first_alert_ms: I64
    n_connections: U32  # the table's `count` (a tuple has a method `count`)
    scored_count: U32
    alerted: F32
    sampling: U16
    direction_inferred: U8
    long_alert_ms: I64
    long_sessions: U16
    ring_t: U32
    ring_b: U16
    conn_port: U16
    conn_times: U32
    free: I32
    used: BOOL
    meta: I64  # [0] free-stack size, [1] epoch_ms
    channels: I64  # prefix channels' promotion index (`channel_index`), empty when off
