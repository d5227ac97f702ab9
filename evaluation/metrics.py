"""From detector output and ground truth to the figures in docs/evaluation.md.

Units: a *false alert* is an alert on a pair whose label is benign; benign_periodic pairs (single
devices with real periodic check-ins) are counted apart. Detection delay is measured from the
implant's first check-in to the connection that made the first alert due (the alert's window
end), in periods S; the period error compares the alert's period estimate with S.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from beaconwatch.alerting.alert import Alert
from beaconwatch.core.pair_scores import PairScore
from beaconwatch.domain.dtypes import F64, I64
from evaluation.truth import BeaconTruth, Kind, Scenario

MIN_CHECKINS = 12


def _ip(text: str) -> int:
    return int(ipaddress.ip_address(text)) & 0xFFFF_FFFF


def pair_ids(
    index: dict[tuple[int, int, int, int], int], items: Iterable[Alert | PairScore]
) -> I64:
    """Pair id of each alert/score in ``index`` (from `Scenario.pair_index`), -1 if unknown."""
    out = []
    for a in items:
        src, dst = (a.src_ip, a.dst_ip) if isinstance(a, Alert) else (a.src, a.dst)
        out.append(index.get((_ip(src), _ip(dst), a.dst_port, a.proto), -1))
    return np.array(out, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class PairOutcomes:
    """Per labelled pair: what the detector did."""

    alert_count: I64
    first_alert_ms: I64  # window end of the first alert, -1 if none
    first_period_s: F64  # period estimate of the first alert (NaN if none)
    final_score: F64  # score on the pair's window at the end of the run (NaN: not tracked)

    @property
    def alerted(self) -> npt.NDArray[np.bool_]:
        return self.alert_count > 0


def pair_outcomes(
    scenario: Scenario,
    index: dict[tuple[int, int, int, int], int],
    alerts: Sequence[Alert],
    final_scores: Sequence[PairScore],
) -> PairOutcomes:
    n = scenario.n_pairs
    count = np.zeros(n, dtype=np.int64)
    first_ms = np.full(n, -1, dtype=np.int64)
    first_period = np.full(n, np.nan)
    for pid, alert in zip(pair_ids(index, alerts), alerts, strict=True):
        if pid < 0:
            continue
        count[pid] += 1
        if first_ms[pid] < 0 or alert.window_end_ms < first_ms[pid]:
            first_ms[pid] = alert.window_end_ms
            first_period[pid] = alert.stats.period_s
    final = np.full(n, np.nan)
    for pid, ps in zip(pair_ids(index, final_scores), final_scores, strict=True):
        if pid >= 0:
            final[pid] = ps.stats["score"]
    return PairOutcomes(count, first_ms, first_period, final)


def max_scores(
    n_pairs: int, index: dict[tuple[int, int, int, int], int], alerts: Sequence[Alert]
) -> F64:
    """Highest alert score per pair (0 where it never alerted): from a sweep run."""
    best = np.zeros(n_pairs)
    ids = pair_ids(index, alerts)
    scores = np.array([a.stats.score for a in alerts], dtype=np.float64)
    ok = ids >= 0
    np.maximum.at(best, ids[ok], scores[ok])
    return best


@dataclass(frozen=True, slots=True)
class BeaconOutcome:
    truth: BeaconTruth
    pair: int
    detected: bool
    delay_periods: float  # NaN if not detected
    period_error: float  # |estimate - S| / S, NaN if not detected

    @property
    def eligible(self) -> bool:
        return self.truth.checkins >= MIN_CHECKINS


def beacon_outcomes(
    scenario: Scenario, index: dict[tuple[int, int, int, int], int], out: PairOutcomes
) -> list[BeaconOutcome]:
    result = []
    for b in scenario.beacons:
        pid = index.get((b.src, b.dst, b.dst_port, b.proto), -1)
        detected = pid >= 0 and bool(out.alert_count[pid] > 0)
        delay = err = float("nan")
        if detected:
            delay = (out.first_alert_ms[pid] - b.first_ms) / (b.period_s * 1000)
            err = abs(out.first_period_s[pid] - b.period_s) / b.period_s
        result.append(BeaconOutcome(b, pid, detected, delay, err))
    return result


@dataclass(frozen=True, slots=True)
class RecallCell:
    detected: int
    total: int

    @property
    def recall(self) -> float:
        return self.detected / self.total if self.total else float("nan")

    def text(self) -> str:
        if not self.total:
            return "-"
        return f"{self.recall:.2f} ({self.detected}/{self.total})"


def recall_by(
    outcomes: Sequence[BeaconOutcome],
    key: Callable[[BeaconOutcome], object],
    where: Callable[[BeaconOutcome], bool] = lambda o: True,
) -> dict[object, RecallCell]:
    """Recall per value of ``key`` over eligible (>= 12 check-ins) beacons passing ``where``."""
    cells: dict[object, list[int]] = {}
    for o in outcomes:
        if not o.eligible or not where(o):
            continue
        cell = cells.setdefault(key(o), [0, 0])
        cell[0] += int(o.detected)
        cell[1] += 1
    return {k: RecallCell(d, t) for k, (d, t) in sorted(cells.items(), key=lambda kv: str(kv[0]))}


def median_or_nan(values: Iterable[float]) -> float:
    arr = np.array([v for v in values if not np.isnan(v)], dtype=np.float64)
    return float(np.median(arr)) if arr.size else float("nan")


@dataclass(frozen=True, slots=True)
class FalseAlerts:
    pairs: int  # benign pairs with >= 1 alert
    alerts: int
    host_days: float

    @property
    def pairs_per_1000_host_days(self) -> float:
        return 1000 * self.pairs / self.host_days

    @property
    def alerts_per_1000_host_days(self) -> float:
        return 1000 * self.alerts / self.host_days


def false_alerts(scenario: Scenario, out: PairOutcomes, kind: Kind = Kind.BENIGN) -> FalseAlerts:
    sel = scenario.pair_kind == int(kind)
    return FalseAlerts(
        pairs=int(np.count_nonzero(out.alert_count[sel] > 0)),
        alerts=int(out.alert_count[sel].sum()),
        host_days=scenario.host_days,
    )


@dataclass(frozen=True, slots=True)
class Curve:
    """Recall against false-alerting benign pairs as the threshold sweeps down."""

    thresholds: F64
    false_pairs: I64
    recall: F64

    def recall_at(self, max_false_pairs: int) -> tuple[float, float]:
        """(best recall with at most this many false pairs, the threshold that gives it)."""
        ok = self.false_pairs <= max_false_pairs
        if not ok.any():
            return 0.0, float("inf")
        i = int(np.flatnonzero(ok)[np.argmax(self.recall[ok])])
        return float(self.recall[i]), float(self.thresholds[i])


def sweep(beacon_scores: F64, benign_scores: F64) -> Curve:
    """Alert when score >= t, for every t that changes the outcome. NaN scores never alert."""
    b = np.nan_to_num(beacon_scores, nan=-np.inf)
    n = np.nan_to_num(benign_scores, nan=-np.inf)
    t = np.unique(np.concatenate((b, n)))
    t = np.sort(t[np.isfinite(t)])[::-1]
    b_sorted, n_sorted = np.sort(b), np.sort(n)
    hits = b.shape[0] - np.searchsorted(b_sorted, t, side="left")
    false = n.shape[0] - np.searchsorted(n_sorted, t, side="left")
    recall = hits / max(b.shape[0], 1)
    return Curve(t, false.astype(np.int64), recall.astype(np.float64))
