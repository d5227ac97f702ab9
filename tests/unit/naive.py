"""Slow, obviously-correct NumPy twins of the numba kernels (tested against each other)."""

from __future__ import annotations

import copy
import ipaddress
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from beaconwatch.config import ScoringConfig
from beaconwatch.domain.dtypes import F64
from beaconwatch.scoring.bursts import (
    MIN_JUMP,
    MIN_SHARE,
    TIMER_BETWEEN,
    TIMER_MAX_RUN,
    TIMER_MIN_S,
    TIMER_MULTIPLE_TOL,
    TIMER_TOL_FRACTION,
    TIMER_TOL_MIN_S,
)
from tests.unit import naive_scoring


def quantile(x: F64, q: float) -> float:
    return float(np.percentile(x, q * 100))


def mad(x: F64, center: float) -> float:
    return float(np.median(np.abs(x - center)))


def bowley(x: F64) -> float:
    q1, q2, q3 = np.percentile(x, [25, 50, 75])
    return 0.0 if q3 == q1 else float((q3 + q1 - 2 * q2) / (q3 - q1))


def cv(x: F64) -> float:
    if x.size == 0 or np.std(x) == 0:
        return 0.0
    return float(np.std(x) / abs(np.mean(x)))


def gap_floor(x: F64) -> float:
    """The 10th-percentile value (nearest rank, rounded up) over the median."""
    return naive_scoring.gap_floor(x)


def window_stats(times_s: F64, sizes: F64, tables: F64) -> dict[str, float]:
    """The measured statistics of `score_window` (see tests/unit/naive_scoring.py)."""
    return naive_scoring.window_stats(times_s, sizes, tables)


def window_score(
    times_s: F64,
    sizes: F64,
    *,
    min_period_s: float,
    weights: tuple[float, float, float],
    full_count: float,
    tables: F64,
    spread_free: float | None = None,
    spread_tolerance: float | None = None,
    min_confidence: float | None = None,
    full_confidence: float | None = None,
    missed_allowance: float | None = None,
) -> float:
    """The combined score of `score_window`, written out from the documented formula.

    Unset parameters take the ScoringConfig defaults.
    """
    defaults = ScoringConfig()
    return naive_scoring.window_score(
        times_s,
        sizes,
        tables=tables,
        min_period_s=min_period_s,
        weights=weights,
        full_count=full_count,
        spread_free=defaults.spread_free if spread_free is None else spread_free,
        spread_tolerance=(
            defaults.spread_tolerance if spread_tolerance is None else spread_tolerance
        ),
        min_confidence=defaults.min_confidence if min_confidence is None else min_confidence,
        full_confidence=(defaults.full_confidence if full_confidence is None else full_confidence),
        missed_allowance=(
            defaults.missed_allowance if missed_allowance is None else missed_allowance
        ),
        bulk_rate_bytes_s=defaults.bulk_rate_bytes_s,
    )


def size_roundtrip(nbytes: float) -> float:
    """Sizes as the pair table stores them: log-coded in 16 bits (see state/size_codec.py)."""
    code = min(np.floor(np.log2(1.0 + max(0.0, nbytes)) * 2048.0 + 0.5), 65535)
    return float(np.floor(2.0 ** (code / 2048.0) - 1.0 + 0.5))


def detector_alerts(
    rows: list[tuple[int, int, str, str, int, int]], *, history: int, window_ms: int,
    long_window_ms: int, min_events: int, every: int, interval_ms: int, cooldown_ms: int,
    min_events_slow: int, slow_interval_ms: int, burst_gap_s: float,
    threshold: float,
    score_fn: Callable[[F64, F64], tuple[float, float, tuple[float, float]]], dup_tol_ms: int,
    gap_ms: int,
    prevalence: tuple[int, float, float], sketch_width: int, update: tuple[float, float],
    state: dict[str, dict[str, Any]] | None = None, sources_of: dict[str, set[str]] | None = None,
) -> list[tuple[str, int, float, str]]:  # fmt: skip
    """A dict-of-lists detector with the documented rules: (pair, detected_ms, score, lifecycle).

    rows: (start_ms, end_ms, src, pair, src_port, bytes) in arrival order. Records on the
    same source port that start within `dup_tol_ms` of a remembered connection's start, or
    after it up to `gap_ms` past its end, merge into it (of the last two connections); others
    are new connections. Each pair keeps its last `history` connections; from `min_events` of
    them (or `min_events_slow`, at most one per `slow_interval_ms` since its first), it is
    scored at the
    connection that makes it due, over the kept ones with start >= t - window, in time order;
    when those are fewer than history // 2, over the last history // 2 kept ones with start
    >= t - long_window.
    Scores are multiplied by the prevalence factor of the destination; a pair alerts "new" at
    its first score >= threshold, then "update" when, a cooldown later, the mean interval moved
    by more than update_period_change and a quarter of the last described range, or the score
    rose by update_score_change. Within the cooldown after an alert a pair is not scored at
    all; after a score of 0, or a scoring of an alerted pair that emits nothing, the next
    scoring needs twice as many new connections or twice the interval.
    ``state`` and ``sources_of`` (per pair, per destination): pass the same dicts to carry on
    from an earlier call.
    """
    min_sources, low, high = prevalence
    period_change, score_change = update
    state = {} if state is None else state
    sources_of = {} if sources_of is None else sources_of
    alerts = []
    for t, end, src, pair, port, nbytes in rows:
        s = state.get(pair)
        if s is None:
            s = state[pair] = {"ring": [], "conns": [], "count": 0, "scored_count": 0,
                               "scored_t": t, "alert": None, "first": t}  # fmt: skip
            sources_of.setdefault(pair.split(">")[1], set()).add(src)
        newest = s.get("newest", t)
        s["newest"] = max(newest, t)
        merged = False
        for conn in s["conns"]:
            if conn["port"] == port and conn["start"] - dup_tol_ms < t <= conn["end"] + gap_ms:
                conn["end"] = max(conn["end"], end)
                if t >= conn["piece"] + dup_tol_ms:  # a continuation, not a duplicate
                    conn["piece"] = t
                    if s["count"] - conn["seq"] <= history:
                        entry = s["ring_by_seq"][conn["seq"]]
                        entry[1] = size_roundtrip(entry[1] + nbytes)
                merged = True
                break
        if merged:
            continue
        if t < newest and any(e[0] == t for e in s["ring"]):
            continue  # a late repeat of a connection still in the ring
        conn = {"port": port, "start": t, "piece": t, "end": max(t, end), "seq": s["count"]}
        s["conns"] = sorted([*s["conns"], conn], key=lambda c: c["end"])[-2:]
        entry = [t, size_roundtrip(nbytes)]
        s.setdefault("ring_by_seq", {})[s["count"]] = entry
        s["ring"] = ([*s["ring"], entry])[-history:]
        s["count"] += 1
        s["first"] = min(s["first"], t)
        slow = s["count"] >= min_events_slow and (
            t - s["first"] >= (s["count"] - 1) * slow_interval_ms
        )
        if s["count"] < min_events and not slow:
            continue
        # An alert from a part-filled ring gets its nominal period checked each time the
        # pair's connections double, until the ring is full, cooldown or not.
        refining = s["alert"] is not None and 0 < s["alert"][4] <= s["count"]
        if not refining:
            if s["alert"] is not None and t - s["alert"][0] < cooldown_ms:
                continue  # nothing can alert within the cooldown: not scored
            if s["count"] - s["scored_count"] < every and t - s["scored_t"] < interval_ms:
                continue
        kept = sorted(s["ring"], key=lambda e: e[0])
        window = [e for e in kept if e[0] >= t - window_ms]
        if len(window) < history // 2:
            window = [e for e in kept if e[0] >= t - long_window_ms][-(history // 2) :]
        times = np.array([e[0] / 1000 for e in window])
        sizes = np.array([float(e[1]) for e in window])
        gap = reference_gap(times, burst_gap_s)  # check-ins made of bursts: one each
        if gap > 0:
            merged_t, merged_b = reference_merge(times, sizes, gap)
            times, sizes = np.array(merged_t), np.array(merged_b)
        score, period, sleep_range = score_fn(times, sizes)
        n_sources = len(sources_of[pair.split(">")[1]])
        fleet = len(set().union(*sources_of.values()))
        fleet_est = -sketch_width * np.log(1.0 - fleet / sketch_width)
        if n_sources >= min_sources:
            share = min(1.0, n_sources / max(1.0, fleet_est))
            score *= min(1.0, max(0.0, 1.0 - (share - low) / (high - low)))
        s["scored_count"], s["scored_t"] = s["count"], t
        last = s["alert"]
        next_check = min(2 * s["count"], history) if s["count"] < history else 0
        if refining:
            s["alert"] = (*last[:4], next_check)
        lifecycle = None
        if score >= threshold:
            if last is None:
                lifecycle = "new"
            else:
                moved = max(abs(a - b) for a, b in zip(sleep_range, last[3], strict=True))
                corrected = refining and moved > period_change * period
                last_width = last[3][1] - last[3][0]
                changed = t - last[0] >= cooldown_ms and (
                    abs(period - last[1]) > max(period_change * last[1], 0.25 * last_width)
                    or score - last[2] >= score_change
                )
                if corrected or changed:
                    lifecycle = "update"
        if lifecycle is None:
            if score <= 0.0 or last is not None:  # nothing, or nothing new: back off
                backoff = min(max(every, s["count"] // 4), history)
                s["scored_count"], s["scored_t"] = s["count"] + backoff, t + interval_ms
            continue
        # (time, mean interval, score, described sleep range, next period check), kept as f32
        f32_range = tuple(float(np.float32(x)) for x in sleep_range)
        s["alert"] = (t, float(np.float32(period)), float(np.float32(score)), f32_range,
                      next_check)  # fmt: skip
        alerts.append((pair, t, score, lifecycle))
    return alerts


def prefix_of(dst: str) -> str:
    """A destination IP -> its prefix: 198.51.100.7 -> 198.51.100.0/24; IPv6 -> its /48."""
    bits = 24 if ipaddress.ip_address(dst).version == 4 else 48
    return str(ipaddress.ip_network(f"{dst}/{bits}", strict=False))


def split_pair(pair: str) -> tuple[str, str, str]:
    """A key src>dst:port/proto -> (src, dst, "port/proto"); dst may be a prefix, or IPv6."""
    src, rest = pair.split(">")
    dst, service = rest.rsplit(":", 1)
    return src, dst, service


def channel_alerts(
    rows: list[tuple[int, int, str, str, int, int]], *, batch: int, window_ms: int,
    cooldown_ms: int, interval_ms: int, dropped: list[str] | None = None,
    **detector: Any,
) -> list[tuple[str, int, float, str, int]]:  # fmt: skip
    """`detector_alerts` over every pair and every promoted prefix channel
    ("src>prefix:port/proto"), then one alert per channel, decided per ``batch`` rows in time
    order. A channel is promoted at its first row to a second destination IP: its state
    starts as a copy of its first pair's (history, scoring schedule; no alert), and it is fed
    that row and every later row of the channel (after the batch's pairs, as the detector's
    prefix pass). Alerts:
    a prefix alert "new" is dropped when fewer than two of its pairs (first seen by it, seen
    within the window before it) exist or one of them has alerted; a pair alert when its
    prefix has alerted; an update when its "new" was dropped in the batch. A dropped alert is
    forgotten (the pair or prefix counts as never alerted), its next scoring a cooldown later
    (as an alerted row's); ``dropped`` gets why (single, pair, prefix).
    Returns (key, detected_ms, score, lifecycle, destination IPs).
    """
    state: dict[str, dict[str, Any]] = {}
    sources_of: dict[str, set[str]] = {}
    first_pair: dict[str, str] = {}  # channel -> its first pair, until promoted
    promoted: set[str] = set()
    out = []
    shared = {
        "state": state, "sources_of": sources_of, "window_ms": window_ms,
        "cooldown_ms": cooldown_ms, "interval_ms": interval_ms, **detector,
    }  # fmt: skip
    for lo in range(0, len(rows), batch):
        raised = []
        prefixed = []
        for t, end, src, pair, port, nbytes in rows[lo : lo + batch]:
            raised += [(a, False) for a in detector_alerts([(t, end, src, pair, port, nbytes)],
                                                           **shared)]  # fmt: skip
            _, dst, service = split_pair(pair)
            channel = f"{src}>{prefix_of(dst)}:{service}"
            first = first_pair.setdefault(channel, pair)
            if channel not in promoted and first != pair:
                promoted.add(channel)
                seed = copy.deepcopy(state[first])
                seed["alert"] = None
                state[channel] = seed
                sources_of.setdefault(channel.split(">")[1], set()).add(src)
            if channel in promoted:
                prefixed.append((t, end, src, channel, port, nbytes))
        raised += [(a, True) for a in detector_alerts(prefixed, **shared)]
        raised.sort(key=lambda r: r[0][1])
        undecided = {a[0] for a, _ in raised if a[3] == "new"}
        gone: dict[str, str] = {}  # key -> why its "new" was dropped: single, pair, prefix

        def alerted(key: str, undecided: set[str] = undecided) -> bool:
            return key in state and state[key]["alert"] is not None and key not in undecided

        for (key, t, score, lifecycle), is_prefix in raised:
            undecided.discard(key)
            src, dst, service = split_pair(key)
            ips = 1
            if is_prefix:
                members = [
                    k for k, s in state.items()
                    if "/" not in split_pair(k)[1] and split_pair(k)[0] == src
                    and split_pair(k)[2] == service and prefix_of(split_pair(k)[1]) == dst
                    and s["first"] <= t and s["newest"] >= t - window_ms
                ]  # fmt: skip
                ips = len(members)
                why = "single" if ips < 2 else "pair" if any(alerted(m) for m in members) else ""
                drop = why if lifecycle == "new" else ""
            else:
                drop = "prefix" if alerted(f"{src}>{prefix_of(dst)}:{service}") else ""
            if key in gone or drop:
                drop = gone.get(key, drop)
                gone[key] = drop
                if dropped is not None:
                    dropped.append(drop)
                s = state[key]
                s["alert"] = None
                s["scored_count"] = 2**32 - 1  # not due by count: only a cooldown later
                s["scored_t"] = max(s["scored_t"], t + max(cooldown_ms, interval_ms) - interval_ms)
                continue
            out.append((key, t, score, lifecycle, ips))
    return out


def name_channel_alerts(
    rows: list[tuple[int, int, str, str, int, int, str]], *, batch: int, window_ms: int,
    cooldown_ms: int, interval_ms: int, dropped: list[str] | None = None, **detector: Any,
) -> list[tuple[str, int, float, str, int]]:  # fmt: skip
    """`detector_alerts` over every pair and every promoted name channel
    ("src>name:port/proto"; rows carry their name last, "" none; no prefix channels), then
    one alert per channel, decided per ``batch`` rows in time order. A channel is promoted at
    its first row to another destination IP than its previous row's; its state starts empty,
    and it is fed that row and every later row of the channel (after the batch's pairs, as
    the detector's name pass). A name alert is always kept, and reports the channel's IP
    changes + 1 at the end of its batch; a pair alert is dropped ("name") when a name channel
    of its source and service has alerted (reported, last alert within the window before
    it), and forgotten as in `channel_alerts`. Returns (key, detected_ms, score, lifecycle,
    destination IPs)."""
    state: dict[str, dict[str, Any]] = {}
    sources_of: dict[str, set[str]] = {}
    last_dst: dict[str, str] = {}  # channel -> the destination of its previous row
    changes: dict[str, int] = {}
    out = []
    shared = {
        "state": state, "sources_of": sources_of, "window_ms": window_ms,
        "cooldown_ms": cooldown_ms, "interval_ms": interval_ms, **detector,
    }  # fmt: skip
    for lo in range(0, len(rows), batch):
        raised = []
        named = []
        for t, end, src, pair, port, nbytes, name in rows[lo : lo + batch]:
            raised += [(a, False) for a in detector_alerts([(t, end, src, pair, port, nbytes)],
                                                           **shared)]  # fmt: skip
            if not name:
                continue
            _, dst, service = split_pair(pair)
            channel = f"{src}>{name}:{service}"
            if channel in last_dst and last_dst[channel] != dst:
                changes[channel] = changes.get(channel, 0) + 1
            last_dst[channel] = dst
            if changes.get(channel, 0) > 0:
                named.append((t, end, src, channel, port, nbytes))
        raised += [(a, True) for a in detector_alerts(named, **shared)]
        raised.sort(key=lambda r: r[0][1])
        undecided = {a[0] for a, _ in raised if a[3] == "new"}
        gone: set[str] = set()

        def alerted(key: str, undecided: set[str] = undecided) -> bool:
            return key in state and state[key]["alert"] is not None and key not in undecided

        for (key, t, score, lifecycle), is_name in raised:
            undecided.discard(key)
            src, dst, service = split_pair(key)
            if is_name:
                out.append((key, t, score, lifecycle, changes[key] + 1))
                continue
            channels = [
                k for k in last_dst
                if k.startswith(f"{src}>") and split_pair(k)[2] == service and alerted(k)
                and state[k]["alert"][0] >= t - window_ms
            ]  # fmt: skip
            if key in gone or channels:
                gone.add(key)
                if dropped is not None:
                    dropped.append("name")
                s = state[key]
                s["alert"] = None
                s["scored_count"] = 2**32 - 1  # not due by count: only a cooldown later
                s["scored_t"] = max(s["scored_t"], t + max(cooldown_ms, interval_ms) - interval_ms)
                continue
            out.append((key, t, score, lifecycle, 1))
    return out


def window_score_period(
    times_s: F64, sizes: F64, **score_kwargs: Any
) -> tuple[float, float, tuple[float, float]]:
    """(score, mean interval, described sleep range) of `score_window_paired`, for reference
    detectors' ``score_fn``.

    ``paired_tables`` (optional): the null tables of every second connection; with them,
    windows of >= 12 connections whose plain fit has > 25 % outliers are also scored on every
    second connection, and the better score is kept.
    """
    paired_tables = score_kwargs.pop("paired_tables", None)
    tables = score_kwargs["tables"]
    kwargs = score_kwargs
    if not len(times_s):
        return window_score(times_s, sizes, **kwargs), 0.0, (0.0, 0.0)
    stats = naive_scoring.window_stats(times_s, sizes, tables)
    best = (window_score(times_s, sizes, **kwargs), stats["mean_interval_s"], sleep_range(stats))
    if paired_tables is not None and len(times_s) >= 12 and stats["outlier_ratio"] > 0.25:
        half_t, half_b = times_s[::2], sizes[::2]
        half_kwargs = {**score_kwargs, "tables": paired_tables}
        alt = window_score(half_t, half_b, **half_kwargs)
        if alt > best[0]:
            half = naive_scoring.window_stats(half_t, half_b, paired_tables)
            best = (alt, half["mean_interval_s"], sleep_range(half))
    return best


def sleep_range(stats: dict[str, float]) -> tuple[float, float]:
    """The [low, high] sleep an alert describes (scoring/sleep_range.py), spelled out."""
    s, j, shape = stats["period_s"], stats["jitter_ratio"], int(stats["jitter_shape"])
    ranges = {1: (s * (1 - j), s), 2: (s * (1 - j), s * (1 + j)), 3: (s, s * (1 + j))}
    return ranges.get(shape, (s * (1 - j / 2), s * (1 + j / 2)))


def reference_gap(times: np.ndarray, max_gap_s: float) -> float:
    """Every split of the sorted gaps into short and long ones, checked one by one."""
    if len(times) < 4 or max_gap_s <= 0:
        return 0.0
    gaps = sorted(np.diff(times).tolist())
    n = len(gaps)
    candidates = []
    for i in range(1, n):
        short, long = gaps[i - 1], gaps[i]
        jump = long / max(short, 0.001)
        both_sides = i >= MIN_SHARE * n and n - i >= MIN_SHARE * n
        if short <= max_gap_s and both_sides and jump >= MIN_JUMP:
            candidates.append((jump, -i, short))
    return max(candidates)[2] if candidates else reference_timer(times, max_gap_s)


def reference_timer(times: np.ndarray, max_gap_s: float) -> float:
    """The retry timer of `bursts.retry_timer_s`, each condition written out."""
    d = np.diff(times).tolist()
    n = len(d)
    if sum(x <= max_gap_s for x in d) < MIN_SHARE * n:  # too few short gaps for any burst
        return 0.0

    def tol(g: float) -> float:
        return max(TIMER_TOL_FRACTION * g, TIMER_TOL_MIN_S)

    def on(x: float, g: float) -> bool:
        return abs(x - g) <= tol(g)

    values = sorted(g for g in d if TIMER_MIN_S <= g <= max_gap_s)
    if not values:
        return 0.0
    # Most gaps on it; ties: the smallest value.
    g = max(values, key=lambda v: (sum(on(x, v) for x in d), -v))
    count = sum(on(x, g) for x in d)
    if count < MIN_SHARE * n:
        return 0.0
    runs = "".join("g" if on(x, g) else "." for x in d).split(".")
    if max(len(r) for r in runs) > TIMER_MAX_RUN:
        return 0.0
    between = [x for x in d if not on(x, g) and x >= TIMER_BETWEEN * g]
    multiples = [
        x for x in between
        if abs(x - math.floor(x / g + 0.5) * g) <= TIMER_MULTIPLE_TOL * g
    ]  # fmt: skip
    if len(between) < MIN_SHARE * n or 2 * len(multiples) >= len(between):
        return 0.0
    return g + tol(g)


def reference_merge(
    times: np.ndarray, sizes: np.ndarray, gap: float
) -> tuple[list[float], list[float]]:
    out_t: list[float] = []
    out_b: list[float] = []
    for j, (t, b) in enumerate(zip(times.tolist(), sizes.tolist(), strict=True)):
        if j and t - times[j - 1] <= gap:
            out_b[-1] += b
        else:
            out_t.append(t)
            out_b.append(b)
    return out_t, out_b


def three_connection_gates(
    times_s: F64, sizes: F64, min_interval_s: float, max_deviation: float,
    max_size_spread_ln: float, min_bytes: float, two_of_three: bool,
) -> int:  # fmt: skip
    """`scoring.daily.three_connection_gates`: 1 both intervals long, 2 regular, 4 sizes."""
    if len(times_s) != 3 or len(sizes) != 3:
        return 0
    d = np.diff(times_s)
    r = 1.0 if d.sum() <= 0 else float(np.max(np.abs(d / d.mean() - 1)))
    srt = sorted(float(s) for s in sizes)
    spreads = [math.log(b / a) for a, b in ((srt[0], srt[2]), (srt[0], srt[1]), (srt[1], srt[2]))]
    sized = srt[0] >= min_bytes and srt[0] > 0
    close = sized and (
        spreads[0] <= max_size_spread_ln
        or (two_of_three and min(spreads[1:]) <= max_size_spread_ln)
    )
    return (
        (1 if d.min() >= min_interval_s else 0)
        | (2 if r <= max_deviation else 0)
        | (4 if close else 0)
    )
