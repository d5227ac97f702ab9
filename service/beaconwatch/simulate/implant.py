"""The one implant timing model: a C2 framework's jitter shape -> sleeps -> check-in times.

An implant sleeps, checks in, sleeps again: t[k+1] = t[k] + sleep[k] + rtt[k], where the sleep
follows the framework's jitter model and rtt is the few tens of ms the check-in itself takes.
Missed check-ins (host suspended, proxy error) drop a check-in but keep the schedule. The
demo's implants (`profiles.BeaconProfile`, one sleep at a time) and the evaluation's grid
(`checkin_times_ms`, vectorised) draw their sleeps from the same `sleeps_s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from beaconwatch.domain.dtypes import F64, I64
from beaconwatch.scoring.periodicity import Shape

# Jitter shapes as the detector reads them (`periodicity.Shape`): subtractive (Cobalt Strike:
# sleep uniform in [S(1-j), S]), additive (Sliver: S + U[0, jS)), symmetric (Empire, PoshC2,
# Havoc: S(1 +/- j)), or none: a fixed timer, as Meterpreter-like transports poll.
POLLING = Shape.NONE
POLLING_PERIOD_S = 10  # Meterpreter-like transports poll about every 10 s when idle
RTT_MEAN_S = 0.04  # time a check-in takes before the implant sleeps again

U = TypeVar("U", float, F64)


def sleeps_s(shape: Shape, period_s: float, jitter: float, u: U) -> U:
    """Sleep lengths for uniforms ``u`` in [0, 1) (one float, or an array) under ``shape``."""
    if shape is Shape.SUBTRACTIVE:
        return period_s * (1.0 - jitter * u)
    if shape is Shape.ADDITIVE:
        return period_s + jitter * period_s * u
    if shape is Shape.SYMMETRIC:
        return period_s * (1.0 + jitter * (2.0 * u - 1.0))
    return u * 0.0 + float(period_s)  # a fixed timer, shaped like ``u``


def interval_bounds_s(shape: Shape, period_s: float, jitter: float) -> tuple[float, float]:
    """Shortest and longest sleep the jitter shape allows."""
    if shape is Shape.SUBTRACTIVE:
        return period_s * (1.0 - jitter), float(period_s)
    if shape is Shape.ADDITIVE:
        return float(period_s), period_s * (1.0 + jitter)
    if shape is Shape.SYMMETRIC:
        return period_s * (1.0 - jitter), period_s * (1.0 + jitter)
    return float(period_s), float(period_s)


@dataclass(frozen=True, slots=True)
class Schedule:
    shape: Shape
    period_s: int
    jitter: float
    missed: float
    period2_s: int = 0  # if > 0: the operator changes the sleep to this half-way through


def checkin_times_ms(
    rng: np.random.Generator, schedule: Schedule, start_ms: int, end_ms: int
) -> I64:
    """Check-in start times in [start_ms, end_ms), after misses."""
    s = schedule
    shortest = min(
        interval_bounds_s(s.shape, p, s.jitter)[0] for p in (s.period_s, s.period2_s or s.period_s)
    )
    span_s = (end_ms - start_ms) / 1000.0
    n = int(span_s / max(shortest, 0.5)) + 2
    u = rng.random(n)
    sleep = sleeps_s(s.shape, s.period_s, s.jitter, u)
    if s.period2_s:
        sleep2 = sleeps_s(s.shape, s.period2_s, s.jitter, u)
        # The sleep changes once the first half of the run has passed.
        t_first = np.cumsum(sleep)
        sleep = np.where(t_first < span_s / 2, sleep, sleep2)
    if s.shape is POLLING:
        sleep = sleep + rng.normal(0.0, 0.15, n)  # request handling time on the handler
    sleep = sleep + rng.exponential(RTT_MEAN_S, n)
    # Random phase: the implant was started some time before the run began.
    phase_s = rng.uniform(0.0, s.period_s)
    t_s = phase_s + np.concatenate(([0.0], np.cumsum(sleep[:-1])))
    times = start_ms + np.round(t_s * 1000.0).astype(np.int64)
    times = times[times < end_ms]
    if s.missed > 0:
        times = times[rng.random(times.shape[0]) >= s.missed]
    return times


def checkin_bytes(
    rng: np.random.Generator, n: int, base_bytes: int, padding_bytes: int = 0
) -> npt.NDArray[np.int64]:
    """Check-in sizes: a fixed request plus a few bytes of header noise, plus optional
    random padding of up to ``padding_bytes`` (Cobalt Strike's data_jitter)."""
    sizes = base_bytes + rng.integers(-8, 9, n)
    if padding_bytes:
        sizes = sizes + rng.integers(0, padding_bytes, n)
    return sizes.astype(np.int64)
