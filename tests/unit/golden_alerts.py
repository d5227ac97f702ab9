"""A fixed set of real alerts, one of each kind an encoding treats apart, made by the detector.

Every jitter shape, an update after a sleep change, check-ins of two connections, sampled
flows, a direction read from the records and one inferred from the ports, IPv6, UDP, a
destination several sources contact, and a long connection. The golden encodings of these
alerts (`test_alert_encodings_golden`) pin every byte the service and the CLI write.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from beaconwatch.alerting.alert import Alert
from beaconwatch.config import Config
from beaconwatch.core.detector import Detector
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.flows import INITIATOR_SRC, INITIATOR_UNKNOWN, FlowBatch
from tests.unit.flowgen import T0_MS, WALL_MS, poisson_rows
from tests.unit.test_long_connections import C2, sessions

# (start_ms, src, dst, dst_port, proto, bytes, src_port, end_ms, sampling_rate, initiator)
Flow = tuple[int, str, str, int, int, int, int, int, int, int]
BATCH_FLOWS = 40  # the detector sees the flows in batches, as from Kafka


@dataclasses.dataclass(frozen=True)
class Pair:
    src: str
    dst: str
    port: int
    sleeps_s: list[float]  # time from one check-in to the next
    proto: int = 6
    size_b: int = 800
    per_check_in: int = 1  # connections opened together at each check-in
    sampling_rate: int = 1
    initiator: int = INITIATOR_UNKNOWN

    def flows(self, seed: int) -> list[Flow]:
        rng = np.random.default_rng(seed)
        out: list[Flow] = []
        t_ms = float(T0_MS)
        for n, sleep_s in enumerate(self.sleeps_s):
            t_ms += sleep_s * 1000
            for c in range(self.per_check_in):
                start = int(t_ms) + 9_000 * c  # a retry 9 s after the first attempt
                size = self.size_b + int(rng.integers(0, 24))
                port = 40_000 + (n * self.per_check_in + c) % 20_000
                out.append((start, self.src, self.dst, self.port, self.proto, size, port,
                            start + 200, self.sampling_rate, self.initiator))  # fmt: skip
        return out


def _sleeps(rng: np.random.Generator, shape: str, period_s: float, jitter: float, n: int,
            missed_every: int = 0) -> list[float]:  # fmt: skip
    u = rng.uniform(0.0, 1.0, n)
    if shape == "subtractive":
        sleeps = period_s * (1.0 - jitter * u)
    elif shape == "additive":
        sleeps = period_s * (1.0 + jitter * u)
    else:
        sleeps = period_s * (1.0 + jitter * (2.0 * u - 1.0))
    # Each missed check-in doubles a gap.
    beats = [2 if missed_every and k % missed_every == missed_every - 1 else 1 for k in range(n)]
    return [float(s * b) for s, b in zip(sleeps, beats, strict=True)]


def _pairs() -> list[Pair]:
    rng = np.random.default_rng(16)
    return [
        Pair("10.0.20.1", "203.0.113.50", 443, _sleeps(rng, "subtractive", 60, 0.4, 60),
             initiator=INITIATOR_SRC),
        Pair("10.0.20.2", "203.0.113.51", 8080, _sleeps(rng, "additive", 300, 0.5, 40)),
        Pair("10.0.20.3", "198.51.100.11", 8443, _sleeps(rng, "symmetric", 80, 0.05, 45, 4)),
        Pair("10.0.20.4", "198.51.100.77", 53, [30.0] * 60, proto=17, size_b=120),
        Pair("fd00::5", "2001:db8:ff::77", 443, _sleeps(rng, "symmetric", 120, 0.1, 40)),
        Pair("10.0.20.6", "203.0.113.52", 443, _sleeps(rng, "subtractive", 90, 0.1, 50),
             sampling_rate=100),
        Pair("10.0.20.7", "203.0.113.53", 443, _sleeps(rng, "symmetric", 60, 0.05, 40),
             per_check_in=2, size_b=66),
        # The sleep changes mid-run: a first alert, then an update of the same series.
        Pair("10.0.20.8", "203.0.113.54", 443,
             _sleeps(rng, "subtractive", 60, 0.2, 70) + _sleeps(rng, "subtractive", 600, 0.2, 24),
             initiator=INITIATOR_SRC),
        # Two sources, one destination: prevalence above one source.
        Pair("10.0.20.9", "203.0.113.60", 443, _sleeps(rng, "symmetric", 45, 0.3, 60)),
        Pair("10.0.20.10", "203.0.113.60", 443, _sleeps(rng, "symmetric", 45, 0.3, 60)),
    ]  # fmt: skip


def _batch(flows: list[Flow]) -> FlowBatch:
    start, src, dst, port, proto, size, src_port, end, sampling, initiator = zip(
        *flows, strict=True
    )
    s = np.array([ip_to_halves(a) for a in src], dtype=np.uint64)
    d = np.array([ip_to_halves(a) for a in dst], dtype=np.uint64)
    return FlowBatch.from_columns(
        start_ms=start, end_ms=end, src_hi=s[:, 0], src_lo=s[:, 1], dst_hi=d[:, 0],
        dst_lo=d[:, 1], src_port=src_port, dst_port=port, proto=proto, bytes=size,
        sampling_rate=sampling, initiator=initiator,
    )  # fmt: skip


@functools.cache
def golden_alerts() -> tuple[Alert, ...]:
    flows: list[Flow] = []
    for seed, pair in enumerate(_pairs()):
        flows += pair.flows(seed)
    flows += [(*r, 33_000 + i, r[0], 1, INITIATOR_UNKNOWN)  # human background
              for i, r in enumerate(poisson_rows("10.0.1.1", ["198.51.100.1", "198.51.100.2"],
                                                 mean_gap_s=120, count=300, seed=3))]  # fmt: skip
    flows += [(*r, 1, INITIATOR_UNKNOWN) for r in sessions(*C2, starts_h=[1, 9, 17, 25], hours=3)]
    flows.sort()
    det = Detector(Config(), wall_clock_ms=lambda: WALL_MS)
    alerts: list[Alert] = []
    for i in range(0, len(flows), BATCH_FLOWS):
        alerts += det.process(_batch(flows[i : i + BATCH_FLOWS])).alerts
    # Two in three as from Kafka partitions 0 and 1 (the Kafka adapter sets it), one as
    # from a file (no partition).
    return tuple(
        dataclasses.replace(a, partition=n % 3) if n % 3 != 2 else a for n, a in enumerate(alerts)
    )
