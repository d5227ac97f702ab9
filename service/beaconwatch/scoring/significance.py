"""How sure we are that a window is periodic at all: a Monte-Carlo test against Poisson arrivals.

The statistic is the fit quality of `periodicity.fit_window` (relative spread of the folded
single-beat intervals + outlier share + missed ratio; lower = more regular). Its null
distribution is simulated per window length: Poisson arrivals (exponential intervals, at ms
resolution like the ring buffer) run through exactly the same kernel, folding, re-folding and
regime choice included, so the freedom the fit has (choosing a period, calling intervals
missed beats or outliers) is paid for in the p-value.

Tables hold quantiles at fixed levels, not the simulated statistics: the detector tests about
1e5 windows per 2,000 host-days of browsing (which is Poisson), so p-values must resolve down to
about 5e-6, i.e. 200,000 simulated windows per length; storing them would cost 100 MB and
simulating them 30-60 s per table at start-up. The levels are

    P_LEVELS[j] = 10 ** (-(63 - j) / 12),  j = 0..63:  5.6e-6 (10^-5.25) ... 0.1, ..., 1.0,
    correctly rounded (`level`) so that they are the same on every CPU,

12 per decade (steps of 21 %), so 1e-5, 1e-4, ..., 0.1 are levels exactly; the lowest is the
first twelfth of a decade above 1 / (NULL_SHIPPED_SIMS + 1). From the sorted null statistics
x_(1) <= ... <= x_(N) of N simulations, entry [m, j] of a table is x_(r), r = floor(P_j (N + 1))
(1-based rank): -inf when r = 0 (the level is below 1 / (N + 1), no simulation resolves it, and
it can never be claimed), +inf when r > N (P_j = 1). The p-value of a statistic s is the first
level j with s < entry [m, j]:

    p = P_LEVELS[j],  confidence = 1 - p.

s < x_(r) means at most r - 1 null statistics are <= s, so the plain Monte-Carlo p-value
(1 + #{null <= s}) / (N + 1) is <= r / (N + 1) <= P_j, and it is > P_{j-1}: the reported p is the
Monte-Carlo p-value rounded up to the next level (conservative, at most 21 % too large).
That bound holds over the simulation's randomness; one fixed table's entry x_(r) has a true tail
share of r / (N + 1) give or take a relative 1 / sqrt(r): 7 % at 1e-3, 22 % at 1e-4 and 70 % at
1e-5 for the shipped tables (r = 200, 20, 2), so the deepest levels are rough.

The detector's two tables (every connection, every second one) are built once with
NULL_SHIPPED_SIMS simulations by ``bench/build_null_tables.py`` (``make null-tables``) and
shipped in ``null_quantiles.npz`` with a fingerprint of everything the null statistic depends
on; `detector_null_tables` uses them when the fingerprint matches the current sources, else
simulates NULL_SIMS windows per length (p-values only down to about 5.6e-4) and logs a warning.

Why not a Rayleigh test of the interval phases 2 pi d / p: under uniform jitter of width w its
resultant length is |sinc(w / p)|, about 0.41 at 50 % subtractive jitter and 0.16 at 75 %, while
Poisson intervals at their median give about 0.11; with 10-30 intervals it cannot tell a 75 %
jittered beacon from browsing. The resultant length is still reported (`phase_resultant`).

Windows longer than `NULL_MAX_INTERVALS` use the last row; the statistic of Poisson arrivals
grows with the window, so this is conservative (p-values too large, never too small).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Callable
from decimal import Decimal, localcontext
from functools import lru_cache
from pathlib import Path

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64
from beaconwatch.scoring import kernels, periodicity
from beaconwatch.scoring.kernels import kernel_source
from beaconwatch.scoring.periodicity import N_FIT, Fit, fit_window

log = logging.getLogger(__name__)

NULL_SIMS = 2000  # fallback when the shipped table is stale: p down to 5.6e-4, ~1 s per table
NULL_SHIPPED_SIMS = 200_000  # the shipped tables: p down to 5.6e-6
NULL_SEED = 20260301
NULL_MAX_INTERVALS = 64  # building rows is O(sims * m log m); longer windows reuse the last row
NULL_MEAN_INTERVAL_S = 600.0  # scale of the null arrivals; the statistic is scale-free above
# the kernel's 50 ms tolerance
NULL_TICKS_PER_S = 1000.0  # null arrivals are rounded to ms, like the ring buffer's times
NULL_CHUNK_SIMS = 25_000  # windows simulated at once: bounds the gap arrays to ~13 MB
MIN_INTERVALS = 3

LEVELS_PER_DECADE = 12
N_LEVELS = 64


def level(j: int) -> float:
    """P_LEVELS[j]: 10 ** e correctly rounded, e = the double nearest -(63 - j) / 12.

    Computed in decimal (50 digits), never by numpy or libm: numpy's vectorised ``power``
    takes other SIMD paths on other CPUs (with AVX-512 it gave 3 of the 64 levels another last
    bit), and then the shipped tables' fingerprint and every p-value would depend on the
    machine. These are the levels the shipped tables were built with, bit for bit.
    """
    exponent = -(N_LEVELS - 1 - j) / LEVELS_PER_DECADE  # one IEEE division: the same everywhere
    with localcontext() as ctx:
        ctx.prec = 50
        return float(Decimal(10) ** Decimal(exponent))


P_LEVELS: F64 = np.array([level(j) for j in range(N_LEVELS)], dtype=np.float64)
P_LEVELS.flags.writeable = False


def levels_fingerprint() -> str:
    """The levels as their definition and little-endian bits (no float repr, no byte order)."""
    definition = (inspect.getsource(level), N_LEVELS, LEVELS_PER_DECADE)
    bits = P_LEVELS.astype("<f8").tobytes().hex()
    return hashlib.sha256(f"{definition!r}/{bits}".encode()).hexdigest()


SHIPPED_PATH = Path(__file__).with_name("null_quantiles.npz")
SHIPPED_CYCLES = (1, 2)  # events_per_cycle of the detector's tables, in this order
REBUILD_HINT = "make null-tables"


@njit(cache=True, nogil=True)
def fit_statistic(fit: F64) -> float:
    """The test statistic of a fit: its quality (lower = more regular)."""
    return float(fit[Fit.QUALITY])


@njit(cache=True, nogil=True)
def _null_stats(gaps_s: F64, out: F64) -> None:
    """Statistics of the Poisson windows with the intervals in the rows of ``gaps_s``."""
    sims, m = gaps_s.shape
    times_s = np.empty(m + 1)
    work = np.empty((4, m + 1))
    fit = np.empty(N_FIT)
    fit_recent = np.empty(N_FIT)
    for s in range(sims):
        t = 0.0
        times_s[0] = 0.0
        for i in range(m):
            t += gaps_s[s, i]
            times_s[i + 1] = np.floor(t * NULL_TICKS_PER_S + 0.5) / NULL_TICKS_PER_S
        fit_window(times_s, work, fit, fit_recent)
        out[s] = fit_statistic(fit)


def null_rng(seed: int, intervals: int, events_per_cycle: int) -> np.random.Generator:
    """One independent stream per row, so rows can be built in any order or process."""
    return np.random.default_rng([seed, events_per_cycle, intervals])


def null_gaps(rng: np.random.Generator, sims: int, intervals: int, events_per_cycle: int) -> F64:
    """Intervals between every ``events_per_cycle``-th Poisson arrival: gamma(k) gaps."""
    shape = (sims, intervals)
    if events_per_cycle == 1:
        return rng.exponential(NULL_MEAN_INTERVAL_S, size=shape)
    return rng.gamma(float(events_per_cycle), NULL_MEAN_INTERVAL_S, size=shape)


def simulate_null(
    rng: np.random.Generator,
    intervals: int,
    events_per_cycle: int,
    statistics: Callable[[F64, F64], None],
    out: F64,
) -> None:
    """Fill ``out[..., s]`` with ``statistics(gaps, out_chunk)`` of Poisson windows s, simulated
    NULL_CHUNK_SIMS at a time (the gap arrays stay small); the windows are ``out``'s last axis."""
    sims = out.shape[-1]
    for lo in range(0, sims, NULL_CHUNK_SIMS):
        hi = min(lo + NULL_CHUNK_SIMS, sims)
        statistics(null_gaps(rng, hi - lo, intervals, events_per_cycle), out[..., lo:hi])


def null_statistics(intervals: int, sims: int, seed: int, events_per_cycle: int = 1) -> F64:
    """Sorted null statistics of ``sims`` Poisson windows of ``intervals`` intervals."""
    stats = np.empty(sims)
    simulate_null(null_rng(seed, intervals, events_per_cycle), intervals, events_per_cycle,
                  _null_stats, stats)  # fmt: skip
    stats.sort()
    return stats


def quantile_row(stats_sorted: F64) -> F64:
    """x_(r), r = floor(P_j (N + 1)), of N sorted statistics; -inf if r = 0, +inf if r > N."""
    sims = stats_sorted.shape[0]
    ranks = np.floor(P_LEVELS * (sims + 1.0)).astype(np.int64)
    row = np.full(N_LEVELS, np.inf)
    row[ranks == 0] = -np.inf
    inside = (ranks >= 1) & (ranks <= sims)
    row[inside] = stats_sorted[ranks[inside] - 1]
    return row


def null_quantile_row(intervals: int, sims: int, seed: int, events_per_cycle: int = 1) -> F64:
    """Row ``intervals`` of a quantile table (the unit `bench/build_null_tables.py` farms out)."""
    return quantile_row(null_statistics(intervals, sims, seed, events_per_cycle))


def table_rows(history_events: int) -> int:
    """Rows of the table for windows of up to ``history_events`` connections."""
    return min(max(history_events - 1, MIN_INTERVALS), NULL_MAX_INTERVALS) + 1


def empty_table(rows: int) -> F64:
    """A table whose rows all claim nothing (p = 1); rows below `MIN_INTERVALS` stay so."""
    table = np.full((rows, N_LEVELS), -np.inf)
    table[:, -1] = np.inf
    return table


@lru_cache(maxsize=8)
def null_table(
    history_events: int, sims: int = NULL_SIMS, seed: int = NULL_SEED, events_per_cycle: int = 1
) -> F64:
    """Null quantiles, shape (rows, N_LEVELS): row m = windows of m intervals.

    Deterministic for given arguments; built once per process (about 1 s for 32 events at
    NULL_SIMS) and read-only, since it is shared by every caller.
    ``events_per_cycle`` = k tests every k-th event of Poisson arrivals (gamma(k) gaps), the null
    of `window_score.score_window_paired`, which scores every second connection.
    """
    rows = table_rows(history_events)
    table = empty_table(rows)
    for m in range(MIN_INTERVALS, rows):
        table[m] = null_quantile_row(m, sims, seed, events_per_cycle)
    table.flags.writeable = False
    return table


@njit(cache=True, nogil=True)
def p_value(table: F64, intervals: int, statistic: float) -> float:
    """The first level P_LEVELS[j] with ``statistic`` < table[intervals, j] (1.0 if none)."""
    if intervals < MIN_INTERVALS or table.shape[0] <= MIN_INTERVALS or not statistic < np.inf:
        return 1.0
    row = table[min(intervals, table.shape[0] - 1)]
    j = np.searchsorted(row, statistic, side="right")
    if j >= P_LEVELS.shape[0]:
        return 1.0
    return float(P_LEVELS[j])


@njit(cache=True, nogil=True)
def best_p_value(table: F64) -> float:
    """The smallest p-value ``table`` can give: its lowest resolvable (finite) level."""
    if table.shape[0] <= MIN_INTERVALS:
        return 1.0
    row = table[table.shape[0] - 1]  # every row of a table had the same number of simulations
    for j in range(row.shape[0]):
        if row[j] > -np.inf:
            return float(P_LEVELS[j])
    return 1.0


def null_fingerprint() -> str:
    """sha256 of everything the null statistic and the table's levels depend on."""
    h = hashlib.sha256()
    h.update(inspect.getsource(periodicity).encode())
    kernels_used = (kernels.quantile_sorted, kernels.median_sorted, kernels.sort_small)
    for kernel in (*kernels_used, fit_statistic, _null_stats):
        h.update(kernel_source(kernel).encode())
    for fn in (null_gaps, simulate_null, null_statistics, quantile_row):
        h.update(inspect.getsource(fn).encode())
    constants = (MIN_INTERVALS, NULL_MEAN_INTERVAL_S, NULL_TICKS_PER_S, levels_fingerprint())
    h.update(repr(constants).encode())
    return h.hexdigest()


def write_shipped(
    path: Path, tables: F64, sims: int, seed: int, fingerprint: str | None = None
) -> None:
    """Save the detector's tables, shape (len(SHIPPED_CYCLES), [statistics,]
    NULL_MAX_INTERVALS + 1, N_LEVELS), with the fingerprint of the statistics they were
    simulated from (default: the fit's)."""
    np.savez_compressed(
        path,
        tables=tables,
        events_per_cycle=np.array(SHIPPED_CYCLES),
        sims=np.int64(sims),
        seed=np.int64(seed),
        p_levels=P_LEVELS,
        max_intervals=np.int64(NULL_MAX_INTERVALS),
        fingerprint=np.str_(fingerprint or null_fingerprint()),
    )


@lru_cache(maxsize=4)
def read_shipped(
    path: Path = SHIPPED_PATH, fingerprint: str | None = None
) -> tuple[F64 | None, str]:
    """(read-only tables, "") when ``path`` matches the current sources (``fingerprint``,
    default the fit statistic's), else (None, why not)."""
    if not path.is_file():
        return None, f"{path.name} is missing"
    with np.load(path, allow_pickle=False) as f:
        if str(f["fingerprint"]) != (fingerprint or null_fingerprint()):
            return None, f"{path.name} was built from other sources of the null statistic"
        tables = np.array(f["tables"], dtype=np.float64)
        same = (
            np.array_equal(f["p_levels"], P_LEVELS)
            and tuple(f["events_per_cycle"].tolist()) == SHIPPED_CYCLES
            and tables.shape[0] == len(SHIPPED_CYCLES)
            and tables.shape[-2:] == (NULL_MAX_INTERVALS + 1, N_LEVELS)
        )
    if not same:
        return None, f"{path.name} has another layout"
    tables.flags.writeable = False
    return tables, ""


def detector_null_tables(history_events: int, path: Path = SHIPPED_PATH) -> F64:
    """The detector's tables, shape (2, table_rows(history_events), N_LEVELS), writable.

    [0] for every connection, [1] for every second one (`window_score.score_window_paired`):
    the shipped ones when they are current, else simulated now with NULL_SIMS (with a warning).
    """
    return shipped_or_simulated(
        history_events, path, null_fingerprint(), null_table, NULL_SIMS, "Poisson null"
    )


def shipped_or_simulated(
    history_events: int,
    path: Path,
    fingerprint: str,
    simulate: Callable[..., F64],
    sims: int,
    what: str,
) -> F64:
    """The shipped tables at ``path`` cut to ``history_events``, shape (len(SHIPPED_CYCLES),
    [statistics,] table_rows(history_events), N_LEVELS), writable; when they do not match
    ``fingerprint``, ``simulate(history_events, events_per_cycle=k)`` for each cycle, with a
    warning."""
    rows = table_rows(history_events)
    shipped, why = read_shipped(path, fingerprint)
    if shipped is not None:
        return np.array(shipped[..., :rows, :], copy=True)
    tables = np.stack([simulate(history_events, events_per_cycle=k) for k in SHIPPED_CYCLES])
    log.warning(
        "shipped %s table is stale (%s): simulated %d windows per length instead, so "
        "p-values stop at %.2g (confidence %.6f); rebuild it with `%s`",
        what, why, sims, best_p_value(tables.reshape(-1, *tables.shape[-2:])[0]),
        1.0 - best_p_value(tables.reshape(-1, *tables.shape[-2:])[0]), REBUILD_HINT,
    )  # fmt: skip
    return tables


@njit(cache=True, nogil=True)
def phase_resultant(d: F64, period_s: float) -> float:
    """Rayleigh resultant length |mean exp(2 pi i d / period)| of the intervals ``d``."""
    m = d.shape[0]
    if m == 0 or period_s <= 0.0:
        return 0.0
    c = 0.0
    s = 0.0
    for i in range(m):
        phase = 2.0 * np.pi * d[i] / period_s
        c += np.cos(phase)
        s += np.sin(phase)
    return float(np.sqrt(c * c + s * s) / m)
