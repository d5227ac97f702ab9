"""Evaluation metrics: matching alerts to labelled pairs, recall cells, false alerts, sweeps."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
from evaluation import metrics as m
from evaluation.truth import BeaconTruth, FlowColumns, Kind, Scenario, assemble

from beaconwatch.alerting.alert import Alert
from beaconwatch.alerting.statistics import BeaconStats
from beaconwatch.scoring.periodicity import Shape

HOST, C2, WEB = 0x0A01_0001, 0xCB00_710A, 0x3400_0001  # 10.1.0.1, 203.0.113.10, 52.0.0.1


def _scenario() -> Scenario:
    cols = FlowColumns.new()
    t = np.arange(20) * 60_000
    cols.add(t, t + 100, HOST, C2, 40000, 443, 6, 500, Kind.BEACON, "c2", 0)
    cols.add(t[:5] + 7, t[:5] + 90, HOST, WEB, 40001, 443, 6, 900, Kind.BENIGN, "browsing")
    truth = BeaconTruth(
        0, Shape.SYMMETRIC, 60, 0.0, 0.0, "grid", HOST, C2, 443, 6, 20, 0, int(t[-1])
    )
    return assemble(cols, [truth], 2.0, 0, 2 * 86_400_000)


def _value(cls: type, **given: object) -> object:
    """An instance of a frozen value class with ``given`` fields and zeros elsewhere (the
    alert's fields grow with the detector; this test only cares about a few)."""
    zeros = {"int": 0, "float": 0.0, "str": ""}
    args = {f.name: given.get(f.name, zeros.get(str(f.type), 0)) for f in fields(cls)}
    return cls(**args)


def _alert(dst: str, window_end_ms: int, score: float, period_s: float) -> Alert:
    stats = _value(BeaconStats, score=score, period_s=period_s)
    alert = _value(
        Alert,
        src_ip="10.1.0.1",
        dst_ip=dst,
        dst_port=443,
        proto=6,
        window_end_ms=window_end_ms,
        detected_ms=window_end_ms,
        stats=stats,
    )
    assert isinstance(alert, Alert)
    return alert


def test_alerts_are_matched_to_labelled_pairs() -> None:
    sc = _scenario()
    index = sc.pair_index()
    alerts = [
        _alert("203.0.113.10", 11 * 60_000, 0.85, 61.0),
        _alert("203.0.113.10", 9 * 60_000, 0.82, 63.0),  # earlier window end: the first alert
        _alert("52.0.0.1", 4 * 60_000, 0.81, 60.0),
        _alert("198.51.100.1", 4 * 60_000, 0.9, 60.0),  # not a labelled pair: ignored
    ]
    out = m.pair_outcomes(sc, index, alerts, [])
    beacons = m.beacon_outcomes(sc, index, out)
    (b,) = beacons
    assert b.detected and b.eligible
    assert b.delay_periods == 9.0
    assert abs(b.period_error - 3 / 60) < 1e-12
    fa = m.false_alerts(sc, out)
    assert (fa.pairs, fa.alerts) == (1, 1)
    assert fa.pairs_per_1000_host_days == 500.0
    best = m.max_scores(sc.n_pairs, index, alerts)
    assert sorted(best.tolist()) == [0.81, 0.85]


def test_recall_cells_skip_beacons_with_few_checkins() -> None:
    sc = _scenario()
    few = BeaconTruth(1, Shape.ADDITIVE, 60, 0.5, 0.0, "grid", 1, 2, 443, 6, 11, 0, 0)
    outs = [
        m.BeaconOutcome(sc.beacons[0], 0, True, 1.0, 0.0),
        m.BeaconOutcome(few, -1, False, float("nan"), float("nan")),
    ]
    cells = m.recall_by(outs, lambda o: o.truth.shape)
    assert list(cells.values()) == [m.RecallCell(1, 1)]
    assert m.RecallCell(1, 4).text() == "0.25 (1/4)"


def test_sweep_counts_hits_and_false_pairs_per_threshold() -> None:
    beacons = np.array([0.9, 0.8, 0.5, np.nan])
    benign = np.array([0.85, 0.3, np.nan, 0.1])
    c = m.sweep(beacons, benign)
    assert c.thresholds.tolist() == [0.9, 0.85, 0.8, 0.5, 0.3, 0.1]
    assert c.false_pairs.tolist() == [0, 1, 1, 1, 2, 3]
    assert c.recall.tolist() == [0.25, 0.25, 0.5, 0.75, 0.75, 0.75]
    assert c.recall_at(0) == (0.25, 0.9)
    assert c.recall_at(1) == (0.75, 0.5)
