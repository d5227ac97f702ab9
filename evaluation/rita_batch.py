"""RITA v5's view of a scenario: its import filter, its 24 h range, its host pairs.

RITA imports connection logs, drops internal -> internal and external -> internal records,
and scores each (src, dst) host pair over the last 24 h of the import (see `rita`). To put
its scores next to beaconwatch's, each (src, dst, port, proto) pair gets the score of its
host pair.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from beaconwatch.domain.dtypes import F64
from evaluation import rita
from evaluation.truth import Scenario, is_internal

HOUR_S = 3600


def host_pair_scores(
    src: npt.NDArray[np.uint32],
    dst: npt.NDArray[np.uint32],
    start_ms: npt.NDArray[np.int64],
    nbytes: npt.NDArray[np.uint64],
) -> dict[tuple[int, int], rita.RitaScore]:
    """RITA's score of every outbound host pair with enough connections."""
    ts_s = start_ms // 1000
    range_max = int(ts_s.max())
    range_min = max(int(ts_s.min()), range_max - rita.BEACON_RANGE_S)
    # RITA's queries keep whole hours from the hour the range starts in.
    keep = (ts_s >= range_min - range_min % HOUR_S) & ~is_internal(dst) & is_internal(src)
    src, dst, ts_s, size = src[keep], dst[keep], ts_s[keep], nbytes[keep].astype(np.float64)
    key = (src.astype(np.uint64) << np.uint64(32)) | dst.astype(np.uint64)
    order = np.lexsort((ts_s, key))
    key, ts_s, size = key[order], ts_s[order], size[order]
    bounds = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [key.shape[0]]))
    out: dict[tuple[int, int], rita.RitaScore] = {}
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        if hi - lo < rita.UNIQUE_CONNECTION_THRESHOLD:
            continue
        score = rita.beacon_score(ts_s[lo:hi], size[lo:hi], range_min, range_max)
        if score is not None:
            k = int(key[lo])
            out[(k >> 32, k & 0xFFFF_FFFF)] = score
    return out


def scenario_scores(scenario: Scenario) -> F64:
    """RITA's score per labelled pair (NaN where RITA would not score its host pair)."""
    f = scenario.flows
    mask = np.uint64(0xFFFF_FFFF)
    scores = host_pair_scores(
        (f.src_lo & mask).astype(np.uint32),
        (f.dst_lo & mask).astype(np.uint32),
        f.start_ms,
        f.bytes,
    )
    out = np.full(scenario.n_pairs, np.nan)
    for i, (s, d) in enumerate(
        zip(scenario.pair_src.tolist(), scenario.pair_dst.tolist(), strict=True)
    ):
        hit = scores.get((s, d))
        if hit is not None:
            out[i] = hit.score
    return out
