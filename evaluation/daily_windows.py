"""How many benign three-connection windows pass each gate of `scoring.daily` (issue 14 step 6).

A 24 h beacon shows 3 check-ins in the long window (72 h). Before a rule scores such windows,
this counts what it would see: every pair's first three connections after it starts being
tracked (the idle sweep's rule: a pair of one connection is dropped after the window and a
quarter, one of more after the long window), when they span at least two slow intervals (the
detector's trigger for slow pairs), on

- the synthetic background of `make eval` (benign pairs of 2,000 host-days),
- the hard case "slow beacon: 24 h sleep within 72 h" (its planted pair, 20 seeds).

Prevalence is approximated by the distinct internal sources that reached the destination
before the window's last connection (the detector's sketch counts only tracked pairs, so it
can be lower). Run: ``.venv/bin/python -m evaluation.daily_windows`` (about 2 minutes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from beaconwatch.config import Config
from beaconwatch.domain.dtypes import F64, I64
from beaconwatch.scoring.daily import (
    ALL_GATES,
    GATE_LONG,
    GATE_REGULAR,
    GATE_SIZES,
    MIN_BYTES,
    SIZE_SPREAD_LN,
    gates_of_windows,
)

HOUR_MS = 3_600_000
MIN_INTERVAL_S = 18 * 3600.0  # long window / 4: shorter rhythms show 4+ connections in 72 h
MAX_DEVIATION = 0.1  # 10 % symmetric jitter: r <= 0.1


@dataclass(frozen=True, slots=True)
class Windows:
    pair: I64  # pair id of each window
    times_s: F64  # (k, 3) connection starts
    sizes: F64  # (k, 3) byte counts


def _segments(times: I64, window_ms: int, long_window_ms: int) -> Iterator[int]:
    """Index of the third connection of each tracked life of one pair (sorted starts)."""
    n = 0
    for i in range(times.shape[0]):
        if n:
            gap = int(times[i] - times[i - 1])
            if gap > long_window_ms or (n < 2 and gap > window_ms):
                n = 0  # evicted while idle: a new pair
        n += 1
        if n == 3:
            yield i


def three_connection_windows(
    pair: I64, start_ms: I64, src_port: I64, nbytes: F64, window_ms: int, long_window_ms: int,
    min_span_ms: int,
) -> Windows:  # fmt: skip
    """The windows of each pair's first three connections per tracked life, spanning at least
    ``min_span_ms``. Records repeating the pair's last source port are the same connection
    (an exporter duplicate or an active-timeout piece), as the detector merges them."""
    order = np.lexsort((start_ms, pair))
    pair, start_ms, src_port, nbytes = pair[order], start_ms[order], src_port[order], nbytes[order]
    repeat = np.zeros(pair.shape[0], dtype=np.bool_)
    repeat[1:] = (pair[1:] == pair[:-1]) & (src_port[1:] == src_port[:-1])
    pair, start_ms, nbytes = pair[~repeat], start_ms[~repeat], nbytes[~repeat]
    bounds = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1], True])
    ids, times, sizes = [], [], []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if b - a < 3:
            continue
        t = start_ms[a:b]
        for i in _segments(t, window_ms, long_window_ms):
            if t[i] - t[i - 2] >= min_span_ms:
                ids.append(int(pair[a]))
                times.append(t[i - 2 : i + 1] / 1000.0)
                sizes.append(nbytes[a + i - 2 : a + i + 1])
    return Windows(
        np.array(ids, dtype=np.int64),
        np.array(times, dtype=np.float64).reshape(-1, 3),
        np.array(sizes, dtype=np.float64).reshape(-1, 3),
    )


def sources_before(
    dst_key: I64, src: I64, start_ms: I64, query_key: I64, query_ms: I64
) -> npt.NDArray[np.int64]:  # fmt: skip
    """Distinct sources that reached each queried destination at or before its time."""
    first: dict[tuple[int, int], int] = {}
    for k, s, t in zip(dst_key.tolist(), src.tolist(), start_ms.tolist(), strict=True):
        if (k, s) not in first or t < first[(k, s)]:
            first[(k, s)] = t
    by_dst: dict[int, list[int]] = {}
    for (k, _), t in first.items():
        by_dst.setdefault(k, []).append(t)
    sorted_firsts = {k: np.sort(np.array(v)) for k, v in by_dst.items()}
    return np.array(
        [int(np.searchsorted(sorted_firsts.get(k, np.empty(0)), t, side="right"))
         for k, t in zip(query_key.tolist(), query_ms.tolist(), strict=True)],
        dtype=np.int64,
    )  # fmt: skip


def gate_table(gates: I64, sources: I64) -> list[tuple[str, int]]:
    """Windows passing each cumulative combination of gates."""
    long = (gates & GATE_LONG) > 0
    regular = long & ((gates & GATE_REGULAR) > 0)
    every = (gates & ALL_GATES) == ALL_GATES
    return [
        ("three connections spanning >= 2 h", int(gates.shape[0])),
        ("both intervals >= 18 h", int(long.sum())),
        ("... and r <= 0.1", int(regular.sum())),
        ("... and destination reached by no other host", int((regular & (sources <= 1)).sum())),
        ("... and sizes within 5 % (prevalence not asked)", int(every.sum())),
        ("... and sizes within 5 % and no other host", int((every & (sources <= 1)).sum())),
        ("any window with sizes within 5 %", int(((gates & GATE_SIZES) > 0).sum())),
    ]


def _single_idle_ms(config: Config) -> int:
    """When the idle sweep drops a pair of one connection (`Detector`)."""
    window_ms = int(config.state.window_s * 1000)
    return window_ms + (window_ms // 4 if config.alerting.sparse_min_interval_s > 0 else 0)


def _gates(w: Windows, two_of_three: bool) -> I64:
    return gates_of_windows(w.times_s, w.sizes, MIN_INTERVAL_S, MAX_DEVIATION,
                            SIZE_SPREAD_LN, MIN_BYTES, two_of_three)  # fmt: skip


def background(config: Config) -> tuple[float, dict[bool, list[tuple[str, int]]]]:
    from evaluation.scenarios import ScenarioSpec, build_scenario
    from evaluation.truth import Kind

    sc = build_scenario(ScenarioSpec())
    f = sc.flows
    pair = sc.flow_pair.astype(np.int64)
    benign = sc.pair_kind[pair] == int(Kind.BENIGN)
    st = config.state
    w = three_connection_windows(
        pair[benign], f.start_ms[benign].astype(np.int64), f.src_port[benign].astype(np.int64),
        f.bytes[benign].astype(np.float64), _single_idle_ms(config), int(st.long_window_s * 1000),
        int(2 * config.scoring.slow_interval_s * 1000),
    )  # fmt: skip
    dst_key = (sc.pair_dst.astype(np.int64) << 24) | (sc.pair_port.astype(np.int64) << 8)
    dst_key |= sc.pair_proto.astype(np.int64)
    sources = sources_before(
        dst_key[pair], sc.pair_src[pair].astype(np.int64), f.start_ms.astype(np.int64),
        dst_key[w.pair], (w.times_s[:, 2] * 1000).astype(np.int64),
    )  # fmt: skip
    return sc.host_days, {two: gate_table(_gates(w, two), sources) for two in (False, True)}


def daily_case(config: Config, runs: int = 20) -> dict[bool, list[int]]:
    """Runs of the 24 h hard case whose planted pair has a window passing every gate (the
    destination is new to the network by construction), and whose pair holds 3 at all."""
    from evaluation import hard_cases as hc

    st = config.state
    out: dict[bool, list[int]] = {False: [0, 0], True: [0, 0]}
    for seed in range(runs):
        rows = hc._slow(np.random.default_rng(seed), 24, 72)
        w = three_connection_windows(
            np.zeros(len(rows), dtype=np.int64), np.array([r.start_ms for r in rows]),
            np.array([r.src_port for r in rows]), np.array([float(r.bytes) for r in rows]),
            _single_idle_ms(config), int(st.long_window_s * 1000),
            int(2 * config.scoring.slow_interval_s * 1000),
        )  # fmt: skip
        for two in (False, True):
            g = _gates(w, two)
            out[two][0] += int(g.shape[0] > 0)
            out[two][1] += int(((g & ALL_GATES) == ALL_GATES).any())
    return out


def main() -> None:
    config = Config()
    host_days, tables = background(config)
    case = daily_case(config)
    print(f"Benign three-connection windows, synthetic background ({host_days:,.0f} host-days)")
    print("\n| gate | all 3 sizes | 2 of 3 sizes |\n|---|---|---|")
    for (name, all3), (_, two) in zip(tables[False], tables[True], strict=True):
        print(f"| {name} | {all3} | {two} |")
    for two in (False, True):
        held, passed = case[two]
        print(f"\n24 h hard case ({'2 of 3' if two else 'all 3'} sizes): {held}/20 runs hold "
              f"3 check-ins in one tracked life, {passed}/20 pass every gate")  # fmt: skip


if __name__ == "__main__":
    main()
