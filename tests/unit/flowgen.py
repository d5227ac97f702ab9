"""Build FlowBatches for core tests from readable tuples."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from beaconwatch.domain.flows import FlowBatch
from beaconwatch.scoring.periodicity import Shape
from beaconwatch.simulate.batch import to_batch
from beaconwatch.simulate.implant import sleeps_s
from beaconwatch.simulate.model import SimFlow

T0_MS = 1_750_000_000_000  # 2025-06-15, a fixed event-time origin
WALL_MS = T0_MS + 365 * 86_400_000  # a "now" far after the test data, for the future check

Row = tuple[int, str, str, int, int, int]  # (start_ms, src, dst, dst_port, proto, bytes)
# With the source port and end time too: (start_ms, src, dst, dst_port, proto, bytes, src_port,
# end_ms). Short rows end where they start and get a fresh ephemeral source port each, so each
# is a connection of its own, as a client opening a new connection per check-in.
FullRow = tuple[int, str, str, int, int, int, int, int]
EPHEMERAL_PORTS = (32768, 60999)


def make_flows(rows: Iterable[Row | FullRow]) -> FlowBatch:
    """The batch of these rows, built as every traffic model builds one (`simulate.batch`)."""
    low, high = EPHEMERAL_PORTS
    full = [
        r if len(r) == 8 else (*r, low + i % (high - low + 1), r[0]) for i, r in enumerate(rows)
    ]
    # The protocol as a decimal string: goflow2's plain-number spelling, any IANA number.
    return to_batch(
        [
            SimFlow(start, end, src, dst, sport, port, str(proto), nbytes, 1)
            for start, src, dst, port, proto, nbytes, sport, end in full
        ]
    )


def beacon_rows(
    src: str, dst: str, *, period_s: float, count: int, jitter: float = 0.0, port: int = 443,
    start_ms: int = T0_MS, size: int = 400, seed: int = 0,
) -> list[Row]:  # fmt: skip
    """``count`` check-ins every ``period_s`` +/- ``jitter`` (fraction, uniform): the symmetric
    shape of the one implant timing model (`simulate.implant`)."""
    rng = np.random.default_rng(seed)
    t = float(start_ms)
    rows = []
    for _ in range(count):
        t += sleeps_s(Shape.SYMMETRIC, period_s * 1000, jitter, rng.random())
        rows.append((int(t), src, dst, port, 6, size + int(rng.integers(0, 16))))
    return rows


def poisson_rows(
    src: str, dsts: list[str], *, mean_gap_s: float, count: int, start_ms: int = T0_MS,
    seed: int = 0,
) -> list[Row]:  # fmt: skip
    """Human-like traffic: exponential gaps, heavy-tailed sizes, a few destinations."""
    rng = np.random.default_rng(seed)
    t = float(start_ms)
    rows = []
    for _ in range(count):
        t += rng.exponential(mean_gap_s * 1000)
        dst = dsts[int(rng.integers(0, len(dsts)))]
        rows.append((int(t), src, dst, 443, 6, int(rng.lognormal(8, 2))))
    return rows
