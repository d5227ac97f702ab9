"""Connections, not records: which flow records continue or repeat a connection already seen.

Each pair remembers its last ``CONN_SLOTS`` connections as (source port, start, end, ring
sequence, start of its latest piece). A record on the same source port (so the same 5-tuple:
the pair fixes the rest) whose start falls within a remembered connection's span is not a new
check-in:

      start - dup_tol                            end + gap
    ----[-----|==== piece ====|==== piece ====|----]----> event time
                              ^ latest piece start
         duplicate: starts before the latest piece start + dup_tol (the same record from
                    another exporter, or the reply direction turned round by the scope)
         continuation: starts later, up to `gap` after the known end (NetFlow active-timeout
                    export cuts a long connection into records exactly one timeout apart)

Both extend the known connection's end; a continuation also adds its bytes to the connection
and becomes its latest piece.
Two slots cover a connection and its reply, or two interleaved long sessions.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import U16, U32

CONN_SLOTS = 2
NEW_CONNECTION = 0
DUPLICATE = 1
CONTINUATION = 2
NO_CONNECTION = np.uint32(0xFFFF_FFFF)  # start of an empty slot

# conn_times columns
START, END, SEQ, PIECE = 0, 1, 2, 3
CONN_FIELDS = 4


@njit(cache=True, nogil=True)
def match_connection(
    conn_port: U16, conn_times: U32, row: int, src_port: int, start_rel: int, end_rel: int,
    dup_tol_ms: int, gap_ms: int,
) -> tuple[int, int]:  # fmt: skip
    """(kind, slot). For NEW_CONNECTION, ``slot`` is the one to overwrite (empty or oldest)."""
    oldest_slot = 0
    oldest_end = 1 << 40
    for s in range(CONN_SLOTS):
        known_start = conn_times[row, s, START]
        if known_start == NO_CONNECTION:
            oldest_slot, oldest_end = s, -1
            continue
        known_end = int(conn_times[row, s, END])
        if conn_port[row, s] == src_port:
            known = np.int64(known_start)
            if known - dup_tol_ms < start_rel <= known_end + gap_ms:
                if start_rel < np.int64(conn_times[row, s, PIECE]) + dup_tol_ms:
                    kind = DUPLICATE
                else:
                    kind = CONTINUATION
                    conn_times[row, s, PIECE] = np.uint32(start_rel)
                if end_rel > known_end:
                    conn_times[row, s, END] = np.uint32(end_rel)
                return kind, s
        if known_end < oldest_end:
            oldest_slot, oldest_end = s, known_end
    return NEW_CONNECTION, oldest_slot


@njit(cache=True, nogil=True)
def remember_connection(
    conn_port: U16, conn_times: U32, row: int, slot: int, src_port: int, start_rel: int,
    end_rel: int, seq: int,
) -> None:  # fmt: skip
    conn_port[row, slot] = src_port
    conn_times[row, slot, START] = np.uint32(start_rel)
    conn_times[row, slot, END] = np.uint32(max(start_rel, end_rel))
    conn_times[row, slot, SEQ] = np.uint32(seq)
    conn_times[row, slot, PIECE] = np.uint32(start_rel)
